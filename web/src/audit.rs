//! The operator's audit: the ledger's own invariants, then every captured Razorpay payment in a
//! time range against our credits, plus anything left for an operator (flags, refund shortfalls).

use std::collections::BTreeSet;

use razorpay::wire::{ListQuery, PaymentStatus};

use crate::{
    billing::{settle::ledger_key, topups},
    db::col,
    error::AppResult,
    state::AppState,
};

pub struct AuditOutcome {
    pub ledger: ledger::AuditReport,
    pub payments_checked: usize,
    pub differences: Vec<String>,
    /// Things an operator should look at that are not errors of ours.
    pub notes: Vec<String>,
}

impl AuditOutcome {
    pub fn is_clean(&self) -> bool {
        self.ledger.is_clean() && self.differences.is_empty()
    }
}

/// `from`/`to` are Unix seconds.
pub async fn run(state: &AppState, from: i64, to: i64) -> AppResult<AuditOutcome> {
    let ledger = state.ledger.audit().await?;
    let mut differences = Vec::new();
    let mut notes = Vec::new();
    let mut captured = BTreeSet::new();
    let mut skip = 0;
    let per_credit = state.settings.billing.paise_per_credit;
    loop {
        let query = ListQuery {
            from: Some(from),
            to: Some(to),
            count: Some(100),
            skip: Some(skip),
        };
        let page = state
            .razorpay
            .list_payments(&query)
            .await
            .map_err(anyhow::Error::from)?;
        let n = page.items.len();
        for payment in page.items {
            if !matches!(
                payment.status,
                PaymentStatus::Captured | PaymentStatus::Refunded
            ) {
                continue;
            }
            captured.insert(payment.id.clone());
            let Some(order_id) = payment.order_id.as_deref() else {
                notes.push(format!("captured payment {} has no order", payment.id));
                continue;
            };
            let Some(topup) = topups::find_by_order(&state.db, order_id).await? else {
                notes.push(format!(
                    "captured payment {} (order {order_id}) is not a top-up of ours",
                    payment.id
                ));
                continue;
            };
            match state
                .ledger
                .transfer_by_key(&ledger_key(&payment.id))
                .await?
            {
                None => differences.push(format!(
                    "captured payment {} for top-up #{} ({}) was never credited",
                    payment.id, topup.id, payment.amount
                )),
                Some(t) if t.amount * per_credit != payment.amount.0 => differences.push(format!(
                    "payment {} captured {} but {} credits were added",
                    payment.id, payment.amount, t.amount
                )),
                Some(_) => {}
            }
        }
        if n < 100 {
            break;
        }
        skip += 100;
    }
    let paid = state
        .db
        .all(
            "SELECT id, razorpay_payment_id FROM web_topups WHERE status = 'paid' AND created_at >= ? AND created_at < ?",
            vec![(from * 1_000_000).into(), (to * 1_000_000).into()],
        )
        .await?;
    for row in &paid {
        let id: i64 = col(row, "id")?;
        let payment: Option<String> = col(row, "razorpay_payment_id")?;
        if let Some(payment) = payment
            && !captured.contains(&payment)
        {
            notes.push(format!(
                "top-up #{id} is paid with {payment}, which Razorpay's payment list did not show as captured (lists can lag)"
            ));
        }
    }
    for row in state
        .db
        .all(
            "SELECT id, flag_reason FROM web_topups WHERE status = 'flagged'",
            vec![],
        )
        .await?
    {
        notes.push(format!(
            "top-up #{} is flagged: {}",
            col::<i64>(&row, "id")?,
            col::<Option<String>>(&row, "flag_reason")?.unwrap_or_default()
        ));
    }
    for row in state
        .db
        .all(
            "SELECT refund_id, topup_id, shortfall FROM web_refunds WHERE shortfall > 0",
            vec![],
        )
        .await?
    {
        notes.push(format!(
            "refund {} of top-up #{}: {} credits could not be taken back (already spent)",
            col::<String>(&row, "refund_id")?,
            col::<i64>(&row, "topup_id")?,
            col::<i64>(&row, "shortfall")?
        ));
    }
    Ok(AuditOutcome {
        ledger,
        payments_checked: captured.len(),
        differences,
        notes,
    })
}
