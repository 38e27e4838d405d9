//! Payments on our orders that never credit anything, as stored: a second captured payment on an
//! order another payment already paid (we refund it in full), and a payment Razorpay returned
//! itself before it was captured. Customers see both in Credit History, with 0 credits.

use razorpay::Paise;
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use crate::db::{Db, col, exec, now_micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncreditedKind {
    /// Captured on an order another payment had already paid: refunded by us, in full.
    Duplicate,
    /// Returned by Razorpay before it was ever captured (its order was paid meanwhile, or
    /// nobody captured it within the capture window).
    Returned,
}

impl UncreditedKind {
    fn as_str(self) -> &'static str {
        match self {
            UncreditedKind::Duplicate => "duplicate",
            UncreditedKind::Returned => "returned",
        }
    }

    fn parse(s: &str) -> Result<UncreditedKind, DbErr> {
        match s {
            "duplicate" => Ok(UncreditedKind::Duplicate),
            "returned" => Ok(UncreditedKind::Returned),
            other => Err(DbErr::Custom(format!(
                "an uncredited payment has the unknown kind {other:?}"
            ))),
        }
    }

    /// How Credit History names it.
    pub fn label(self) -> &'static str {
        match self {
            UncreditedKind::Duplicate => "Duplicate payment refunded",
            UncreditedKind::Returned => "Payment returned by Razorpay",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UncreditedPayment {
    pub payment_id: String,
    pub topup_id: i64,
    pub amount: Paise,
    pub kind: UncreditedKind,
    /// Our refund of a duplicate, once Razorpay accepted it.
    pub refund_id: Option<String>,
    pub refund_attempts: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str =
    "payment_id, topup_id, amount_paise, kind, refund_id, refund_attempts, created_at";

impl UncreditedPayment {
    fn from_row(row: &QueryResult) -> Result<UncreditedPayment, DbErr> {
        Ok(UncreditedPayment {
            payment_id: col(row, "payment_id")?,
            topup_id: col(row, "topup_id")?,
            amount: Paise(col(row, "amount_paise")?),
            kind: UncreditedKind::parse(&col::<String>(row, "kind")?)?,
            refund_id: col(row, "refund_id")?,
            refund_attempts: col(row, "refund_attempts")?,
            created_at: chrono::DateTime::from_timestamp_micros(col(row, "created_at")?)
                .unwrap_or_default(),
        })
    }
}

/// Records a payment that credits nothing, once; true when it was new.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    topup_id: i64,
    payment_id: &str,
    amount: Paise,
    kind: UncreditedKind,
) -> Result<bool, DbErr> {
    let now = now_micros();
    Ok(exec(
        conn,
        conn.get_database_backend(),
        "INSERT INTO web_payments (payment_id, topup_id, amount_paise, kind, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
        vec![
            payment_id.into(),
            topup_id.into(),
            amount.0.into(),
            kind.as_str().into(),
            now.into(),
            now.into(),
        ],
    )
    .await?
        == 1)
}

pub async fn find(db: &Db, payment_id: &str) -> Result<Option<UncreditedPayment>, DbErr> {
    db.one(
        &format!("SELECT {COLUMNS} FROM web_payments WHERE payment_id = ?"),
        vec![payment_id.into()],
    )
    .await?
    .as_ref()
    .map(UncreditedPayment::from_row)
    .transpose()
}

/// Razorpay accepted our refund of a duplicate.
pub async fn refunded(db: &Db, payment_id: &str, refund_id: &str) -> Result<(), DbErr> {
    db.exec(
        "UPDATE web_payments SET refund_id = ?, last_error = NULL, updated_at = ? WHERE payment_id = ?",
        vec![refund_id.into(), now_micros().into(), payment_id.into()],
    )
    .await?;
    Ok(())
}

/// Our refund of a duplicate did not go through this time; reconciliation tries again.
pub async fn refund_failed(db: &Db, payment_id: &str, error: &str) -> Result<(), DbErr> {
    db.exec(
        "UPDATE web_payments SET refund_attempts = refund_attempts + 1, last_error = ?, updated_at = ? \
         WHERE payment_id = ?",
        vec![error.into(), now_micros().into(), payment_id.into()],
    )
    .await?;
    Ok(())
}

/// Duplicates we have not refunded yet, oldest first.
pub async fn refunds_due(db: &Db, limit: i64) -> Result<Vec<UncreditedPayment>, DbErr> {
    let rows = db
        .all(
            &format!(
                "SELECT {COLUMNS} FROM web_payments WHERE kind = 'duplicate' AND refund_id IS NULL \
                 ORDER BY created_at LIMIT ?"
            ),
            vec![limit.into()],
        )
        .await?;
    rows.iter().map(UncreditedPayment::from_row).collect()
}

/// A customer's uncredited payments recorded in `[from, to)` (Unix microseconds), newest first.
pub async fn of_user_between(
    db: &Db,
    user_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<UncreditedPayment>, DbErr> {
    let rows = db
        .all(
            "SELECT p.payment_id, p.topup_id, p.amount_paise, p.kind, p.refund_id, p.refund_attempts, p.created_at \
             FROM web_payments p JOIN web_topups t ON t.id = p.topup_id \
             WHERE t.user_id = ? AND p.created_at >= ? AND p.created_at < ? ORDER BY p.created_at DESC",
            vec![user_id.into(), from.into(), to.into()],
        )
        .await?;
    rows.iter().map(UncreditedPayment::from_row).collect()
}

/// Every uncredited payment of a top-up.
pub async fn of_topup(db: &Db, topup_id: i64) -> Result<Vec<UncreditedPayment>, DbErr> {
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_payments WHERE topup_id = ? ORDER BY created_at"),
            vec![topup_id.into()],
        )
        .await?;
    rows.iter().map(UncreditedPayment::from_row).collect()
}
