//! The signed-in pages other than Billing: Dashboard and Credit History (with CSV), the shared
//! layout, and the small formatting rules every page follows.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use ledger::{HistoryQuery, Transfer, TransferId, TransferKind};
use serde::Deserialize;

use crate::{
    auth::{CsrfToken, CurrentUser, maybe_user},
    billing::{routes::TopupRow, topups, uncredited},
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Billing,
    History,
    ApiKeys,
    Account,
}

/// What every signed-in page shares: who is signed in, where they are, the form token.
pub struct Layout {
    pub email: String,
    pub nav: Nav,
    pub csrf: String,
    pub title: String,
}

impl Layout {
    pub fn new(user: &CurrentUser, nav: Nav, csrf: &str, title: &str) -> Layout {
        Layout {
            email: user.email.clone(),
            nav,
            csrf: csrf.to_string(),
            title: title.to_string(),
        }
    }

    pub fn is(&self, nav: Nav) -> bool {
        self.nav == nav
    }
}

/// India Standard Time, which Kalp Studio's customers live in.
fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"))
}

pub fn format_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist())
        .format("%d %b %Y, %H:%M")
        .to_string()
}

/// 1234567 → "12,34,567" (Indian grouping, as the amounts are).
pub fn format_credits(n: i64) -> String {
    let shown = razorpay::Paise(n.saturating_mul(100)).display_inr();
    shown.replacen('₹', "", 1)
}

pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Redirect> {
    Ok(match maybe_user(&state, &headers).await? {
        Some(_) => Redirect::to("/dashboard"),
        None => Redirect::to("/login"),
    })
}

pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.one("SELECT 1 AS ok", vec![]).await {
        Ok(_) => "ok".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    available: String,
    reserved: Option<String>,
    emails: String,
    sms: String,
    email_price: i64,
    sms_price: i64,
    used_email: String,
    used_sms: String,
    month: String,
    topups: Vec<TopupRow>,
    alert: Option<(String, String)>,
    daily: Vec<(String, String, String)>,
}

pub async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let prices = &state.settings.prices;
    let now = Utc::now().with_timezone(&ist());
    let month_start = ist()
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .map(|t| t.with_timezone(&Utc));
    let totals = state
        .ledger
        .totals_by_kind(user.wallet, month_start, None)
        .await?;
    let used = |kind| {
        totals
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    let recent = topups::recent(&state.db, user.id, 5).await?;
    let alert = crate::alerts::active(&state, user.id)
        .await?
        .map(|(threshold, balance)| (format_credits(threshold), format_credits(balance)));
    let since = Utc::now() - chrono::Duration::days(14);
    let per_day = state
        .ledger
        .daily_totals(
            user.wallet,
            since,
            19_800,
            &[TransferKind::UsageEmail, TransferKind::UsageSms],
        )
        .await?;
    let mut daily: Vec<(String, String, String)> = Vec::new();
    for (date, kind, total) in per_day {
        let label = date.format("%d %b").to_string();
        if daily.last().is_none_or(|(d, _, _)| *d != label) {
            daily.push((label, "0".into(), "0".into()));
        }
        if let Some(last) = daily.last_mut() {
            match kind {
                TransferKind::UsageEmail => last.1 = format_credits(total),
                _ => last.2 = format_credits(total),
            }
        }
    }
    let page = DashboardPage {
        layout: Layout::new(&user, Nav::Dashboard, &csrf.token, "Dashboard"),
        available: format_credits(balance.available),
        reserved: (balance.reserved > 0).then(|| format_credits(balance.reserved)),
        emails: format_credits(balance.available / prices.email_credits),
        sms: format_credits(balance.available / prices.sms_segment_credits),
        email_price: prices.email_credits,
        sms_price: prices.sms_segment_credits,
        used_email: format_credits(used(TransferKind::UsageEmail)),
        used_sms: format_credits(used(TransferKind::UsageSms)),
        month: now.format("%B %Y").to_string(),
        topups: recent.iter().map(TopupRow::of).collect(),
        alert,
        daily,
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

/// Credit History filters, from the query string.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

const TYPES: &[(&str, &str)] = &[
    ("all", "All activity"),
    ("topups", "Top-ups"),
    ("email", "Email usage"),
    ("sms", "SMS usage"),
    ("grants", "Promotional credits"),
    ("adjustments", "Adjustments"),
    ("expiry", "Expired credits"),
    ("refunds", "Refunds"),
];

fn kinds_for(kind: &str) -> AppResult<Vec<TransferKind>> {
    Ok(match kind {
        "" | "all" => Vec::new(),
        "topups" => vec![TransferKind::Purchase],
        "email" => vec![TransferKind::UsageEmail],
        "sms" => vec![TransferKind::UsageSms],
        "grants" => vec![TransferKind::Grant],
        "adjustments" => vec![
            TransferKind::AdjustmentCredit,
            TransferKind::AdjustmentDebit,
        ],
        "expiry" => vec![TransferKind::Expiry],
        "refunds" => vec![TransferKind::RefundReversal],
        other => {
            return Err(AppError::BadRequest(format!(
                "{other:?} is not a kind of activity."
            )));
        }
    })
}

fn parse_date(value: &Option<String>, name: &str) -> AppResult<Option<NaiveDate>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                AppError::BadRequest(format!("The {name} date should look like 2026-11-26."))
            }),
    }
}

/// Midnight IST at the start of `date`.
fn ist_midnight(date: NaiveDate) -> Option<DateTime<Utc>> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| ist().from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
}

impl HistoryParams {
    fn query(&self, limit: u32) -> AppResult<HistoryQuery> {
        let from = parse_date(&self.from, "From")?;
        let to = parse_date(&self.to, "To")?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(AppError::BadRequest(
                "The From date is after the To date.".into(),
            ));
        }
        let before = match self.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b) => Some(TransferId(b.parse().map_err(|_| {
                AppError::BadRequest("That page of history does not exist.".into())
            })?)),
        };
        Ok(HistoryQuery {
            limit,
            before,
            kinds: kinds_for(self.kind.as_deref().unwrap_or("all"))?,
            from: from.and_then(ist_midnight),
            to: to.and_then(|d| d.succ_opt()).and_then(ist_midnight),
        })
    }

    fn link(&self, before: Option<TransferId>) -> String {
        let mut parts = Vec::new();
        for (name, value) in [("type", &self.kind), ("from", &self.from), ("to", &self.to)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{name}={}", url_escape(v)));
            }
        }
        if let Some(b) = before {
            parts.push(format!("before={}", b.0));
        }
        parts.join("&")
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One line of Credit History.
pub struct HistoryRow {
    /// When it happened, for ordering.
    pub at: DateTime<Utc>,
    pub date: String,
    pub kind: &'static str,
    pub description: String,
    pub credits: String,
    /// The signed number of credits, for the CSV.
    pub amount: i64,
    /// `plus`, `minus`, or `zero` for a line that moved no credits.
    pub tone: &'static str,
    pub amount_paid: String,
    pub method: String,
    pub payment_id: String,
}

fn kind_label(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Purchase => "Top-up",
        TransferKind::Grant => "Promotional credits",
        TransferKind::AdjustmentCredit | TransferKind::AdjustmentDebit => "Adjustment",
        TransferKind::UsageEmail => "Email usage",
        TransferKind::UsageSms => "SMS usage",
        TransferKind::Expiry => "Expired credits",
        TransferKind::RefundReversal => "Refund",
    }
}

async fn rows(
    state: &AppState,
    user: &CurrentUser,
    entries: &[Transfer],
) -> AppResult<Vec<HistoryRow>> {
    let payment_ids: Vec<String> = entries
        .iter()
        .filter(|t| t.kind == TransferKind::Purchase)
        .filter_map(|t| t.reference.clone())
        .collect();
    let topups = topups::by_payment_ids(&state.db, user.id, &payment_ids).await?;
    Ok(entries
        .iter()
        .map(|t| {
            let topup = t
                .reference
                .as_deref()
                .and_then(|r| topups.iter().find(|p| p.payment_id.as_deref() == Some(r)))
                .filter(|_| t.kind == TransferKind::Purchase);
            let amount = t.signed_amount();
            HistoryRow {
                at: t.created_at,
                date: format_time(t.created_at),
                kind: kind_label(t.kind),
                description: t
                    .memo
                    .clone()
                    .or_else(|| t.reference.clone())
                    .unwrap_or_default(),
                credits: format!(
                    "{}{}",
                    if amount >= 0 { "+" } else { "−" },
                    format_credits(amount.abs())
                ),
                amount,
                tone: if amount >= 0 { "plus" } else { "minus" },
                amount_paid: topup.map(|p| p.amount.display_inr()).unwrap_or_default(),
                method: topup.map(|p| p.method_label()).unwrap_or_default(),
                payment_id: topup.and_then(|p| p.payment_id.clone()).unwrap_or_default(),
            }
        })
        .collect())
}

/// Payments on the customer's orders that credited nothing (a duplicate we refunded, one
/// Razorpay returned), as lines of 0 credits: the ones that fall between this page's oldest
/// entry and the previous page's, in the filters' range.
async fn uncredited_rows(
    state: &AppState,
    user: &CurrentUser,
    query: &HistoryQuery,
    page: &ledger::HistoryPage,
) -> AppResult<Vec<HistoryRow>> {
    // A duplicate we refunded is listed with refunds, a payment Razorpay returned with top-ups.
    let shown = |kind: uncredited::UncreditedKind| {
        let as_kind = match kind {
            uncredited::UncreditedKind::Duplicate => TransferKind::RefundReversal,
            uncredited::UncreditedKind::Returned => TransferKind::Purchase,
        };
        query.kinds.is_empty() || query.kinds.contains(&as_kind)
    };
    if !shown(uncredited::UncreditedKind::Duplicate) && !shown(uncredited::UncreditedKind::Returned)
    {
        return Ok(Vec::new());
    }
    let mut upper = query.to.map_or(i64::MAX, |t| t.timestamp_micros());
    if let Some(before) = query.before {
        match state.ledger.transfer(before).await? {
            Some(t) => upper = upper.min(t.created_at.timestamp_micros()),
            None => return Ok(Vec::new()),
        }
    }
    let mut lower = query.from.map_or(i64::MIN, |t| t.timestamp_micros());
    if page.next.is_some()
        && let Some(last) = page.entries.last()
    {
        lower = lower.max(last.created_at.timestamp_micros());
    }
    let payments = uncredited::of_user_between(&state.db, user.id, lower, upper).await?;
    Ok(payments
        .into_iter()
        .filter(|p| shown(p.kind))
        .map(|p| HistoryRow {
            at: p.created_at,
            date: format_time(p.created_at),
            kind: if p.kind == uncredited::UncreditedKind::Duplicate {
                "Refund"
            } else {
                "Top-up"
            },
            description: format!("{} (top-up #{})", p.kind.label(), p.topup_id),
            credits: "0".into(),
            amount: 0,
            tone: "zero",
            amount_paid: p.amount.display_inr(),
            method: String::new(),
            payment_id: p.payment_id,
        })
        .collect())
}

/// A page of Credit History: the ledger's entries with the uncredited payments among them.
async fn history_rows(
    state: &AppState,
    user: &CurrentUser,
    query: &HistoryQuery,
    page: &ledger::HistoryPage,
) -> AppResult<Vec<HistoryRow>> {
    let mut all = rows(state, user, &page.entries).await?;
    all.extend(uncredited_rows(state, user, query, page).await?);
    all.sort_by_key(|r| std::cmp::Reverse(r.at));
    Ok(all)
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    layout: Layout,
    rows: Vec<HistoryRow>,
    types: Vec<(&'static str, &'static str)>,
    kind: String,
    from: String,
    to: String,
    next: Option<String>,
    csv: String,
    first_page: bool,
}

pub async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Response> {
    let Query(params) =
        params.map_err(|_| AppError::BadRequest("The filters could not be read.".into()))?;
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let query = params.query(25)?;
    let page = state.ledger.history(user.wallet, &query).await?;
    let html = HistoryPage {
        layout: Layout::new(&user, Nav::History, &csrf.token, "Credit History"),
        rows: history_rows(&state, &user, &query, &page).await?,
        types: TYPES.to_vec(),
        kind: params.kind.clone().unwrap_or_else(|| "all".into()),
        from: params.from.clone().unwrap_or_default(),
        to: params.to.clone().unwrap_or_default(),
        next: page.next.map(|n| params.link(Some(n))),
        csv: params.link(None),
        first_page: query.before.is_none(),
    }
    .render()?;
    Ok(csrf.attach(Html(html).into_response()))
}

/// The most rows one CSV download holds.
const CSV_LIMIT: usize = 100_000;

fn csv_field(value: &str) -> String {
    // Quote everything; neutralise spreadsheet formulas.
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

pub async fn history_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Response> {
    let Query(params) =
        params.map_err(|_| AppError::BadRequest("The filters could not be read.".into()))?;
    let mut query = params.query(ledger::MAX_PAGE)?;
    let mut out =
        String::from("date,type,description,credits,amount_paid,method,razorpay_payment_id\n");
    let mut count = 0;
    loop {
        let page = state.ledger.history(user.wallet, &query).await?;
        for row in history_rows(&state, &user, &query, &page).await? {
            let text = [row.date, row.kind.to_string(), row.description];
            let paid = [row.amount_paid, row.method, row.payment_id];
            let line: Vec<String> = text
                .iter()
                .map(|f| csv_field(f))
                .chain(std::iter::once(row.amount.to_string()))
                .chain(paid.iter().map(|f| csv_field(f)))
                .collect();
            out.push_str(&line.join(","));
            out.push('\n');
            count += 1;
        }
        match page.next {
            Some(next) if count < CSV_LIMIT => query.before = Some(next),
            _ => break,
        }
    }
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"credit-history.csv\""),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_use_indian_grouping() {
        assert_eq!(format_credits(1_234_567), "12,34,567");
        assert_eq!(format_credits(0), "0");
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK()"), "\"'=HYPERLINK()\"");
    }
}
