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

use crate::{
    billing::{receipts, take_back},
    services::{ServiceError, ServiceResult, Services},
    store::{
        alerts, payments,
        payments::UncreditedKind,
        topup_moves,
        topups::{self, Topup, TopupStatus},
        users,
    },
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

impl PaymentOutcome {
    /// The outcome's name in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            PaymentOutcome::Credited {
                replayed: false, ..
            } => "credited",
            PaymentOutcome::Credited { replayed: true, .. } => "already_credited",
            PaymentOutcome::Pending => "pending",
            PaymentOutcome::Failed { .. } => "failed",
            PaymentOutcome::Duplicate => "duplicate",
            PaymentOutcome::Returned => "returned",
            PaymentOutcome::Flagged { .. } => "flagged",
        }
    }
}

/// Applies a payment fetched from Razorpay (or in a signed webhook) to its top-up.
pub async fn apply_payment(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    let outcome = settle_payment(services, topup, payment).await?;
    metrics::counter!("kalp_topup_payments_total", "outcome" => outcome.label()).increment(1);
    if let PaymentOutcome::Credited {
        credits,
        replayed: false,
    } = outcome
    {
        crate::telemetry::credits("credited", credits);
    }
    Ok(outcome)
}

async fn settle_payment(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    if topup.order_id.is_none() || payment.order_id != topup.order_id {
        let reason = format!(
            "payment {} is for order {:?}, but top-up {} has order {:?}",
            payment.id, payment.order_id, topup.id, topup.order_id
        );
        return flag(services, topup, payment, reason).await;
    }
    let id = topup.id;
    match payment.status {
        PaymentStatus::Created => {
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(async move { topup_moves::bank_pending(writer, id).await })
                })
                .await?;
            Ok(PaymentOutcome::Pending)
        }
        PaymentStatus::Failed => {
            let code = failure_code(payment);
            let (code_ref, method) = (&code, payment.method.as_str());
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(async move {
                        topup_moves::failed(writer, id, code_ref, Some(method)).await
                    })
                })
                .await?;
            Ok(PaymentOutcome::Failed { code })
        }
        PaymentStatus::Authorized => capture_and_credit(services, topup, payment).await,
        PaymentStatus::Captured => credit(services, topup, payment).await,
        PaymentStatus::Refunded if payment.captured => credit(services, topup, payment).await,
        PaymentStatus::Refunded => returned(services, topup, payment).await,
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

async fn flag(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
    reason: String,
) -> ServiceResult<PaymentOutcome> {
    let (id, why, payment_id) = (topup.id, &reason, payment.id.as_str());
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { topup_moves::flag(writer, id, why, Some(payment_id)).await })
        })
        .await?;
    Ok(PaymentOutcome::Flagged { reason })
}

/// Late authorisation or manual capture: we capture it, for the authorised amount, unless the
/// top-up is already paid (then Razorpay returns this payment itself; capturing it would only
/// make a duplicate to refund).
async fn capture_and_credit(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    let now = topups::find(&services.reads, topup.id)
        .await?
        .unwrap_or_else(|| topup.clone());
    if now.status == TopupStatus::Paid {
        return Ok(PaymentOutcome::Pending);
    }
    let capture = CaptureRequest {
        amount: payment.amount,
        currency: payment.currency.clone(),
    };
    let captured = match services
        .razorpay
        .capture_payment(&payment.id, &capture)
        .await
    {
        Ok(captured) => captured,
        // Captured meanwhile by another instance (or refused for a reason Razorpay's record of
        // the payment explains): ask again.
        Err(e) => {
            tracing::info!(payment = payment.id, error = %e, "capture refused; fetching the payment");
            services.razorpay.fetch_payment(&payment.id).await?
        }
    };
    match captured.status {
        PaymentStatus::Captured => credit(services, &now, &captured).await,
        PaymentStatus::Refunded if captured.captured => credit(services, &now, &captured).await,
        PaymentStatus::Refunded => returned(services, &now, &captured).await,
        PaymentStatus::Failed => Box::pin(apply_payment(services, &now, &captured)).await,
        PaymentStatus::Authorized | PaymentStatus::Created => Ok(PaymentOutcome::Pending),
    }
}

/// What the crediting transaction found.
enum CreditResult {
    Credited { credits: i64, replayed: bool },
    PaidByAnother,
}

async fn credit(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    // The amount Razorpay captured, never the browser's: it must be exactly this top-up's.
    if payment.amount != topup.amount || payment.currency != "INR" {
        let reason = format!(
            "payment {} captured {} {}, top-up {} expected {}",
            payment.id, payment.amount.0, payment.currency, topup.id, topup.amount.0
        );
        return flag(services, topup, payment, reason).await;
    }
    // The callback and the payment's webhooks race to credit: when another report has already
    // credited this payment, answer without taking the single writer. (The locked read below
    // stays the guard; this read only saves the round.)
    if let Some(now) = topups::find(&services.reads, topup.id).await?
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
        services.razorpay.payment_refunds(&payment.id).await?.items
    } else {
        Vec::new()
    };
    let wallet = wallet_of(services, topup.user_id).await?;
    let topup_id = topup.id;
    let (refunds, payment_ref, settings) = (&refunds, payment, &services.settings);
    let result = services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let now = topups::lock(tx, topup_id).await?;
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
                let moved = topup_moves::paid(
                    tx,
                    now.id,
                    &payment_ref.id,
                    payment_ref.method.as_str(),
                    receipt.transfer.id,
                )
                .await?;
                if !moved {
                    return Err(ServiceError::Invariant(format!(
                        "top-up {} could not move to paid under its lock",
                        now.id
                    )));
                }
                // Re-arms the alert a top-up lifts over its threshold (after any refunds).
                let rearm = |tx| async move {
                    let balance = ledger::LedgerTx::balance(tx, wallet).await?;
                    alerts::rearm_at_or_above(tx, now.user_id, balance.available).await
                };
                // The receipt's counter (one row) stays locked until commit: take it last.
                if refunds.is_empty() {
                    rearm(tx).await?;
                }
                receipts::issue_receipt_in(tx, settings, &now, &payment_ref.id).await?;
                for refund in refunds {
                    take_back::apply_in(tx, settings, wallet, now.id, refund, true).await?;
                }
                if !refunds.is_empty() {
                    rearm(tx).await?;
                }
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
        CreditResult::PaidByAnother => duplicate(services, topup, payment).await,
    }
}

/// Records a payment that credits nothing; true when it was new.
async fn record_uncredited(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
    kind: UncreditedKind,
) -> ServiceResult<bool> {
    let (id, payment_id, amount) = (topup.id, payment.id.as_str(), payment.amount);
    Ok(services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { payments::record(writer, id, payment_id, amount, kind).await })
        })
        .await?)
}

/// A second captured payment on a paid top-up: recorded, and refunded in full through Razorpay.
async fn duplicate(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    if record_uncredited(services, topup, payment, UncreditedKind::Duplicate).await? {
        tracing::warn!(
            topup = topup.id,
            payment = payment.id,
            "a second captured payment on a paid top-up; refunding it"
        );
    }
    refund_duplicate(services, &payment.id).await?;
    Ok(PaymentOutcome::Duplicate)
}

/// The key of our refund of a duplicate payment: Razorpay refunds it at most once per key.
fn duplicate_refund_key(payment_id: &str) -> String {
    format!("kalp-duplicate-{payment_id}")
}

/// Refunds a recorded duplicate, unless done. A failure is recorded; reconciliation tries again
/// (the same idempotency key and body make every try the same refund).
pub async fn refund_duplicate(services: &Services, payment_id: &str) -> ServiceResult<()> {
    let Some(recorded) = payments::find(&services.reads, payment_id).await? else {
        return Ok(());
    };
    if recorded.kind != UncreditedKind::Duplicate || recorded.refund_id.is_some() {
        return Ok(());
    }
    let result = async {
        let payment = services.razorpay.fetch_payment(payment_id).await?;
        if payment.amount_refunded >= payment.amount {
            // Refunded already: by an earlier try whose answer was lost, or by support.
            let refunds = services.razorpay.payment_refunds(payment_id).await?;
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
        let refund = services
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
            let refund = refund_id.as_str();
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(async move { payments::refunded(writer, payment_id, refund).await })
                })
                .await?;
            tracing::info!(
                payment = payment_id,
                refund = refund_id,
                "duplicate payment refunded"
            );
        }
        Err(e) => {
            tracing::warn!(payment = payment_id, error = %e, "could not refund a duplicate payment yet");
            let error = &e.to_string();
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(
                        async move { payments::refund_failed(writer, payment_id, error).await },
                    )
                })
                .await?;
        }
    }
    Ok(())
}

/// Razorpay returned the payment before it was captured.
async fn returned(
    services: &Services,
    topup: &Topup,
    payment: &Payment,
) -> ServiceResult<PaymentOutcome> {
    record_uncredited(services, topup, payment, UncreditedKind::Returned).await?;
    // Its only payment came back: nothing was bought.
    let (id, method) = (topup.id, payment.method.as_str());
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move {
                topup_moves::failed(writer, id, "payment_returned", Some(method)).await
            })
        })
        .await?;
    Ok(PaymentOutcome::Returned)
}

/// The wallet of a top-up's account.
pub async fn wallet_of(services: &Services, user_id: i64) -> ServiceResult<ledger::AccountId> {
    users::by_id(&services.reads, user_id)
        .await?
        .map(|u| u.wallet)
        .ok_or_else(|| ServiceError::Invariant(format!("user {user_id} has no wallet")))
}
