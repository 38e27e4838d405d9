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
        lifecycle, refunds, settle,
        topups::{self, Topup, TopupStatus},
        uncredited::{self, UncreditedKind},
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
    let topup_id = lifecycle::create(
        &state.db.write,
        user.id,
        amount.paise.0,
        amount.credits,
        amount.paise_per_credit,
    )
    .await?;
    let mut order = CreateOrder::inr(amount.paise);
    order.receipt = Some(format!(
        "{}topup_{topup_id}",
        state.settings.razorpay.receipt_prefix
    ));
    order.notes = Notes::new()
        .with("account", format!("user:{}", user.id))
        .with("topup", topup_id.to_string())
        .with("credits", amount.credits.to_string());
    let order = match state.razorpay.create_order(&order).await {
        Ok(order) => order,
        Err(e) => {
            tracing::warn!(topup = topup_id, error = %e, "could not create the Razorpay order");
            let (code, message) = match &e {
                // Razorpay answered and refused: say what it said (its words, from its API).
                razorpay::Error::BadRequest(refusal) | razorpay::Error::NotFound(refusal) => (
                    "order_refused",
                    format!(
                        "Razorpay could not start this payment: {} Nothing was charged.",
                        refusal.description.trim_end_matches('.').to_string() + "."
                    ),
                ),
                razorpay::Error::Authentication(_) | razorpay::Error::Config(_) => (
                    "order_refused",
                    "Our payment settings were refused by Razorpay, so the payment could not start. Nothing was charged; we have been told."
                        .to_string(),
                ),
                _ => (
                    "order_unavailable",
                    "We could not reach our payment partner, Razorpay. Nothing was charged. Please try again in a minute."
                        .to_string(),
                ),
            };
            lifecycle::failed(&state.db.write, topup_id, code, None).await?;
            return Err(AppError::Upstream(message));
        }
    };
    if order.amount != amount.paise {
        lifecycle::flagged(
            &state.db.write,
            topup_id,
            "Razorpay created the order for another amount",
        )
        .await?;
        return Err(AppError::Upstream(
            "Razorpay answered with another amount. Nothing was charged.".into(),
        ));
    }
    lifecycle::order_created(&state.db.write, topup_id, &order.id).await?;
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
    // A failure. Its fields are unsigned: anyone can post them, so by themselves they change
    // nothing and none of their words are kept. The payment they name is asked of Razorpay, and
    // counts only if it is on this top-up's order.
    let named_payment = serde_json::from_str::<serde_json::Value>(field(&form, "error[metadata]"))
        .ok()
        .and_then(|m| m["payment_id"].as_str().map(str::to_string))
        .or_else(|| {
            Some(field(&form, "error[metadata][payment_id]").to_string()).filter(|s| !s.is_empty())
        })
        .filter(|id| id.len() <= 40 && id.starts_with("pay_"));
    if field(&form, "error[code]").is_empty() && named_payment.is_none() {
        return Err(AppError::BadRequest(
            "This is not a payment result we recognise.".into(),
        ));
    }
    if let Some(payment_id) = named_payment
        && topup.status != TopupStatus::Paid
        && crate::reconcile::claim_check(&state, topup.id, CALLBACK_CHECK_LEASE).await?
    {
        match state.razorpay.fetch_payment(&payment_id).await {
            Ok(payment) if payment.order_id.as_deref() == Some(order_id.as_str()) => {
                settle::apply_payment(&state, &topup, &payment).await?;
            }
            Ok(_) => tracing::warn!(
                topup = id,
                "a failure callback named another order's payment"
            ),
            Err(e) => {
                tracing::info!(topup = id, error = %e, "could not check a failure callback's payment")
            }
        }
    }
    let page = DidNotCompletePage { topup_id: id };
    Ok(Html(page.render()?).into_response())
}

/// How long a failure callback's check of a top-up keeps others from checking it again: a
/// stranger posting failures can't make us call Razorpay more often than this.
const CALLBACK_CHECK_LEASE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the browser that posted a failure sees: nothing about the top-up (it may not be its
/// owner's browser), a way to try again, and the top-up's page for its owner.
#[derive(Template)]
#[template(path = "did_not_complete.html")]
struct DidNotCompletePage {
    topup_id: i64,
}

#[derive(Template)]
#[template(path = "topup_cancel.html")]
struct CancelPage {
    layout: Layout,
    topup: TopupRow,
    open: bool,
}

/// Razorpay's `cancel_url` (a GET, so it changes nothing): the customer left the checkout.
/// Offers Try again, or Cancel this top-up (a form, with CSRF).
pub async fn cancel_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let topup = topups::find_owned(&state.db, id, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let page = CancelPage {
        layout: Layout::new(&user, Nav::Billing, &csrf.token, "Payment not completed"),
        open: topup.status == TopupStatus::Pending,
        topup: TopupRow::of(&topup),
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

/// Cancel this top-up: the owner's pending top-up is marked cancelled; back to Billing.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
    CsrfForm(_): CsrfForm,
) -> AppResult<Response> {
    let topup = topups::find_owned(&state.db, id, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    lifecycle::cancelled(&state.db.write, topup.id).await?;
    Ok(Redirect::to(&format!("/billing?cancelled={id}")).into_response())
}

/// "Try again" for a top-up: Add Credits with the same amount (its owner only).
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> AppResult<Response> {
    let topup = topups::find_owned(&state.db, id, user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Redirect::to(&format!(
        "/billing/topup?amount={}.{:02}",
        topup.amount.0 / 100,
        topup.amount.0 % 100
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "topup_status.html")]
struct StatusPage {
    layout: Layout,
    topup: TopupRow,
    status: TopupStatus,
    payment_id: String,
    failure: &'static str,
    balance: String,
    /// A check found the payment still waiting at the bank.
    bank_pending: bool,
    refunds: Vec<RefundLine>,
    /// Every paisa of the payment was refunded.
    fully_refunded: bool,
    /// Other payments on this top-up's order, which credited nothing.
    uncredited: Vec<UncreditedLine>,
}

/// A refund of a top-up, as its page shows it.
struct RefundLine {
    date: String,
    amount: String,
    credits: String,
    status: &'static str,
}

/// A payment that credited nothing, as the top-up's page shows it.
struct UncreditedLine {
    label: &'static str,
    amount: String,
    payment_id: String,
    refunded: bool,
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
    // Still waiting a while after the customer paid: ask Razorpay now rather than wait for
    // reconciliation (in the background, at most once per few seconds per top-up); the page
    // refreshes itself and shows what the check found.
    let waited = chrono::Utc::now() - topup.created_at;
    if topup.status.is_open()
        && waited.num_seconds() >= state.settings.reconcile.page_check_after_secs as i64
    {
        crate::reconcile::check_soon(&state, topup.id);
    }
    let balance = state.ledger.balance(user.wallet).await?;
    let refunds = refunds::of_topup(&state.db, topup.id).await?;
    let credited_refunds: Vec<_> = refunds
        .iter()
        .filter(|r| topup.payment_id.as_deref() == Some(r.payment_id.as_str()))
        .collect();
    let uncredited = uncredited::of_topup(&state.db, topup.id).await?;
    let page = StatusPage {
        layout: Layout::new(&user, Nav::Billing, &csrf.token, "Top-up"),
        topup: TopupRow::of(&topup),
        status: topup.status,
        payment_id: topup.payment_id.clone().unwrap_or_default(),
        failure: settle::plain_reason(topup.failure_code.as_deref()),
        balance: crate::pages::format_credits(balance.available),
        bank_pending: topup.bank_pending_at.is_some(),
        fully_refunded: topup.status == TopupStatus::Paid && topup.refunded_paise >= topup.amount.0,
        refunds: credited_refunds
            .iter()
            .map(|r| RefundLine {
                date: crate::pages::format_time(r.created_at),
                amount: Paise(r.amount_paise).display_inr(),
                credits: crate::pages::format_credits(r.taken - r.returned),
                status: r.status_label(),
            })
            .collect(),
        uncredited: uncredited
            .iter()
            .map(|p| UncreditedLine {
                label: p.kind.label(),
                amount: p.amount.display_inr(),
                payment_id: p.payment_id.clone(),
                refunded: p.refund_id.is_some() || p.kind == UncreditedKind::Returned,
            })
            .collect(),
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}
