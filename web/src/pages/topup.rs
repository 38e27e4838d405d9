//! One top-up: Razorpay's callback after the checkout, its page (confirmation, failure with a
//! way to try again, or waiting), and cancelling it.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
};
use razorpay::Paise;
use serde::Deserialize;

use crate::{
    billing::crediting,
    pages::{
        error::{PageError, PageResult},
        forms::{CsrfForm, CsrfToken, NoFields, PlainForm},
        session::CurrentUser,
        views::{Layout, Nav, TopupRow, format_credits, format_time, plain_reason},
    },
    reconcile,
    state::AppState,
    store::{
        payments::{self, UncreditedKind},
        refunds, topup_moves,
        topups::{self, TopupStatus},
    },
};

/// What Razorpay's checkout posts back: a signed success, or an (unsigned) failure.
#[derive(Deserialize)]
pub struct CallbackForm {
    #[serde(default)]
    razorpay_payment_id: String,
    #[serde(default)]
    razorpay_signature: String,
    #[serde(default, rename = "error[code]")]
    error_code: String,
    #[serde(default, rename = "error[metadata]")]
    error_metadata: String,
    #[serde(default, rename = "error[metadata][payment_id]")]
    error_payment_id: String,
}

impl CallbackForm {
    /// The payment a failure names, if it looks like a Razorpay payment id.
    fn named_payment(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.error_metadata)
            .ok()
            .and_then(|m| m["payment_id"].as_str().map(str::to_string))
            .or_else(|| Some(self.error_payment_id.clone()).filter(|s| !s.is_empty()))
            .filter(|id| id.len() <= 40 && id.starts_with("pay_"))
    }
}

/// Razorpay's callback (a cross-site form POST, so it carries no session cookie and no CSRF
/// token): the signature over the order id *we* stored proves it; the payment itself is fetched
/// from Razorpay. Then the browser is sent to the top-up's page.
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    PlainForm(form): PlainForm<CallbackForm>,
) -> PageResult<Response> {
    let topup = topups::find(&state.reads, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let order_id = topup.order_id.clone().ok_or(PageError::NotFound)?;
    let status_page = Redirect::to(&format!("/billing/topups/{id}")).into_response();
    if !form.razorpay_payment_id.is_empty() || !form.razorpay_signature.is_empty() {
        if razorpay::signature::verify_payment_signature(
            &order_id,
            &form.razorpay_payment_id,
            &form.razorpay_signature,
            &state.settings.razorpay.key_secret,
        )
        .is_err()
        {
            tracing::warn!(topup = id, "callback with a bad signature refused");
            return Err(PageError::BadRequest(
                "We could not verify this payment with Razorpay, so nothing was added. If you paid, your credits will arrive once Razorpay confirms the payment.".into(),
            ));
        }
        let payment = state
            .razorpay
            .fetch_payment(&form.razorpay_payment_id)
            .await
            .map_err(|e| {
                tracing::warn!(topup = id, error = %e, "could not fetch the payment");
                PageError::Upstream("Razorpay did not answer. Your payment is safe: your credits will appear as soon as Razorpay confirms it.".into())
            })?;
        crediting::apply_payment(&state.services, &topup, &payment).await?;
        return Ok(status_page);
    }
    // A failure. Its fields are unsigned: anyone can post them, so by themselves they change
    // nothing and none of their words are kept. The payment they name is asked of Razorpay, and
    // counts only if it is on this top-up's order.
    let named_payment = form.named_payment();
    if form.error_code.is_empty() && named_payment.is_none() {
        return Err(PageError::BadRequest(
            "This is not a payment result we recognise.".into(),
        ));
    }
    if let Some(payment_id) = named_payment
        && topup.status != TopupStatus::Paid
        && reconcile::claim_check(&state.services, topup.id, CALLBACK_CHECK_LEASE).await?
    {
        match state.razorpay.fetch_payment(&payment_id).await {
            Ok(payment) if payment.order_id.as_deref() == Some(order_id.as_str()) => {
                crediting::apply_payment(&state.services, &topup, &payment).await?;
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
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let topup = topups::find_owned(&state.reads, id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
    let page = CancelPage {
        layout: Layout::new(
            &user.email,
            Nav::Billing,
            &csrf.token,
            "Payment not completed",
        ),
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
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult<Response> {
    let topup = topups::find_owned(&state.reads, id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
    let topup_id = topup.id;
    state
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { topup_moves::cancelled(writer, topup_id).await })
        })
        .await?;
    Ok(Redirect::to(&format!("/billing?cancelled={id}")).into_response())
}

/// "Try again" for a top-up: Add Credits with the same amount (its owner only).
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> PageResult<Response> {
    let topup = topups::find_owned(&state.reads, id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
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
    /// The receipt voucher's number, once issued.
    receipt: Option<String>,
}

/// A refund of a top-up, as its page shows it.
struct RefundLine {
    date: String,
    amount: String,
    credits: String,
    status: &'static str,
    /// Its refund voucher (id, number), once the refund is processed.
    voucher: Option<(i64, String)>,
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
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let topup = topups::find_owned(&state.reads, id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
    // Still waiting a while after the customer paid: ask Razorpay now rather than wait for
    // reconciliation (in the background, at most once per few seconds per top-up); the page
    // refreshes itself and shows what the check found.
    let waited = chrono::Utc::now() - topup.created_at;
    if topup.status.is_open()
        && waited.num_seconds() >= state.settings.reconcile.page_check_after_secs as i64
    {
        reconcile::check_soon(&state.services, topup.id);
    }
    let balance = state.ledger.balance(user.wallet).await?;
    let refunds = refunds::of_topup(&state.reads, topup.id).await?;
    let uncredited = payments::of_topup(&state.reads, topup.id).await?;
    let issued = crate::store::vouchers::of_topup(&state.reads, topup.id).await?;
    let receipt = issued
        .iter()
        .find(|v| v.kind == crate::store::vouchers::VoucherKind::Receipt)
        .map(|v| v.number.clone());
    let page = StatusPage {
        receipt,
        layout: Layout::new(&user.email, Nav::Billing, &csrf.token, "Top-up"),
        topup: TopupRow::of(&topup),
        status: topup.status,
        payment_id: topup.payment_id.clone().unwrap_or_default(),
        failure: plain_reason(topup.failure_code.as_deref()),
        balance: format_credits(balance.available),
        bank_pending: topup.bank_pending_at.is_some(),
        fully_refunded: topup.status == TopupStatus::Paid && topup.refunded_paise >= topup.amount.0,
        refunds: refunds
            .iter()
            .filter(|r| topup.payment_id.as_deref() == Some(r.payment_id.as_str()))
            .map(|r| RefundLine {
                date: format_time(r.created_at),
                amount: Paise(r.amount_paise).display_inr(),
                credits: format_credits(r.taken - r.returned),
                status: r.status_label(),
                voucher: issued
                    .iter()
                    .find(|v| v.refund_id.as_deref() == Some(r.refund_id.as_str()))
                    .map(|v| (v.id, v.number.clone())),
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
