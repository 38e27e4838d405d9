//! Credit History: every movement of credits, filtered and paged, with the payments that credited
//! nothing among them (the same as CSV: `history_csv`).

use askama::Template;
use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use ledger::{HistoryQuery, Transfer, TransferId, TransferKind};
use serde::Deserialize;

use crate::{
    pages::{
        error::{PageError, PageResult},
        forms::CsrfToken,
        session::CurrentUser,
        views::{Layout, Nav, format_time, ist_midnight, signed_credits},
    },
    state::AppState,
    store::{
        payments::{self, UncreditedKind},
        topups, vouchers,
    },
};

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

fn kinds_for(kind: &str) -> PageResult<Vec<TransferKind>> {
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
            return Err(PageError::BadRequest(format!(
                "{other:?} is not a kind of activity."
            )));
        }
    })
}

fn parse_date(value: &Option<String>, name: &str) -> PageResult<Option<NaiveDate>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                PageError::BadRequest(format!("The {name} date should look like 2026-11-26."))
            }),
    }
}

impl HistoryParams {
    pub(super) fn query(&self, limit: u32) -> PageResult<HistoryQuery> {
        let from = parse_date(&self.from, "From")?;
        let to = parse_date(&self.to, "To")?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(PageError::BadRequest(
                "The From date is after the To date.".into(),
            ));
        }
        let before = match self.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b) => Some(TransferId(b.parse().map_err(|_| {
                PageError::BadRequest("That page of history does not exist.".into())
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
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in [("type", &self.kind), ("from", &self.from), ("to", &self.to)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.push((name, v.to_string()));
            }
        }
        if let Some(b) = before {
            pairs.push(("before", b.0.to_string()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
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
    /// The GST documents of the line's top-up: (link, label).
    pub documents: Vec<(String, &'static str)>,
}

/// A top-up's line links its receipt voucher (page and PDF), when it has one (top-ups credited
/// before vouchers existed have none); a refund's line links the top-up, whose page lists each
/// refund voucher.
fn documents_of(
    kind: TransferKind,
    topup_id: i64,
    has_receipt: bool,
) -> Vec<(String, &'static str)> {
    match kind {
        TransferKind::Purchase if has_receipt => vec![
            (format!("/billing/topups/{topup_id}/receipt"), "Receipt"),
            (format!("/billing/topups/{topup_id}/receipt.pdf"), "PDF"),
        ],
        TransferKind::RefundReversal => {
            vec![(format!("/billing/topups/{topup_id}"), "Refund voucher")]
        }
        _ => Vec::new(),
    }
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
) -> PageResult<Vec<HistoryRow>> {
    let payment_ids: Vec<String> = entries
        .iter()
        .filter(|t| {
            matches!(
                t.kind,
                TransferKind::Purchase | TransferKind::RefundReversal
            )
        })
        .filter_map(|t| t.reference.clone())
        .collect();
    let topups = topups::by_payment_ids(&state.reads, user.id, &payment_ids).await?;
    let topup_ids: Vec<i64> = topups.iter().map(|t| t.id).collect();
    let with_receipts = vouchers::topups_with_receipts(&state.reads, &topup_ids).await?;
    Ok(entries
        .iter()
        .map(|t| {
            let topup = t
                .reference
                .as_deref()
                .and_then(|r| topups.iter().find(|p| p.payment_id.as_deref() == Some(r)));
            let documents = topup.map_or_else(Vec::new, |p| {
                documents_of(t.kind, p.id, with_receipts.contains(&p.id))
            });
            let topup = topup.filter(|_| t.kind == TransferKind::Purchase);
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
                credits: signed_credits(amount),
                amount,
                tone: if amount >= 0 { "plus" } else { "minus" },
                amount_paid: topup.map(|p| p.amount.display_inr()).unwrap_or_default(),
                method: topup.map(|p| p.method_label()).unwrap_or_default(),
                payment_id: topup.and_then(|p| p.payment_id.clone()).unwrap_or_default(),
                documents,
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
) -> PageResult<Vec<HistoryRow>> {
    // A duplicate we refunded is listed with refunds, a payment Razorpay returned with top-ups.
    let shown = |kind: UncreditedKind| {
        let as_kind = match kind {
            UncreditedKind::Duplicate => TransferKind::RefundReversal,
            UncreditedKind::Returned => TransferKind::Purchase,
        };
        query.kinds.is_empty() || query.kinds.contains(&as_kind)
    };
    if !shown(UncreditedKind::Duplicate) && !shown(UncreditedKind::Returned) {
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
    let found = payments::of_user_between(&state.reads, user.id, lower, upper).await?;
    Ok(found
        .into_iter()
        .filter(|p| shown(p.kind))
        .map(|p| HistoryRow {
            at: p.created_at,
            date: format_time(p.created_at),
            kind: if p.kind == UncreditedKind::Duplicate {
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
            documents: Vec::new(),
        })
        .collect())
}

/// A page of Credit History: the ledger's entries with the uncredited payments among them.
pub(super) async fn history_rows(
    state: &AppState,
    user: &CurrentUser,
    query: &HistoryQuery,
    page: &ledger::HistoryPage,
) -> PageResult<Vec<HistoryRow>> {
    let mut all = rows(state, user, &page.entries).await?;
    all.extend(uncredited_rows(state, user, query, page).await?);
    all.sort_by_key(|r| std::cmp::Reverse(r.at));
    Ok(all)
}

#[derive(Template)]
#[template(path = "history.html")]
struct CreditHistoryPage {
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

pub(super) fn filters(
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> PageResult<HistoryParams> {
    params
        .map(|Query(p)| p)
        .map_err(|_| PageError::BadRequest("The filters could not be read.".into()))
}

pub async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> PageResult<Response> {
    let params = filters(params)?;
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let query = params.query(25)?;
    let page = state.ledger.history(user.wallet, &query).await?;
    let html = CreditHistoryPage {
        layout: Layout::new(&user.email, Nav::History, &csrf.token, "Credit History"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::views::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK()"), "\"'=HYPERLINK()\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("\"\""), "\"\"\"\"\"\"");
    }

    #[test]
    fn page_links_keep_the_filters_escaped() {
        let params = HistoryParams {
            kind: Some("email".into()),
            from: Some("2026-11-01".into()),
            to: None,
            before: None,
        };
        assert_eq!(
            params.link(Some(TransferId(42))),
            "type=email&from=2026-11-01&before=42"
        );
    }
}
