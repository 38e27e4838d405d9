//! The Dashboard: the balance, what it covers, this month's use, the last fortnight by day, the
//! newest top-ups and a low-balance alert.

use askama::Template;
use axum::{
    extract::State,
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};
use chrono::{Datelike, TimeZone, Utc};
use ledger::TransferKind;

use crate::{
    alerts,
    pages::{
        error::PageResult,
        forms::CsrfToken,
        session::CurrentUser,
        views::{IST, Layout, Nav, TopupRow, format_credits},
    },
    state::AppState,
    store::topups,
};

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
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let prices = &state.settings.prices;
    let now = Utc::now().with_timezone(&IST);
    let month_start = IST
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
    let recent = topups::recent(&state.reads, user.id, 5).await?;
    let alert = alerts::active(&state.services, user.id)
        .await?
        .map(|(threshold, balance)| (format_credits(threshold), format_credits(balance)));
    let since = Utc::now() - chrono::Duration::days(14);
    let per_day = state
        .ledger
        .daily_totals(
            user.wallet,
            since,
            i64::from(IST.local_minus_utc()),
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
        layout: Layout::new(&user.email, Nav::Dashboard, &csrf.token, "Dashboard"),
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
