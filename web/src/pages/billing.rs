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
        forms::{CsrfForm, CsrfToken},
        session::CurrentUser,
        views::{Layout, Nav, TopupRow, format_credits},
    },
    state::AppState,
    store::topups,
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
    terms: AddCreditsTerms,
    topups: Vec<TopupRow>,
    notice: Option<String>,
    form: AmountForm,
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
    let page = BillingPage {
        layout: Layout::new(&user.email, Nav::Billing, &csrf.token, "Billing"),
        available: format_credits(balance.available),
        reserved: (balance.reserved > 0).then(|| format_credits(balance.reserved)),
        terms: AddCreditsTerms::of(&state),
        topups: rows.iter().map(TopupRow::of).collect(),
        notice: query
            .cancelled
            .map(|_| "Payment cancelled. Nothing was charged.".to_string()),
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
