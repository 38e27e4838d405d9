//! Turning what Razorpay says about a payment into the top-up's outcome. Whoever reports a
//! payment first (the browser's signed callback, a webhook, reconciliation, a refund of it)
//! ends up here with the payment as Razorpay reports it, never as a browser describes it.
//!
//! - At most one payment credits a top-up: the first captured payment of its order to get here,
//!   for the top-up's amount, with the credits fixed when the top-up was created. The credit,
//!   the top-up's move to `paid` and any refunds the payment already has commit together, in
//!   one transaction that locks the top-up.
//! - Any other captured payment on the same order is never credited: we refund it in full.
//! - A payment Razorpay returned before it was captured is recorded, never credited.
//! - An authorised payment is captured by us, unless another payment already paid the top-up.

use razorpay::wire::{CaptureRequest, CreateRefund, Notes, Payment, PaymentStatus, RefundState};
use sea_orm::ConnectionTrait;

use crate::{
    billing::{
        lifecycle, refunds, topups,
        topups::{Topup, TopupStatus},
        uncredited::{self, UncreditedKind},
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// What a report of a payment came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Credited now, or earlier by another report of the same payment.
    Credited { credits: i64, replayed: bool },
    /// No final answer yet: the bank has not answered, or an authorisation awaits its capture.
    Pending,
    /// Failed, with Razorpay's reason code.
    Failed { code: String },
    /// Another payment had already paid the top-up: this one is refunded, not credited.
    Duplicate,
    /// Razorpay returned it before it was captured: recorded, not credited.
    Returned,
    /// Does not fit the top-up (order, amount or currency); left for an operator.
    Flagged { reason: String },
}

/// The ledger key of a top-up payment: one credit per Razorpay payment, ever.
pub fn ledger_key(payment_id: &str) -> String {
    format!("topup:{payment_id}")
}

/// Applies a payment fetched from Razorpay (or in a signed webhook) to its top-up.
pub async fn apply_payment(
    state: &AppState,
    topup: &Topup,
    payment: &Payment,
) -> AppResult<PaymentOutcome> {
    if topup.order_id.is_none() || payment.order_id != topup.order_id {
        let reason = format!(
            "payment {} is for order {:?}, but top-up {} has order {:?}",
            payment.id, payment.order_id, topup.id, topup.order_id
        );
        return flag(state, topup, reason).await;
    }
    match payment.status {
        PaymentStatus::Created => {
            lifecycle::bank_pending(&state.db.write, topup.id).await?;
            Ok(PaymentOutcome::Pending)
        }
        PaymentStatus::Failed => {
            let code = failure_code(payment);
            lifecycle::failed(
                &state.db.write,
                topup.id,
                &code,
                Some(payment.method.as_str()),
            )
            .await?;
            Ok(PaymentOutcome::Failed { code })
        }
        PaymentStatus::Authorized => capture_and_credit(state, topup, payment).await,
        PaymentStatus::Captured => credit(state, topup, payment).await,
        PaymentStatus::Refunded if payment.captured => credit(state, topup, payment).await,
        PaymentStatus::Refunded => returned(state, topup, payment).await,
    }
}

/// Razorpay's reason code for a failed payment (`payment_failed` when it gave none).
fn failure_code(payment: &Payment) -> String {
    payment
        .error_reason
        .as_deref()
        .filter(|r| {
            !r.is_empty()
                && r.len() <= 64
                && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .unwrap_or("payment_failed")
        .to_string()
}

async fn flag(state: &AppState, topup: &Topup, reason: String) -> AppResult<PaymentOutcome> {
    lifecycle::flagged(&state.db.write, topup.id, &reason).await?;
    Ok(PaymentOutcome::Flagged { reason })
}

/// Late authorisation or manual capture: we capture it, for the authorised amount, unless the
/// top-up is already paid (then Razorpay returns this payment itself; capturing it would only
/// make a duplicate to refund).
async fn capture_and_credit(
    state: &AppState,
    topup: &Topup,
    payment: &Payment,
) -> AppResult<PaymentOutcome> {
    let now = topups::find(&state.db, topup.id)
        .await?
        .unwrap_or_else(|| topup.clone());
    if now.status == TopupStatus::Paid {
        return Ok(PaymentOutcome::Pending);
    }
    let capture = CaptureRequest {
        amount: payment.amount,
        currency: payment.currency.clone(),
    };
    let captured = match state.razorpay.capture_payment(&payment.id, &capture).await {
        Ok(captured) => captured,
        // Captured meanwhile by another instance (or refused for a reason Razorpay's record of
        // the payment explains): ask again.
        Err(e) => {
            tracing::info!(payment = payment.id, error = %e, "capture refused; fetching the payment");
            state
                .razorpay
                .fetch_payment(&payment.id)
                .await
                .map_err(anyhow::Error::from)?
        }
    };
    match captured.status {
        PaymentStatus::Captured => credit(state, &now, &captured).await,
        PaymentStatus::Refunded if captured.captured => credit(state, &now, &captured).await,
        PaymentStatus::Refunded => returned(state, &now, &captured).await,
        PaymentStatus::Failed => Box::pin(apply_payment(state, &now, &captured)).await,
        PaymentStatus::Authorized | PaymentStatus::Created => Ok(PaymentOutcome::Pending),
    }
}

/// What the crediting transaction found.
enum CreditResult {
    Credited { credits: i64, replayed: bool },
    PaidByAnother,
}

async fn credit(state: &AppState, topup: &Topup, payment: &Payment) -> AppResult<PaymentOutcome> {
    // The amount Razorpay captured, never the browser's: it must be exactly this top-up's.
    if payment.amount != topup.amount || payment.currency != "INR" {
        let reason = format!(
            "payment {} captured {} {}, top-up {} expected {}",
            payment.id, payment.amount.0, payment.currency, topup.id, topup.amount.0
        );
        return flag(state, topup, reason).await;
    }
    // The callback and the payment's webhooks race to credit: when another report has already
    // credited this payment, answer without taking the single writer. (The locked read below
    // stays the guard; this read only saves the round.)
    if let Some(now) = topups::find(&state.db, topup.id).await?
        && now.credited_by(&payment.id)
    {
        return Ok(PaymentOutcome::Credited {
            credits: now.credits,
            replayed: true,
        });
    }
    // Refunded (partly or fully) before we credited it: its refunds are applied in the same
    // transaction as the credit, so the balance never shows credits that were refunded.
    let refunds = if payment.amount_refunded.0 > 0 {
        state
            .razorpay
            .payment_refunds(&payment.id)
            .await
            .map_err(anyhow::Error::from)?
            .items
    } else {
        Vec::new()
    };
    let wallet = wallet_of(state, topup.user_id).await?;
    let topup_id = topup.id;
    let (refunds, payment_ref) = (&refunds, payment);
    let result = state
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let conn = tx.connection();
                let now = topups::lock(conn, topup_id).await?;
                if now.credited_by(&payment_ref.id) {
                    return Ok(CreditResult::Credited {
                        credits: now.credits,
                        replayed: true,
                    });
                }
                if now.status == TopupStatus::Paid {
                    return Ok(CreditResult::PaidByAnother);
                }
                let receipt = tx
                    .credit(&ledger::Credit {
                        wallet,
                        amount: ledger::Credits::new(now.credits)?,
                        kind: ledger::CreditKind::Purchase,
                        key: ledger::IdempotencyKey::new(ledger_key(&payment_ref.id))?,
                        reference: Some(payment_ref.id.clone()),
                        memo: Some(format!("Top-up #{} via Razorpay", now.id)),
                        expires_at: None,
                    })
                    .await?;
                let moved = lifecycle::paid(
                    conn,
                    now.id,
                    &payment_ref.id,
                    payment_ref.method.as_str(),
                    receipt.transfer.id.0,
                )
                .await?;
                if !moved {
                    return Err(AppError::Internal(anyhow::anyhow!(
                        "top-up {} could not move to paid under its lock",
                        now.id
                    )));
                }
                for refund in refunds {
                    refunds::apply_in(tx, wallet, now.id, refund, true).await?;
                }
                // A top-up may lift the balance back over the alert threshold: re-arm it in the
                // same transaction (one trip to the single writer, not two).
                let balance = tx.balance(wallet).await?;
                crate::alerts::rearm_in(
                    conn,
                    conn.get_database_backend(),
                    now.user_id,
                    balance.available,
                )
                .await?;
                Ok(CreditResult::Credited {
                    credits: now.credits,
                    replayed: false,
                })
            })
        })
        .await?;
    match result {
        CreditResult::Credited { credits, replayed } => {
            if !replayed {
                tracing::info!(
                    topup = topup.id,
                    payment = payment.id,
                    credits,
                    "top-up credited"
                );
            }
            Ok(PaymentOutcome::Credited { credits, replayed })
        }
        CreditResult::PaidByAnother => duplicate(state, topup, payment).await,
    }
}

/// A second captured payment on a paid top-up: recorded, and refunded in full through Razorpay.
async fn duplicate(
    state: &AppState,
    topup: &Topup,
    payment: &Payment,
) -> AppResult<PaymentOutcome> {
    if uncredited::record(
        &state.db.write,
        topup.id,
        &payment.id,
        payment.amount,
        UncreditedKind::Duplicate,
    )
    .await?
    {
        tracing::warn!(
            topup = topup.id,
            payment = payment.id,
            "a second captured payment on a paid top-up; refunding it"
        );
    }
    refund_duplicate(state, &payment.id).await?;
    Ok(PaymentOutcome::Duplicate)
}

/// The key of our refund of a duplicate payment: Razorpay refunds it at most once per key.
fn duplicate_refund_key(payment_id: &str) -> String {
    format!("kalp-duplicate-{payment_id}")
}

/// Refunds a recorded duplicate, unless done. A failure is recorded; reconciliation tries again
/// (the same idempotency key and body make every try the same refund).
pub async fn refund_duplicate(state: &AppState, payment_id: &str) -> AppResult<()> {
    let Some(recorded) = uncredited::find(&state.db, payment_id).await? else {
        return Ok(());
    };
    if recorded.kind != UncreditedKind::Duplicate || recorded.refund_id.is_some() {
        return Ok(());
    }
    let result = async {
        let payment = state.razorpay.fetch_payment(payment_id).await?;
        if payment.amount_refunded >= payment.amount {
            // Refunded already: by an earlier try whose answer was lost, or by support.
            let refunds = state.razorpay.payment_refunds(payment_id).await?;
            let id = refunds
                .items
                .iter()
                .find(|r| r.status != RefundState::Failed)
                .map(|r| r.id.clone())
                .unwrap_or_else(|| "refunded".into());
            return Ok::<_, razorpay::Error>(id);
        }
        // No amount: the whole of what is left, so every try sends the same body.
        let request = CreateRefund {
            notes: Notes::new()
                .with("reason", "duplicate payment")
                .with("topup", recorded.topup_id.to_string()),
            ..CreateRefund::default()
        };
        let refund = state
            .razorpay
            .refund_payment(
                payment_id,
                &request,
                Some(&duplicate_refund_key(payment_id)),
            )
            .await?;
        Ok(refund.id)
    }
    .await;
    match result {
        Ok(refund_id) => {
            uncredited::refunded(&state.db, payment_id, &refund_id).await?;
            tracing::info!(
                payment = payment_id,
                refund = refund_id,
                "duplicate payment refunded"
            );
        }
        Err(e) => {
            tracing::warn!(payment = payment_id, error = %e, "could not refund a duplicate payment yet");
            uncredited::refund_failed(&state.db, payment_id, &e.to_string()).await?;
        }
    }
    Ok(())
}

/// Razorpay returned the payment before it was captured.
async fn returned(state: &AppState, topup: &Topup, payment: &Payment) -> AppResult<PaymentOutcome> {
    uncredited::record(
        &state.db.write,
        topup.id,
        &payment.id,
        payment.amount,
        UncreditedKind::Returned,
    )
    .await?;
    // Its only payment came back: nothing was bought.
    lifecycle::failed(
        &state.db.write,
        topup.id,
        "payment_returned",
        Some(payment.method.as_str()),
    )
    .await?;
    Ok(PaymentOutcome::Returned)
}

pub async fn wallet_of(state: &AppState, user_id: i64) -> AppResult<ledger::AccountId> {
    let row = state
        .db
        .one(
            "SELECT wallet_account_id FROM web_users WHERE id = ?",
            vec![user_id.into()],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {user_id} has no wallet"))?;
    Ok(ledger::AccountId(crate::db::col(
        &row,
        "wallet_account_id",
    )?))
}

/// Razorpay's failure reason codes in our own words. Only a code is ever stored, and only these
/// words are ever shown: a failure's description could have come from anyone.
pub fn plain_reason(code: Option<&str>) -> &'static str {
    match code.unwrap_or_default() {
        "incorrect_otp" => "The OTP you entered was incorrect.",
        "card_declined" => "Your bank declined the card.",
        "insufficient_funds" | "insufficient_fund" => "Your account did not have enough balance.",
        "payment_cancelled" => "The payment was cancelled.",
        "payment_timed_out" => "Your bank did not confirm the payment in time.",
        "authentication_failed" => "Your bank could not confirm the payment.",
        "card_disabled_for_online_payments" => "This card is not enabled for online payments.",
        "card_number_invalid" => "The card number is invalid.",
        "gateway_technical_error" | "bank_technical_error" => {
            "The bank's systems had a problem. No money was taken; try again."
        }
        "invalid_vpa" => "The UPI ID is not valid.",
        "payment_returned" => {
            "Razorpay returned this payment to you before it completed. No credits were added."
        }
        "order_refused" => "Razorpay could not start this payment. Nothing was charged.",
        "order_unavailable" => "We could not reach Razorpay. Nothing was charged.",
        _ => "The payment did not go through.",
    }
}
