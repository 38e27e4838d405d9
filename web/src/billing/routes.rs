//! Billing pages and the Razorpay round trip.

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use razorpay::{
    Paise,
    wire::{CreateOrder, Notes},
};
use serde::Deserialize;

use crate::{
    auth::{CsrfForm, CsrfToken, CurrentUser, field, form_fields},
    billing::{
        amount::{TopupAmount, credits_per_rupee},
        settle,
        topups::{self, Status, Topup},
    },
    error::{AppError, AppResult},
    pages::{Layout, Nav},
    state::AppState,
};

/// A top-up as the pages show it.
pub struct TopupRow {
    pub id: i64,
    pub date: String,
    pub amount: String,
    pub credits: String,
    pub method: String,
    pub status: &'static str,
    pub status_class: &'static str,
}

impl TopupRow {
    pub fn of(t: &Topup) -> TopupRow {
        TopupRow {
            id: t.id,
            date: crate::pages::format_time(t.created_at),
            amount: t.amount.display_inr(),
            credits: crate::pages::format_credits(t.credits),
            method: t.method_label(),
            status: t.status.label(),
            status_class: t.status.as_str(),
        }
    }
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    layout: Layout,
    available: String,
    reserved: Option<String>,
    rate: String,
    paise_per_credit: i64,
    min_rupees: String,
    max_rupees: String,
    min_paise: i64,
    max_paise: i64,
    topups: Vec<TopupRow>,
    notice: Option<String>,
    form: AmountForm,
}

#[derive(Template)]
#[template(path = "topup.html")]
struct TopupPage {
    layout: Layout,
    available: String,
    rate: String,
    paise_per_credit: i64,
    min_rupees: String,
    max_rupees: String,
    min_paise: i64,
    max_paise: i64,
    form: AmountForm,
}

/// What was typed, and what was wrong with it.
#[derive(Default)]
pub struct AmountForm {
    pub value: String,
    pub error: Option<String>,
    pub preview: Option<String>,
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
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let rows = topups::recent(&state.db, user.id, 10).await?;
    let b = &state.settings.billing;
    let page = BillingPage {
        layout: Layout::new(&user, Nav::Billing, &csrf.token, "Billing"),
        available: crate::pages::format_credits(balance.available),
        reserved: (balance.reserved > 0).then(|| crate::pages::format_credits(balance.reserved)),
        rate: credits_per_rupee(b),
        paise_per_credit: b.paise_per_credit,
        min_rupees: Paise(b.min_topup_paise).display_inr(),
        max_rupees: Paise(b.max_topup_paise).display_inr(),
        min_paise: b.min_topup_paise,
        max_paise: b.max_topup_paise,
        topups: rows.iter().map(TopupRow::of).collect(),
        notice: query
            .cancelled
            .map(|_| "Payment cancelled. Nothing was charged.".to_string()),
        form: AmountForm::default(),
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

#[derive(Deserialize)]
pub struct TopupQuery {
    #[serde(default)]
    amount: Option<String>,
}

fn topup_page(
    state: &AppState,
    user: &CurrentUser,
    csrf: &CsrfToken,
    available: i64,
    form: AmountForm,
) -> AppResult<String> {
    let b = &state.settings.billing;
    let page = TopupPage {
        layout: Layout::new(user, Nav::Billing, &csrf.token, "Add Credits"),
        available: crate::pages::format_credits(available),
        rate: credits_per_rupee(b),
        paise_per_credit: b.paise_per_credit,
        min_rupees: Paise(b.min_topup_paise).display_inr(),
        max_rupees: Paise(b.max_topup_paise).display_inr(),
        min_paise: b.min_topup_paise,
        max_paise: b.max_topup_paise,
        form,
    };
    Ok(page.render()?)
}

/// Add Credits as a page of its own (the modal's form without JavaScript).
pub async fn topup_form(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<TopupQuery>,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let form = AmountForm {
        value: query.amount.unwrap_or_default().chars().take(40).collect(),
        ..AmountForm::default()
    };
    let html = topup_page(&state, &user, &csrf, balance.available, form)?;
    Ok(csrf.attach(Html(html).into_response()))
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
    CsrfForm(form): CsrfForm,
) -> AppResult<Response> {
    let typed = field(&form, "amount");
    let amount = match TopupAmount::parse(typed, &state.settings.billing) {
        Ok(amount) => amount,
        Err(message) => {
            let csrf = CsrfToken::for_request(&state, &headers)?;
            let balance = state.ledger.balance(user.wallet).await?;
            let kept: String = typed.chars().take(40).collect();
            let html = topup_page(
                &state,
                &user,
                &csrf,
                balance.available,
                AmountForm {
                    value: kept,
                    error: Some(message),
                    preview: None,
                },
            )?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response());
        }
    };
    let topup_id = topups::create(&state.db, user.id, amount.paise, amount.credits).await?;
    let mut order = CreateOrder::inr(amount.paise);
    order.receipt = Some(format!("topup_{topup_id}"));
    order.notes = Notes::new()
        .with("account", format!("user:{}", user.id))
        .with("topup", topup_id.to_string())
        .with("credits", amount.credits.to_string());
    let order = match state.razorpay.create_order(&order).await {
        Ok(order) => order,
        Err(e) => {
            tracing::warn!(topup = topup_id, error = %e, "could not create the Razorpay order");
            topups::mark_failed(
                &state.db,
                topup_id,
                "We could not reach Razorpay. Nothing was charged.",
                None,
            )
            .await?;
            return Err(AppError::Upstream(
                "We could not reach our payment partner, Razorpay. Nothing was charged. Please try again in a minute."
                    .into(),
            ));
        }
    };
    if order.amount != amount.paise {
        topups::flag(
            &state.db,
            topup_id,
            "Razorpay created the order for another amount",
        )
        .await?;
        return Err(AppError::Upstream(
            "Razorpay answered with another amount. Nothing was charged.".into(),
        ));
    }
    topups::attach_order(&state.db, topup_id, &order.id).await?;
    let base = state.settings.public_url();
    let fields = vec![
        ("key_id", state.settings.razorpay.key_id.clone()),
        ("order_id", order.id.clone()),
        ("amount", amount.paise.0.to_string()),
        ("currency", "INR".to_string()),
        ("name", state.settings.billing.merchant_name.clone()),
        (
            "description",
            format!(
                "Add Credits: {} credits",
                crate::pages::format_credits(amount.credits)
            ),
        ),
        ("prefill[email]", user.email.clone()),
        ("notes[topup]", topup_id.to_string()),
        (
            "callback_url",
            format!("{base}/billing/topups/{topup_id}/callback"),
        ),
        (
            "cancel_url",
            format!("{base}/billing/topups/{topup_id}/cancel"),
        ),
    ];
    let page = RedirectPage {
        action: format!("{}/v1/checkout/embedded", state.razorpay.base_url()),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        amount: amount.paise.display_inr(),
    };
    Ok(Html(page.render()?).into_response())
}

/// Razorpay's callback (a cross-site form POST, so it carries no session cookie and no CSRF
/// token): the signature over the order id *we* stored proves it; the payment itself is fetched
/// from Razorpay. Then the browser is sent to the top-up's page.
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> AppResult<Response> {
    let form = form_fields(form)?;
    let topup = topups::find(&state.db, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let order_id = topup.order_id.clone().ok_or(AppError::NotFound)?;
    let payment_id = field(&form, "razorpay_payment_id");
    let signature = field(&form, "razorpay_signature");
    let status_page = Redirect::to(&format!("/billing/topups/{id}")).into_response();
    if !payment_id.is_empty() || !signature.is_empty() {
        if razorpay::signature::verify_payment_signature(
            &order_id,
            payment_id,
            signature,
            &state.settings.razorpay.key_secret,
        )
        .is_err()
        {
            tracing::warn!(topup = id, "callback with a bad signature refused");
            return Err(AppError::BadRequest(
                "We could not verify this payment with Razorpay, so nothing was added. If you paid, your credits will arrive once Razorpay confirms the payment.".into(),
            ));
        }
        let payment = state.razorpay.fetch_payment(payment_id).await.map_err(|e| {
            tracing::warn!(topup = id, error = %e, "could not fetch the payment");
            AppError::Upstream("Razorpay did not answer. Your payment is safe: your credits will appear as soon as Razorpay confirms it.".into())
        })?;
        settle::apply_payment(&state, &topup, &payment).await?;
        return Ok(status_page);
    }
    // A failure: the fields are unsigned, so they are only a hint; Razorpay's own record of the
    // payment decides.
    let metadata = field(&form, "error[metadata]");
    let failed_payment = serde_json::from_str::<serde_json::Value>(metadata)
        .ok()
        .and_then(|m| m["payment_id"].as_str().map(str::to_string))
        .or_else(|| {
            Some(field(&form, "error[metadata][payment_id]").to_string()).filter(|s| !s.is_empty())
        });
    if let Some(payment_id) = failed_payment
        && let Ok(payment) = state.razorpay.fetch_payment(&payment_id).await
    {
        settle::apply_payment(&state, &topup, &payment).await?;
        return Ok(status_page);
    }
    if field(&form, "error[code]").is_empty() {
        return Err(AppError::BadRequest(
            "This is not a payment result we recognise.".into(),
        ));
    }
    // No payment to check (e.g. cancelled before paying): say why, credit nothing.
    let reason = settle::plain_reason(
        Some(field(&form, "error[reason]")),
        Some(field(&form, "error[description]")),
    );
    if topup.status == Status::Pending {
        topups::mark_failed(&state.db, id, &reason, None).await?;
    }
    Ok(status_page)
}

/// Razorpay's cancel_url (a GET): back to Billing; the owner's pending top-up is marked cancelled.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> AppResult<Response> {
    let topup = topups::find_owned(&state.db, id, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    topups::mark_cancelled(&state.db, topup.id).await?;
    Ok(Redirect::to(&format!("/billing?cancelled={id}")).into_response())
}

#[derive(Template)]
#[template(path = "topup_status.html")]
struct StatusPage {
    layout: Layout,
    topup: TopupRow,
    status: Status,
    payment_id: String,
    failure: String,
    balance: String,
    retry_amount: String,
}

/// The outcome of a top-up: confirmation, failure with a way to try again, or waiting.
pub async fn status_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let topup = topups::find_owned(&state.db, id, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let balance = state.ledger.balance(user.wallet).await?;
    let page = StatusPage {
        layout: Layout::new(&user, Nav::Billing, &csrf.token, "Top-up"),
        topup: TopupRow::of(&topup),
        status: topup.status,
        payment_id: topup.payment_id.clone().unwrap_or_default(),
        failure: topup
            .failure_reason
            .clone()
            .unwrap_or_else(|| "The payment did not go through.".into()),
        balance: crate::pages::format_credits(balance.available),
        retry_amount: format!("{}.{:02}", topup.amount.0 / 100, topup.amount.0 % 100),
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}
