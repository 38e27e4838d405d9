//! Top-ups as stored: one row per Add Credits, tied to one Razorpay order. Reads only; every
//! change of status goes through `billing::lifecycle`.

use razorpay::Paise;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult};

pub use crate::billing::lifecycle::TopupStatus;
use crate::db::{Db, col};

#[derive(Debug, Clone)]
pub struct Topup {
    pub id: i64,
    pub user_id: i64,
    pub amount: Paise,
    /// The credits it buys, fixed when it was created.
    pub credits: i64,
    /// The rate it was sold at, fixed when it was created.
    pub paise_per_credit: i64,
    pub status: TopupStatus,
    pub order_id: Option<String>,
    /// The payment that credited it (paid top-ups only).
    pub payment_id: Option<String>,
    pub method: Option<String>,
    /// Razorpay's reason code for a failure (shown in our own words, never Razorpay's).
    pub failure_code: Option<String>,
    pub flag_reason: Option<String>,
    /// When a check found the payment still `created` at the bank.
    pub bank_pending_at: Option<i64>,
    /// Paise refunded of the crediting payment, refunds that failed excluded.
    pub refunded_paise: i64,
    /// Credits taken back for those refunds (net of credits returned when one failed).
    pub refund_taken: i64,
    /// Credits those refunds should have taken back but could not (already spent).
    pub refund_shortfall: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "id, user_id, amount_paise, credits, paise_per_credit, status, \
    razorpay_order_id, razorpay_payment_id, method, failure_code, flag_reason, bank_pending_at, \
    refunded_paise, refund_taken, refund_shortfall, created_at";

impl Topup {
    /// Paid with this very payment, and so credited: the credit and `paid` commit together.
    pub fn credited_by(&self, payment_id: &str) -> bool {
        self.status == TopupStatus::Paid && self.payment_id.as_deref() == Some(payment_id)
    }

    /// Credits a refund of `refunded` paise in all owes back: the refunded share of what the
    /// top-up bought, at its own rate, rounded down (a refund never takes more than it paid for;
    /// refunds of the whole amount, in any number of parts, take back every credit).
    pub fn credits_owed_for(&self, refunded: i64) -> i64 {
        if self.paise_per_credit <= 0 {
            return 0;
        }
        refunded.clamp(0, self.amount.0) / self.paise_per_credit
    }

    fn from_row(row: &QueryResult) -> Result<Topup, DbErr> {
        Ok(Topup {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            amount: Paise(col(row, "amount_paise")?),
            credits: col(row, "credits")?,
            paise_per_credit: col(row, "paise_per_credit")?,
            status: TopupStatus::parse(&col::<String>(row, "status")?)?,
            order_id: col(row, "razorpay_order_id")?,
            payment_id: col(row, "razorpay_payment_id")?,
            method: col(row, "method")?,
            failure_code: col(row, "failure_code")?,
            flag_reason: col(row, "flag_reason")?,
            bank_pending_at: col(row, "bank_pending_at")?,
            refunded_paise: col(row, "refunded_paise")?,
            refund_taken: col(row, "refund_taken")?,
            refund_shortfall: col(row, "refund_shortfall")?,
            created_at: chrono::DateTime::from_timestamp_micros(col(row, "created_at")?)
                .unwrap_or_default(),
        })
    }

    pub fn method_label(&self) -> String {
        self.method
            .as_deref()
            .map(|m| razorpay::wire::PaymentMethod::parse(m).label().to_string())
            .unwrap_or_default()
    }
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Topup>, DbErr> {
    let row = db
        .one(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE id = ?"),
            vec![id.into()],
        )
        .await?;
    row.as_ref().map(Topup::from_row).transpose()
}

/// The top-up as this transaction sees it, locked until the transaction ends (PostgreSQL; on
/// SQLite the transaction already holds the single write lock), so that two reports of payments
/// or refunds on one top-up take their turns.
pub async fn lock<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Topup, DbErr> {
    let backend = conn.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let row = conn
        .query_one_raw(ledger::statement(
            backend,
            &format!("SELECT {COLUMNS} FROM web_topups WHERE id = ?{lock}"),
            vec![id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("top-up {id}")))?;
    Topup::from_row(&row)
}

/// A top-up of this user; another account's id is the same as none.
pub async fn find_owned(db: &Db, id: i64, user_id: i64) -> Result<Option<Topup>, DbErr> {
    Ok(find(db, id).await?.filter(|t| t.user_id == user_id))
}

pub async fn find_by_order(db: &Db, order_id: &str) -> Result<Option<Topup>, DbErr> {
    let row = db
        .one(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE razorpay_order_id = ?"),
            vec![order_id.into()],
        )
        .await?;
    row.as_ref().map(Topup::from_row).transpose()
}

/// The top-up this payment credited, if it credited one.
pub async fn find_by_payment(db: &Db, payment_id: &str) -> Result<Option<Topup>, DbErr> {
    let row = db
        .one(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE razorpay_payment_id = ?"),
            vec![payment_id.into()],
        )
        .await?;
    row.as_ref().map(Topup::from_row).transpose()
}

pub async fn recent(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Topup>, DbErr> {
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE user_id = ? AND status <> 'creating' ORDER BY id DESC LIMIT ?"),
            vec![user_id.into(), limit.into()],
        )
        .await?;
    rows.iter().map(Topup::from_row).collect()
}

/// Top-ups still flagged for an operator.
pub async fn flagged(db: &Db) -> Result<Vec<Topup>, DbErr> {
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE status = 'flagged' ORDER BY id"),
            vec![],
        )
        .await?;
    rows.iter().map(Topup::from_row).collect()
}

/// Paid top-ups created in `[from, to)` (Unix microseconds).
pub async fn paid_between(db: &Db, from: i64, to: i64) -> Result<Vec<Topup>, DbErr> {
    let rows = db
        .all(
            &format!(
                "SELECT {COLUMNS} FROM web_topups WHERE status = 'paid' AND created_at >= ? AND created_at < ? ORDER BY id"
            ),
            vec![from.into(), to.into()],
        )
        .await?;
    rows.iter().map(Topup::from_row).collect()
}

/// Top-ups by Razorpay payment id, for Credit History rows.
pub async fn by_payment_ids(db: &Db, user_id: i64, ids: &[String]) -> Result<Vec<Topup>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let mut values: Vec<sea_orm::Value> = vec![user_id.into()];
    values.extend(ids.iter().map(|i| sea_orm::Value::from(i.clone())));
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE user_id = ? AND razorpay_payment_id IN ({placeholders})"),
            values,
        )
        .await?;
    rows.iter().map(Topup::from_row).collect()
}

/// Records what a refund of the crediting payment changed on the top-up's refund totals.
pub async fn add_refund_totals<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    refunded_paise: i64,
    taken: i64,
    shortfall: i64,
) -> Result<(), DbErr> {
    crate::db::exec(
        conn,
        conn.get_database_backend(),
        "UPDATE web_topups SET refunded_paise = refunded_paise + ?, refund_taken = refund_taken + ?, \
         refund_shortfall = refund_shortfall + ?, updated_at = ? WHERE id = ?",
        vec![
            refunded_paise.into(),
            taken.into(),
            shortfall.into(),
            crate::db::now_micros().into(),
            id.into(),
        ],
    )
    .await?;
    Ok(())
}
