//! Refunds of payments on our orders, as Razorpay reports them (a signed webhook's refund
//! re-fetched from Razorpay, or reconciliation's own reading), each applied once.
//!
//! - A refund of the payment that credited a top-up takes its share of the credits back when it
//!   is created, from paid credits, as far as they go; what was already spent is a shortfall
//!   for an operator, never a negative balance.
//! - If that refund later fails, the credits it took come back in a new transfer ("Refund
//!   failed: credits returned").
//! - A refund of any other payment on our orders (a duplicate we refunded, one Razorpay returned)
//!   is recorded and moves no credits.
//! - A refund of a payment we have not credited yet settles that payment first: the credit and
//!   the take-back then commit together (`billing::settle`).
//!
//! Per credited payment, always: credits taken back + shortfall = the refunded share of what the
//! top-up bought (`Topup::credits_owed_for`), which `web audit` checks against Razorpay.

use ledger::{AccountId, LedgerTx};
use razorpay::wire::{Refund, RefundState};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use crate::{
    billing::{settle, topups, uncredited},
    db::{Db, col, exec, now_micros},
    error::{AppError, AppResult},
    state::AppState,
};

/// A refund as we recorded it.
#[derive(Debug, Clone)]
pub struct RefundRecord {
    pub refund_id: String,
    pub topup_id: i64,
    pub payment_id: String,
    pub amount_paise: i64,
    pub status: RefundState,
    /// Credits this refund owed back when it was created (0 for payments that never credited).
    pub credits: i64,
    pub taken: i64,
    pub shortfall: i64,
    /// Credits given back when it failed.
    pub returned: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "refund_id, topup_id, payment_id, amount_paise, status, credits, taken, \
    shortfall, returned, created_at";

fn state_of(s: &str) -> Result<RefundState, DbErr> {
    match s {
        "pending" => Ok(RefundState::Pending),
        "processed" => Ok(RefundState::Processed),
        "failed" => Ok(RefundState::Failed),
        other => Err(DbErr::Custom(format!(
            "a refund has the unknown status {other:?}"
        ))),
    }
}

fn state_str(s: RefundState) -> &'static str {
    match s {
        RefundState::Pending => "pending",
        RefundState::Processed => "processed",
        RefundState::Failed => "failed",
    }
}

impl RefundRecord {
    fn from_row(row: &QueryResult) -> Result<RefundRecord, DbErr> {
        Ok(RefundRecord {
            refund_id: col(row, "refund_id")?,
            topup_id: col(row, "topup_id")?,
            payment_id: col(row, "payment_id")?,
            amount_paise: col(row, "amount_paise")?,
            status: state_of(&col::<String>(row, "status")?)?,
            credits: col(row, "credits")?,
            taken: col(row, "taken")?,
            shortfall: col(row, "shortfall")?,
            returned: col(row, "returned")?,
            created_at: chrono::DateTime::from_timestamp_micros(col(row, "created_at")?)
                .unwrap_or_default(),
        })
    }

    pub fn status_label(&self) -> &'static str {
        match self.status {
            RefundState::Pending => "Pending",
            RefundState::Processed => "Processed",
            RefundState::Failed => "Failed",
        }
    }
}

pub async fn find(db: &Db, refund_id: &str) -> Result<Option<RefundRecord>, DbErr> {
    db.one(
        &format!("SELECT {COLUMNS} FROM web_refunds WHERE refund_id = ?"),
        vec![refund_id.into()],
    )
    .await?
    .as_ref()
    .map(RefundRecord::from_row)
    .transpose()
}

async fn find_in<C: ConnectionTrait>(
    conn: &C,
    refund_id: &str,
) -> Result<Option<RefundRecord>, DbErr> {
    conn.query_one_raw(ledger::statement(
        conn.get_database_backend(),
        &format!("SELECT {COLUMNS} FROM web_refunds WHERE refund_id = ?"),
        vec![refund_id.into()],
    ))
    .await?
    .as_ref()
    .map(RefundRecord::from_row)
    .transpose()
}

/// Every refund recorded for a top-up, oldest first.
pub async fn of_topup(db: &Db, topup_id: i64) -> Result<Vec<RefundRecord>, DbErr> {
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_refunds WHERE topup_id = ? ORDER BY created_at"),
            vec![topup_id.into()],
        )
        .await?;
    rows.iter().map(RefundRecord::from_row).collect()
}

/// Refunds still pending that nobody has looked at for `older_than_micros`.
pub async fn pending(
    db: &Db,
    older_than_micros: i64,
    limit: i64,
) -> Result<Vec<RefundRecord>, DbErr> {
    let rows = db
        .all(
            &format!(
                "SELECT {COLUMNS} FROM web_refunds WHERE status = 'pending' AND updated_at < ? \
                 ORDER BY updated_at LIMIT ?"
            ),
            vec![(now_micros() - older_than_micros).into(), limit.into()],
        )
        .await?;
    rows.iter().map(RefundRecord::from_row).collect()
}

/// Refunds with a shortfall, for the audit's notes.
pub async fn with_shortfall(db: &Db) -> Result<Vec<RefundRecord>, DbErr> {
    let rows = db
        .all(
            &format!(
                "SELECT {COLUMNS} FROM web_refunds WHERE shortfall > 0 AND status <> 'failed' ORDER BY created_at"
            ),
            vec![],
        )
        .await?;
    rows.iter().map(RefundRecord::from_row).collect()
}

/// Every refund recorded for these payments.
pub async fn of_payments(db: &Db, payment_ids: &[String]) -> Result<Vec<RefundRecord>, DbErr> {
    let mut out = Vec::new();
    for chunk in payment_ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let rows = db
            .all(
                &format!("SELECT {COLUMNS} FROM web_refunds WHERE payment_id IN ({placeholders})"),
                chunk
                    .iter()
                    .map(|p| sea_orm::Value::from(p.clone()))
                    .collect(),
            )
            .await?;
        for row in &rows {
            out.push(RefundRecord::from_row(row)?);
        }
    }
    Ok(out)
}

/// Applies a refund as Razorpay reports it now. Refunds of payments that are not on our orders
/// are left alone.
pub async fn apply_refund(state: &AppState, refund: &Refund) -> AppResult<()> {
    let topup = match topups::find_by_payment(&state.db, &refund.payment_id).await? {
        Some(topup) => Some(topup),
        None => match uncredited::find(&state.db, &refund.payment_id).await? {
            Some(payment) => topups::find(&state.db, payment.topup_id).await?,
            None => None,
        },
    };
    let topup = match topup {
        Some(topup) => topup,
        None => {
            // A payment we have not credited (or seen) yet: Razorpay says what it is. When it is
            // on one of our orders, settling it applies its refunds, this one included, in the
            // transaction that credits it.
            let payment = state
                .razorpay
                .fetch_payment(&refund.payment_id)
                .await
                .map_err(anyhow::Error::from)?;
            let Some(order_id) = payment.order_id.as_deref() else {
                return Ok(());
            };
            let Some(topup) = topups::find_by_order(&state.db, order_id).await? else {
                tracing::info!(refund = refund.id, "a refund of a payment that is not ours");
                return Ok(());
            };
            settle::apply_payment(state, &topup, &payment).await?;
            topup
        }
    };
    let wallet = settle::wallet_of(state, topup.user_id).await?;
    let topup_id = topup.id;
    state
        .ledger
        .transact(|tx| Box::pin(async move { apply_in(tx, wallet, topup_id, refund, false).await }))
        .await
}

/// Applies a refund inside `tx`, after locking its top-up. `before_credit` says the refund is
/// applied in the very transaction that credits its payment (it was refunded before we could
/// credit it), which Credit History says.
pub async fn apply_in(
    tx: &LedgerTx<'_>,
    wallet: AccountId,
    topup_id: i64,
    refund: &Refund,
    before_credit: bool,
) -> AppResult<()> {
    let conn = tx.connection();
    let topup = topups::lock(conn, topup_id).await?;
    let credited = topup.credited_by(&refund.payment_id);
    if refund.amount.0 <= 0 {
        return Err(AppError::Internal(anyhow::anyhow!(
            "refund {} is for {} paise",
            refund.id,
            refund.amount.0
        )));
    }
    match find_in(conn, &refund.id).await? {
        None if !credited || refund.status == RefundState::Failed => {
            insert(conn, &topup, refund, 0, 0, None).await?;
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
            insert(conn, &topup, refund, owed, taken, transfer).await?;
            topups::add_refund_totals(conn, topup.id, refund.amount.0, taken, owed - taken).await?;
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
            RefundState::Processed => set_status(conn, &record.refund_id, refund.status).await?,
            RefundState::Failed => {
                set_status(conn, &record.refund_id, refund.status).await?;
                if credited {
                    return_credits(tx, wallet, &topup, &record).await?;
                }
            }
        },
    }
    Ok(())
}

/// A refund failed: the money stayed with us, so the credits it took come back. Its share of
/// what is owed back is forgiven first from what was taken, then from the shortfall.
async fn return_credits(
    tx: &LedgerTx<'_>,
    wallet: AccountId,
    topup: &topups::Topup,
    record: &RefundRecord,
) -> AppResult<()> {
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
    }
    let conn = tx.connection();
    exec(
        conn,
        conn.get_database_backend(),
        "UPDATE web_refunds SET returned = ?, returned_transfer_id = ?, updated_at = ? WHERE refund_id = ?",
        vec![
            returned.into(),
            transfer.into(),
            now_micros().into(),
            record.refund_id.clone().into(),
        ],
    )
    .await?;
    topups::add_refund_totals(
        conn,
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

async fn insert<C: ConnectionTrait>(
    conn: &C,
    topup: &topups::Topup,
    refund: &Refund,
    credits: i64,
    taken: i64,
    transfer: Option<i64>,
) -> Result<(), DbErr> {
    let now = now_micros();
    exec(
        conn,
        conn.get_database_backend(),
        "INSERT INTO web_refunds (refund_id, topup_id, payment_id, amount_paise, status, credits, taken, \
         shortfall, transfer_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            refund.id.clone().into(),
            topup.id.into(),
            refund.payment_id.clone().into(),
            refund.amount.0.into(),
            state_str(refund.status).into(),
            credits.into(),
            taken.into(),
            (credits - taken).into(),
            transfer.into(),
            now.into(),
            now.into(),
        ],
    )
    .await?;
    Ok(())
}

async fn set_status<C: ConnectionTrait>(
    conn: &C,
    refund_id: &str,
    status: RefundState,
) -> Result<(), DbErr> {
    exec(
        conn,
        conn.get_database_backend(),
        "UPDATE web_refunds SET status = ?, updated_at = ? WHERE refund_id = ?",
        vec![
            state_str(status).into(),
            now_micros().into(),
            refund_id.into(),
        ],
    )
    .await?;
    Ok(())
}
