//! Turning what Razorpay reports about a payment into the top-up's outcome, crediting at most
//! once. Whoever reports a payment first — the browser's callback, a webhook or reconciliation —
//! ends up here, and the ledger's idempotency key (`topup:<payment id>`) makes every later report
//! a replay that moves nothing.

use razorpay::wire::{CaptureRequest, Payment, PaymentStatus};

use crate::{
    billing::topups::{self, Topup},
    db::{exec, now_micros},
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Credited now, or earlier by another report of the same payment.
    Credited {
        credits: i64,
        replayed: bool,
    },
    /// Razorpay has no final answer yet.
    Pending,
    Failed {
        reason: String,
    },
    /// Does not match the top-up (order or amount); left for an operator, not credited.
    Flagged {
        reason: String,
    },
}

/// The ledger key of a top-up payment: one credit per Razorpay payment, ever.
pub fn ledger_key(payment_id: &str) -> String {
    format!("topup:{payment_id}")
}

/// Applies a payment fetched from Razorpay (never one a browser described) to its top-up.
pub async fn apply_payment(
    state: &AppState,
    topup: &Topup,
    payment: &Payment,
) -> AppResult<Outcome> {
    if payment.order_id.as_deref() != topup.order_id.as_deref() || topup.order_id.is_none() {
        let reason = format!(
            "payment {} is for order {:?}, but top-up {} has order {:?}",
            payment.id, payment.order_id, topup.id, topup.order_id
        );
        topups::flag(&state.db, topup.id, &reason).await?;
        return Ok(Outcome::Flagged { reason });
    }
    match payment.status {
        PaymentStatus::Captured | PaymentStatus::Refunded => credit(state, topup, payment).await,
        PaymentStatus::Authorized => {
            // Late authorisation or manual capture: capture it ourselves, for the authorised amount.
            let capture = CaptureRequest {
                amount: payment.amount,
                currency: payment.currency.clone(),
            };
            let captured = match state.razorpay.capture_payment(&payment.id, &capture).await {
                Ok(captured) => captured,
                // Someone (auto-capture, another instance) captured it meanwhile; ask again.
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
                PaymentStatus::Captured | PaymentStatus::Refunded => {
                    credit(state, topup, &captured).await
                }
                _ => Ok(Outcome::Pending),
            }
        }
        PaymentStatus::Failed => {
            let reason = plain_reason(
                payment.error_reason.as_deref(),
                payment.error_description.as_deref(),
            );
            topups::mark_failed(&state.db, topup.id, &reason, Some(payment.method.as_str()))
                .await?;
            Ok(Outcome::Failed { reason })
        }
        PaymentStatus::Created => Ok(Outcome::Pending),
    }
}

async fn credit(state: &AppState, topup: &Topup, payment: &Payment) -> AppResult<Outcome> {
    // The amount Razorpay captured, never the browser's: it must be exactly this top-up's.
    if payment.amount != topup.amount || payment.currency != "INR" {
        let reason = format!(
            "payment {} captured {} {}, top-up {} expected {}",
            payment.id, payment.amount.0, payment.currency, topup.id, topup.amount.0
        );
        topups::flag(&state.db, topup.id, &reason).await?;
        return Ok(Outcome::Flagged { reason });
    }
    let per_credit = state.settings.billing.paise_per_credit;
    let credits = payment.amount.0 / per_credit;
    if credits != topup.credits || payment.amount.0 % per_credit != 0 {
        let reason = format!(
            "payment {} does not buy the {} credits shown",
            payment.id, topup.credits
        );
        topups::flag(&state.db, topup.id, &reason).await?;
        return Ok(Outcome::Flagged { reason });
    }
    // The callback and the payment's webhooks race to capture and credit: when the other one has
    // already credited this payment, answer from the top-up without taking the single writer.
    // (The ledger's idempotency key stays the guard; this read only saves the round.)
    if let Some(now) = topups::find(&state.db, topup.id).await?
        && now.credited_by(&payment.id)
    {
        return Ok(Outcome::Credited {
            credits,
            replayed: true,
        });
    }
    let wallet = wallet_of(state, topup.user_id).await?;
    let request = ledger::Credit {
        wallet,
        amount: ledger::Credits::new(credits)?,
        kind: ledger::CreditKind::Purchase,
        key: ledger::IdempotencyKey::new(ledger_key(&payment.id))?,
        reference: Some(payment.id.clone()),
        memo: Some(format!("Top-up #{} via Razorpay", topup.id)),
        expires_at: None,
    };
    // The credit and the top-up's status change commit together.
    let tx = state.ledger.begin().await?;
    let receipt = tx.credit(&request).await?;
    exec(
        tx.connection(),
        state.db.backend,
        "UPDATE web_topups SET status = 'paid', razorpay_payment_id = ?, method = ?, \
         credited_transfer_id = ?, failure_reason = NULL, updated_at = ? WHERE id = ? AND status <> 'paid'",
        vec![
            payment.id.clone().into(),
            payment.method.as_str().to_string().into(),
            receipt.transfer.id.0.into(),
            now_micros().into(),
            topup.id.into(),
        ],
    )
    .await?;
    // A top-up may lift the balance back over the alert threshold: re-arm it in the same
    // transaction (one trip to the single writer, not two).
    let balance = tx.balance(wallet).await?;
    crate::alerts::rearm_in(
        tx.connection(),
        state.db.backend,
        topup.user_id,
        balance.available,
    )
    .await?;
    tx.commit().await?;
    if !receipt.replayed {
        tracing::info!(
            topup = topup.id,
            payment = payment.id,
            credits,
            "top-up credited"
        );
    }
    Ok(Outcome::Credited {
        credits,
        replayed: receipt.replayed,
    })
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

/// Razorpay's failure reasons in plain words.
pub fn plain_reason(reason: Option<&str>, description: Option<&str>) -> String {
    let known = match reason.unwrap_or_default() {
        "incorrect_otp" => "The OTP you entered was incorrect.",
        "card_declined" => "Your bank declined the card.",
        "insufficient_funds" | "insufficient_fund" => "Your account did not have enough balance.",
        "payment_cancelled" => "The payment was cancelled.",
        "payment_timed_out" => "The payment was not completed in time.",
        "authentication_failed" => "Your bank could not confirm the payment.",
        "card_disabled_for_online_payments" => "This card is not enabled for online payments.",
        "card_number_invalid" => "The card number is invalid.",
        "gateway_technical_error" | "bank_technical_error" => {
            "The bank's systems had a problem. No money was taken; try again."
        }
        "invalid_vpa" => "The UPI ID is not valid.",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    match description {
        Some(d) if !d.trim().is_empty() => d.trim().to_string(),
        _ => "The payment did not go through.".to_string(),
    }
}
