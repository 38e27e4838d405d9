//! Refunds made on Razorpay's side (e.g. from its dashboard): take the refunded credits back from
//! the wallet's paid credits, as far as they go. A wallet never goes below zero: what could not
//! be taken is recorded as a shortfall for an operator.

use razorpay::wire::Refund;

use crate::{
    billing::{
        settle::wallet_of,
        topups::{Status, Topup},
    },
    db::{exec, now_micros},
    error::AppResult,
    state::AppState,
};

pub async fn apply_refund(state: &AppState, topup: &Topup, refund: &Refund) -> AppResult<()> {
    if refund.amount.0 <= 0 {
        return Ok(());
    }
    // Credits bought by the refunded amount, rounded down: a partial refund never takes more
    // than it paid for.
    let credits = if topup.status == Status::Paid {
        refund.amount.0 / state.settings.billing.paise_per_credit
    } else {
        0
    };
    let wallet = wallet_of(state, topup.user_id).await?;
    let tx = state.ledger.begin().await?;
    let backend = state.db.backend;
    // Claim the refund first: each refund is applied once, whichever event reports it.
    let claimed = exec(
        tx.connection(),
        backend,
        "INSERT INTO web_refunds (refund_id, topup_id, payment_id, amount_paise, credits, taken, shortfall, created_at) \
         VALUES (?, ?, ?, ?, ?, 0, 0, ?) ON CONFLICT (refund_id) DO NOTHING",
        vec![
            refund.id.clone().into(),
            topup.id.into(),
            refund.payment_id.clone().into(),
            refund.amount.0.into(),
            credits.into(),
            now_micros().into(),
        ],
    )
    .await?;
    if claimed == 0 {
        tx.rollback().await?;
        return Ok(());
    }
    let mut taken = 0;
    let mut transfer_id: Option<i64> = None;
    if credits > 0 {
        let request = ledger::TakeBack {
            wallet,
            max: ledger::Credits::new(credits)?,
            key: ledger::IdempotencyKey::new(format!("refund:{}", refund.id))?,
            reference: Some(refund.payment_id.clone()),
            memo: Some(format!("Refund {} of top-up #{}", refund.id, topup.id)),
        };
        if let Some(receipt) = tx.take_back_paid(&request).await? {
            taken = receipt.transfer.amount;
            transfer_id = Some(receipt.transfer.id.0);
        }
    }
    let shortfall = credits - taken;
    exec(
        tx.connection(),
        backend,
        "UPDATE web_refunds SET taken = ?, shortfall = ?, transfer_id = ? WHERE refund_id = ?",
        vec![
            taken.into(),
            shortfall.into(),
            transfer_id.into(),
            refund.id.clone().into(),
        ],
    )
    .await?;
    tx.commit().await?;
    if shortfall > 0 {
        tracing::warn!(
            refund = refund.id,
            topup = topup.id,
            credits,
            taken,
            shortfall,
            "refund shortfall: credits were already spent"
        );
    } else {
        tracing::info!(
            refund = refund.id,
            topup = topup.id,
            taken,
            "refunded credits taken back"
        );
    }
    Ok(())
}
