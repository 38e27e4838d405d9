//! What a refund does to credits, inside the transaction that applies it (after its top-up is
//! locked). Used by `refunds` for a refund reported on its own, and by `crediting` for refunds a
//! payment already had when it was credited.
//!
//! - A refund of the payment that credited the top-up takes its share of the credits back when
//!   it is created, from paid credits, as far as they go; what was already spent is a shortfall
//!   for an operator, never a negative balance.
//! - If that refund later fails, the credits it took come back in a new transfer ("Refund
//!   failed: credits returned").
//! - A refund of any other payment on our orders (a duplicate we refunded, one Razorpay
//!   returned) is recorded and moves no credits.
//!
//! Per credited payment, always: credits taken back + shortfall = the refunded share of what the
//! top-up bought (`Topup::credits_owed_for`), which `web audit` checks against Razorpay.

use ledger::AccountId;
use razorpay::wire::{Refund, RefundState};

use crate::{
    billing::receipts,
    configuration::Settings,
    services::{ServiceError, ServiceResult},
    store::{
        Tx,
        credit_refunds::{self, CreditRefund, CreditRefundStatus},
        refunds::{self as stored, NewRefund, RefundRecord},
        topup_moves,
        topups::{self, Topup},
    },
};

/// Applies a refund inside `tx`, after locking its top-up. `before_credit` says the refund is
/// applied in the very transaction that credits its payment (it was refunded before we could
/// credit it), which Credit History says.
pub async fn apply_in(
    tx: &Tx<'_>,
    settings: &Settings,
    wallet: AccountId,
    topup_id: i64,
    refund: &Refund,
    before_credit: bool,
) -> ServiceResult<()> {
    let topup = topups::lock(tx, topup_id).await?;
    let credited = topup.credited_by(&refund.payment_id);
    if refund.amount.0 <= 0 {
        return Err(ServiceError::Invariant(format!(
            "refund {} is for {} paise",
            refund.id, refund.amount.0
        )));
    }
    let new_record = |credits: i64, taken: i64, transfer_id: Option<i64>| NewRefund {
        refund_id: &refund.id,
        topup_id: topup.id,
        payment_id: &refund.payment_id,
        amount_paise: refund.amount.0,
        status: refund.status,
        credits,
        taken,
        transfer_id,
    };
    let planned = match refund.notes.get(credit_refunds::NOTE_KEY) {
        Some(key) if credited => credit_refunds::find(tx, key).await?.filter(|p| {
            p.status == CreditRefundStatus::Planned && p.payment_id == refund.payment_id
        }),
        _ => None,
    };
    match stored::find(tx, &refund.id).await? {
        // A refund of unused credits we planned: its credits were taken back when it was planned.
        None if planned.is_some() => {
            if let Some(plan) = planned {
                link_planned(tx, settings, wallet, &topup, refund, &plan).await?;
            }
        }
        None if !credited || refund.status == RefundState::Failed => {
            stored::record(tx, new_record(0, 0, None)).await?;
        }
        None => {
            let before = topup.refunded_paise;
            let after = before + refund.amount.0;
            let owed = topup.credits_owed_for(after) - topup.credits_owed_for(before);
            let mut taken = 0;
            let mut transfer = None;
            if owed > 0 {
                let memo = if before_credit {
                    format!(
                        "Refunded before it was credited: top-up #{} ({})",
                        topup.id, refund.id
                    )
                } else {
                    format!("Refund of top-up #{} ({})", topup.id, refund.id)
                };
                let request = ledger::TakeBack {
                    wallet,
                    max: ledger::Credits::new(owed)?,
                    key: ledger::IdempotencyKey::new(format!("refund:{}", refund.id))?,
                    reference: Some(refund.payment_id.clone()),
                    memo: Some(memo),
                };
                if let Some(receipt) = tx.take_back_paid(&request).await? {
                    taken = receipt.transfer.amount;
                    transfer = Some(receipt.transfer.id.0);
                }
            }
            stored::record(tx, new_record(owed, taken, transfer)).await?;
            // Counted when the transaction body runs: a retried body may count twice (rare).
            crate::telemetry::credits("taken_back", taken);
            topup_moves::add_refund_totals(tx, topup.id, refund.amount.0, taken, owed - taken)
                .await?;
            if owed > taken {
                tracing::warn!(
                    refund = refund.id,
                    topup = topup.id,
                    owed,
                    taken,
                    "refund shortfall: the credits were already spent"
                );
            }
        }
        Some(record) if record.status == refund.status || record.status == RefundState::Failed => {}
        Some(record) => match refund.status {
            // A refund never goes back to pending.
            RefundState::Pending => {}
            RefundState::Processed => {
                stored::set_status(tx, &record.refund_id, refund.status).await?
            }
            RefundState::Failed => {
                stored::set_status(tx, &record.refund_id, refund.status).await?;
                if credited {
                    return_credits(tx, wallet, &topup, &record).await?;
                }
            }
        },
    }
    // The money left us: its refund voucher, in this same transaction (once per refund).
    if credited && refund.status == RefundState::Processed {
        receipts::issue_refund_in(tx, settings, &topup, &refund.id, refund.amount.0).await?;
    }
    Ok(())
}

/// Links Razorpay's refund to the refund of unused credits we planned (and took the credits
/// back for): recorded like any refund of the crediting payment, without taking credits again.
/// If it has failed already, its credits come back at once.
pub async fn link_planned(
    tx: &Tx<'_>,
    settings: &Settings,
    wallet: AccountId,
    topup: &Topup,
    refund: &Refund,
    plan: &CreditRefund,
) -> ServiceResult<()> {
    if refund.amount.0 != plan.amount_paise {
        return Err(ServiceError::Invariant(format!(
            "refund {} is for {} paise, the plan {} for {}",
            refund.id, refund.amount.0, plan.key, plan.amount_paise
        )));
    }
    stored::record(
        tx,
        NewRefund {
            refund_id: &refund.id,
            topup_id: topup.id,
            payment_id: &refund.payment_id,
            amount_paise: refund.amount.0,
            status: RefundState::Pending,
            credits: plan.credits,
            taken: plan.credits,
            transfer_id: Some(plan.transfer_id),
        },
    )
    .await?;
    topup_moves::add_refund_totals(tx, topup.id, refund.amount.0, plan.credits, 0).await?;
    credit_refunds::sent(tx, &plan.key, &refund.id).await?;
    match refund.status {
        RefundState::Pending => {}
        RefundState::Processed => {
            stored::set_status(tx, &refund.id, refund.status).await?;
            receipts::issue_refund_in(tx, settings, topup, &refund.id, refund.amount.0).await?;
        }
        RefundState::Failed => {
            stored::set_status(tx, &refund.id, refund.status).await?;
            let now = topups::lock(tx, topup.id).await?;
            if let Some(record) = stored::find(tx, &refund.id).await? {
                return_credits(tx, wallet, &now, &record).await?;
            }
        }
    }
    Ok(())
}

/// A refund failed: the money stayed with us, so the credits it took come back. Its share of
/// what is owed back is forgiven first from what was taken, then from the shortfall.
async fn return_credits(
    tx: &Tx<'_>,
    wallet: AccountId,
    topup: &Topup,
    record: &RefundRecord,
) -> ServiceResult<()> {
    let before = topup.refunded_paise;
    let after = before - record.amount_paise;
    let forgiven = topup.credits_owed_for(before) - topup.credits_owed_for(after);
    let returned = forgiven.min(topup.refund_taken);
    let mut transfer = None;
    if returned > 0 {
        let receipt = tx
            .credit(&ledger::Credit {
                wallet,
                amount: ledger::Credits::new(returned)?,
                kind: ledger::CreditKind::Purchase,
                key: ledger::IdempotencyKey::new(format!("refund-failed:{}", record.refund_id))?,
                reference: Some(record.payment_id.clone()),
                memo: Some(format!(
                    "Refund failed: credits returned (top-up #{}, {})",
                    topup.id, record.refund_id
                )),
                expires_at: None,
            })
            .await?;
        transfer = Some(receipt.transfer.id.0);
        crate::telemetry::credits("returned", returned);
    }
    stored::returned(tx, &record.refund_id, returned, transfer).await?;
    topup_moves::add_refund_totals(
        tx,
        topup.id,
        -record.amount_paise,
        -returned,
        -(forgiven - returned),
    )
    .await?;
    tracing::info!(
        refund = record.refund_id,
        topup = topup.id,
        returned,
        "a refund failed; its credits were returned"
    );
    Ok(())
}
