//! Billing: My Credits with Top up, Add Credits (the modal, and a page of its own without
//! JavaScript), and handing the browser to Razorpay's checkout.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
};
use razorpay::Paise;
use serde::Deserialize;

use crate::{
    billing::{
        amount::{TopupAmount, credits_per_rupee},
        checkout::{CheckoutRefused, start_topup},
    },
    pages::{
        error::{PageError, PageResult},
        forms::NoFields,
        forms::{CsrfForm, CsrfToken},
        session::CurrentUser,
        views::{IST, Layout, Nav, TopupRow, format_credits, format_time},
    },
    state::AppState,
    store::{refund_requests, topups},
};

/// The limits and rate Add Credits shows, from the settings.
struct AddCreditsTerms {
    rate: String,
    paise_per_credit: i64,
    min_rupees: String,
    max_rupees: String,
    min_paise: i64,
    max_paise: i64,
}

impl AddCreditsTerms {
    fn of(state: &AppState) -> AddCreditsTerms {
        let b = &state.settings.billing;
        AddCreditsTerms {
            rate: credits_per_rupee(b),
            paise_per_credit: b.paise_per_credit,
            min_rupees: Paise(b.min_topup_paise).display_inr(),
            max_rupees: Paise(b.max_topup_paise).display_inr(),
            min_paise: b.min_topup_paise,
            max_paise: b.max_topup_paise,
        }
    }
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    layout: Layout,
    available: String,
    reserved: Option<String>,
    split: CreditSplit,
    refund_request: Option<String>,
    /// A request waits for an operator: no second one.
    refund_open: bool,
    terms: AddCreditsTerms,
    topups: Vec<TopupRow>,
    notice: Option<String>,
    form: AmountForm,
}

/// Paid and promotional credits, and the next credits to expire.
pub struct CreditSplit {
    pub paid: String,
    pub promotional: String,
    pub has_promotional: bool,
    pub has_paid: bool,
    /// "500 credits expire on 29 Dec 2026".
    pub next_expiry: Option<String>,
}

impl CreditSplit {
    fn of(lots: &[ledger::Lot], now: chrono::DateTime<chrono::Utc>) -> CreditSplit {
        let sum = |source: ledger::LotSource| -> i64 {
            lots.iter()
                .filter(|l| l.source == source)
                .map(|l| l.remaining)
                .sum()
        };
        let expiring = lots.iter().filter(|l| l.remaining > 0).filter_map(|l| {
            l.expires_at
                .filter(|at| *at > now)
                .map(|at| (at, l.remaining))
        });
        let next = expiring.clone().map(|(at, _)| at).min();
        let next_expiry = next.map(|first| {
            let day = first.with_timezone(&IST).date_naive();
            let credits: i64 = expiring
                .filter(|(at, _)| at.with_timezone(&IST).date_naive() == day)
                .map(|(_, n)| n)
                .sum();
            format!(
                "{} credits expire on {}",
                format_credits(credits),
                first.with_timezone(&IST).format("%d %b %Y")
            )
        });
        let promotional = sum(ledger::LotSource::Promotional);
        let paid = sum(ledger::LotSource::Paid);
        CreditSplit {
            paid: format_credits(paid),
            has_paid: paid > 0,
            promotional: format_credits(promotional),
            has_promotional: promotional > 0,
            next_expiry,
        }
    }
}

#[derive(Template)]
#[template(path = "topup.html")]
struct AddCreditsPage {
    layout: Layout,
    available: String,
    terms: AddCreditsTerms,
    form: AmountForm,
}

/// What was typed, and what was wrong with it.
#[derive(Default)]
pub struct AmountForm {
    pub value: String,
    pub error: Option<String>,
    pub preview: Option<String>,
}

/// What is kept of what was typed, to show it again.
fn kept(typed: &str) -> String {
    typed.chars().take(40).collect()
}

#[derive(Deserialize)]
pub struct BillingQuery {
    #[serde(default)]
    cancelled: Option<i64>,
    #[serde(default)]
    refund_requested: Option<i64>,
}

pub async fn billing_page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<BillingQuery>,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let rows = topups::recent(&state.reads, user.id, 10).await?;
    let lots = state.ledger.current_lots(user.wallet).await?;
    let latest = refund_requests::of_user(&state.reads, user.id, 1).await?;
    let refund_open = latest
        .first()
        .is_some_and(|r| r.status == refund_requests::RefundRequestStatus::Requested);
    let refund_request = latest.first().map(|r| {
        format!(
            "Your refund request of {}: {}.",
            format_time(r.created_at),
            r.status.label().to_lowercase()
        )
    });
    let page = BillingPage {
        layout: Layout::new(&user.email, Nav::Billing, &csrf.token, "Billing"),
        available: format_credits(balance.available),
        reserved: (balance.reserved > 0).then(|| format_credits(balance.reserved)),
        split: CreditSplit::of(&lots, chrono::Utc::now()),
        refund_request,
        refund_open,
        terms: AddCreditsTerms::of(&state),
        topups: rows.iter().map(TopupRow::of).collect(),
        notice: match (query.cancelled, query.refund_requested) {
            (Some(_), _) => Some("Payment cancelled. Nothing was charged.".to_string()),
            (None, Some(_)) => Some(
                "We received your request to refund your unused credits. We will review it and refund them to the payments they came from.".to_string(),
            ),
            _ => None,
        },
        form: AmountForm::default(),
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

#[derive(Deserialize)]
pub struct AddCreditsQuery {
    #[serde(default)]
    amount: Option<String>,
}

async fn add_credits_page(
    state: &AppState,
    user: &CurrentUser,
    csrf: &CsrfToken,
    form: AmountForm,
) -> PageResult<String> {
    let balance = state.ledger.balance(user.wallet).await?;
    let page = AddCreditsPage {
        layout: Layout::new(&user.email, Nav::Billing, &csrf.token, "Add Credits"),
        available: format_credits(balance.available),
        terms: AddCreditsTerms::of(state),
        form,
    };
    Ok(page.render()?)
}

/// Add Credits as a page of its own (the modal's form without JavaScript).
pub async fn add_credits_form(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<AddCreditsQuery>,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let form = AmountForm {
        value: kept(&query.amount.unwrap_or_default()),
        ..AmountForm::default()
    };
    let html = add_credits_page(&state, &user, &csrf, form).await?;
    Ok(csrf.attach(Html(html).into_response()))
}

/// The Add Credits form's field.
#[derive(Deserialize)]
pub struct AddCreditsFields {
    #[serde(default)]
    amount: String,
}

#[derive(Template)]
#[template(path = "redirect.html")]
struct RedirectPage {
    action: String,
    fields: Vec<(String, String)>,
    amount: String,
}

/// Add Credits: record the top-up, create the Razorpay order, and hand the browser to Razorpay's
/// hosted checkout with a self-submitting form.
pub async fn create_topup(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<AddCreditsFields>,
) -> PageResult<Response> {
    let amount = match TopupAmount::parse(&form.amount, &state.settings.billing) {
        Ok(amount) => amount,
        Err(message) => {
            let csrf = CsrfToken::for_request(&state.settings, &headers)?;
            let form = AmountForm {
                value: kept(&form.amount),
                error: Some(message),
                preview: None,
            };
            let html = add_credits_page(&state, &user, &csrf, form).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response());
        }
    };
    let checkout = start_topup(&state.services, user.id, &user.email, &amount)
        .await?
        .map_err(|CheckoutRefused(message)| PageError::Upstream(message))?;
    let page = RedirectPage {
        action: checkout.action,
        fields: checkout.fields,
        amount: checkout.amount,
    };
    Ok(Html(page.render()?).into_response())
}

/// "Refund unused credits": the request waits for an operator (Needs attention). Asking again
/// while one is open changes nothing.
pub async fn request_refund(
    State(state): State<AppState>,
    user: CurrentUser,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult<Response> {
    crate::operators::unused_credits::request(&state.services, user.id).await?;
    Ok(axum::response::Redirect::to("/billing?refund_requested=1").into_response())
}
