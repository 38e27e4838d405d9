//! Resolving a flagged top-up: credit it as it promised, refund its payment through Razorpay
//! (in full or in part), or dismiss it. Each resolves the top-up once: the top-up is locked and
//! must still be flagged and unresolved, so a double click or two operators at once do it once.
//! Crediting asks Razorpay first: only a payment Razorpay says is captured is credited.

use razorpay::{
    Paise,
    wire::{CreateRefund, Notes, PaymentStatus},
};

use crate::{
    billing::{crediting, receipts, take_back},
    operators::{ActionOutcome, Reason},
    services::{ServiceError, ServiceResult, Services},
    store::{
        Tx, alerts,
        operator_actions::{self, NewOperatorAction},
        topup_moves,
        topups::{self, FlagResolution, Topup, TopupStatus},
    },
};

/// What an operator can do with a flagged top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagAction {
    CreditAsPromised,
    /// `None`: all that is left of the payment.
    Refund(Option<Paise>),
    Dismiss,
}

fn open(topup: &Topup) -> bool {
    topup.status == TopupStatus::Flagged && topup.resolution.is_none()
}

/// The key that makes resolving this top-up happen once.
fn resolve_key(topup_id: i64) -> String {
    format!("resolve:topup:{topup_id}")
}

/// Razorpay's idempotency key for refunding a flagged top-up's payment.
fn refund_key(topup_id: i64) -> String {
    format!("kalp-flagged-{topup_id:06}")
}

pub async fn resolve(
    services: &Services,
    operator_id: i64,
    topup_id: i64,
    action: FlagAction,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let Some(topup) = topups::find(&services.reads, topup_id).await? else {
        return Ok(ActionOutcome::Refused("No such top-up.".into()));
    };
    if !open(&topup) {
        return Ok(ActionOutcome::AlreadyDone);
    }
    match action {
        FlagAction::Dismiss => dismiss(services, operator_id, &topup, reason).await,
        FlagAction::CreditAsPromised => credit(services, operator_id, &topup, reason).await,
        FlagAction::Refund(amount) => refund(services, operator_id, &topup, amount, reason).await,
    }
}

/// Records the resolution of a locked, still open top-up; `None` when it is no longer open.
async fn record_resolution(
    tx: &Tx<'_>,
    operator_id: i64,
    topup: &Topup,
    action: &str,
    detail: &str,
    reason: &Reason,
) -> ServiceResult<Option<(i64, Topup)>> {
    let now = topups::lock(tx, topup.id).await?;
    if !open(&now) {
        return Ok(None);
    }
    let id = operator_actions::record(
        tx,
        NewOperatorAction {
            key: &resolve_key(topup.id),
            operator_id,
            customer_id: Some(topup.user_id),
            action,
            detail,
            reason: reason.as_str(),
        },
    )
    .await?;
    Ok(id.map(|id| (id, now)))
}

async fn dismiss(
    services: &Services,
    operator_id: i64,
    topup: &Topup,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let detail = format!("dismissed flagged top-up #{}", topup.id);
    let detail = detail.as_str();
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let Some(_) =
                    record_resolution(tx, operator_id, topup, "dismiss_flagged", detail, reason)
                        .await?
                else {
                    return Ok(ActionOutcome::AlreadyDone);
                };
                topup_moves::resolve_flag(tx, topup.id, FlagResolution::Dismissed).await?;
                Ok(ActionOutcome::Done(format!(
                    "Top-up #{} dismissed: nothing was credited or refunded.",
                    topup.id
                )))
            })
        })
        .await
}

async fn credit(
    services: &Services,
    operator_id: i64,
    topup: &Topup,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let Some(payment_id) = topup.flagged_payment_id.clone() else {
        return Ok(ActionOutcome::Refused(
            "This top-up has no payment to credit; dismiss it instead.".into(),
        ));
    };
    let payment = services.razorpay.fetch_payment(&payment_id).await?;
    if payment.status != PaymentStatus::Captured || payment.amount_refunded.0 > 0 {
        return Ok(ActionOutcome::Refused(format!(
            "Razorpay says payment {payment_id} is {:?} with {} refunded: only a captured payment with nothing refunded can be credited.",
            payment.status, payment.amount_refunded
        )));
    }
    let wallet = crediting::wallet_of(services, topup.user_id).await?;
    let detail = format!(
        "credited flagged top-up #{} as promised: {} credits for payment {payment_id} ({} captured)",
        topup.id, topup.credits, payment.amount
    );
    let (detail, payment_id, method) = (&detail, &payment_id, payment.method.as_str());
    let settings = &services.settings;
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let Some((action, now)) =
                    record_resolution(tx, operator_id, topup, "credit_flagged", detail, reason)
                        .await?
                else {
                    return Ok(ActionOutcome::AlreadyDone);
                };
                let receipt = tx
                    .credit(&ledger::Credit {
                        wallet,
                        amount: ledger::Credits::new(now.credits)?,
                        kind: ledger::CreditKind::Purchase,
                        key: ledger::IdempotencyKey::new(crediting::ledger_key(payment_id))?,
                        reference: Some(payment_id.clone()),
                        memo: Some(format!("Top-up #{} via Razorpay", now.id)),
                        expires_at: None,
                    })
                    .await?;
                if receipt.replayed {
                    return Err(ServiceError::Invariant(format!(
                        "payment {payment_id} already credited a top-up"
                    )));
                }
                if !topup_moves::resolve_credited(
                    tx,
                    now.id,
                    payment_id,
                    method,
                    receipt.transfer.id,
                )
                .await?
                {
                    return Err(ServiceError::Invariant(format!(
                        "top-up {} could not be resolved under its lock",
                        now.id
                    )));
                }
                receipts::issue_receipt_in(tx, settings, &now, payment_id).await?;
                operator_actions::caused(tx, action, Some(receipt.transfer.id.0), None).await?;
                let balance = tx.balance(wallet).await?;
                alerts::rearm_at_or_above(tx, now.user_id, balance.available).await?;
                Ok(ActionOutcome::Done(format!(
                    "Top-up #{} credited: {} credits.",
                    now.id,
                    crate::billing::amount::group_credits(now.credits)
                )))
            })
        })
        .await
}

async fn refund(
    services: &Services,
    operator_id: i64,
    topup: &Topup,
    amount: Option<Paise>,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let Some(payment_id) = topup.flagged_payment_id.clone() else {
        return Ok(ActionOutcome::Refused(
            "This top-up has no payment to refund; dismiss it instead.".into(),
        ));
    };
    let payment = services.razorpay.fetch_payment(&payment_id).await?;
    let left = Paise(payment.amount.0 - payment.amount_refunded.0);
    if let Some(amount) = amount
        && (amount.0 <= 0 || amount > left)
    {
        return Ok(ActionOutcome::Refused(format!(
            "Refund between ₹0.01 and {left}, what is left of payment {payment_id}."
        )));
    }
    let request = CreateRefund {
        amount,
        notes: Notes::new()
            .with("reason", "flagged top-up")
            .with("topup", topup.id.to_string()),
        ..CreateRefund::default()
    };
    let refund = match services
        .razorpay
        .refund_payment(&payment_id, &request, Some(&refund_key(topup.id)))
        .await
    {
        Ok(refund) => refund,
        Err(razorpay::Error::BadRequest(refusal)) => {
            return Ok(ActionOutcome::Refused(format!(
                "Razorpay refused the refund: {}",
                refusal.description
            )));
        }
        Err(razorpay::Error::Conflict(_)) => {
            return Ok(ActionOutcome::Refused(
                "Another refund of this payment is under way; reload the page.".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let wallet = crediting::wallet_of(services, topup.user_id).await?;
    let detail = format!(
        "refunded {} of flagged top-up #{}'s payment {payment_id} ({})",
        refund.amount, topup.id, refund.id
    );
    let (detail, refund, settings) = (&detail, &refund, &services.settings);
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let Some((action, now)) =
                    record_resolution(tx, operator_id, topup, "refund_flagged", detail, reason)
                        .await?
                else {
                    return Ok(ActionOutcome::AlreadyDone);
                };
                topup_moves::resolve_flag(tx, now.id, FlagResolution::Refunded).await?;
                // Recorded like any refund of a payment that never credited: no credits move.
                take_back::apply_in(tx, settings, wallet, now.id, refund, false).await?;
                operator_actions::caused(tx, action, None, Some(&refund.id)).await?;
                Ok(ActionOutcome::Done(format!(
                    "Refund {} of {} started for top-up #{}.",
                    refund.id, refund.amount, now.id
                )))
            })
        })
        .await
}
