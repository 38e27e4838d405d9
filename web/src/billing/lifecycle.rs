//! The top-up state machine: every status a top-up can have and every move between them, each a
//! typed function with one guarded `UPDATE`. No other code writes a top-up's status.
//!
//! ```text
//!  (Add Credits) ──► creating ──order created──► pending ──cancel_url──► cancelled
//!                       │                          │                        │
//!                       │ order refused            │ payment failed         │
//!                       ▼                          ▼                        ▼
//!                     failed ◄──────────────── failed ◄───────────────── (any of these)
//!
//!  creating, pending, cancelled ──never paid, too old──► expired
//!  any status but paid ──a payment credited it──► paid     (late authorisation included)
//!  any status but paid ──Razorpay reported something that does not fit──► flagged
//! ```
//!
//! `paid` is final: the one payment that credited the top-up is on it. Every move is guarded by
//! the statuses it may leave, so a report that comes late, twice or out of order moves nothing.

use sea_orm::{ConnectionTrait, DbErr};

use crate::db::{col, exec, now_micros};

/// Where a top-up is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopupStatus {
    /// Recorded; the Razorpay order is being created.
    Creating,
    /// Waiting for the customer to pay, or for Razorpay to tell us.
    Pending,
    /// Credited, by exactly one payment.
    Paid,
    Failed,
    Cancelled,
    /// Never paid; given up by reconciliation.
    Expired,
    /// Razorpay reported something that does not fit; an operator must look.
    Flagged,
}

impl TopupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TopupStatus::Creating => "creating",
            TopupStatus::Pending => "pending",
            TopupStatus::Paid => "paid",
            TopupStatus::Failed => "failed",
            TopupStatus::Cancelled => "cancelled",
            TopupStatus::Expired => "expired",
            TopupStatus::Flagged => "flagged",
        }
    }

    /// A status read from the database; anything else is an error, never a guess.
    pub fn parse(s: &str) -> Result<TopupStatus, DbErr> {
        Ok(match s {
            "creating" => TopupStatus::Creating,
            "pending" => TopupStatus::Pending,
            "paid" => TopupStatus::Paid,
            "failed" => TopupStatus::Failed,
            "cancelled" => TopupStatus::Cancelled,
            "expired" => TopupStatus::Expired,
            "flagged" => TopupStatus::Flagged,
            other => {
                return Err(DbErr::Custom(format!(
                    "a top-up has the unknown status {other:?}"
                )));
            }
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            TopupStatus::Creating | TopupStatus::Pending => "Pending",
            TopupStatus::Paid => "Paid",
            TopupStatus::Failed => "Failed",
            TopupStatus::Cancelled => "Cancelled",
            TopupStatus::Expired => "Expired",
            TopupStatus::Flagged => "Under review",
        }
    }

    /// Still waiting for a payment: reconciliation and the status page look these up.
    pub fn is_open(self) -> bool {
        matches!(self, TopupStatus::Creating | TopupStatus::Pending)
    }
}

/// The statuses a move may leave, as SQL.
const NOT_PAID: &str = "status <> 'paid'";

/// Records a new top-up, `creating`, at the rate it was shown at. Returns its id.
pub async fn create<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    amount_paise: i64,
    credits: i64,
    paise_per_credit: i64,
) -> Result<i64, DbErr> {
    let now = now_micros();
    let row = conn
        .query_one_raw(ledger::statement(
            conn.get_database_backend(),
            "INSERT INTO web_topups (user_id, amount_paise, credits, paise_per_credit, status, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 'creating', ?, ?) RETURNING id",
            vec![
                user_id.into(),
                amount_paise.into(),
                credits.into(),
                paise_per_credit.into(),
                now.into(),
                now.into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("insert returned nothing".into()))?;
    col(&row, "id")
}

/// creating → pending: Razorpay created the order.
pub async fn order_created<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    order_id: &str,
) -> Result<bool, DbErr> {
    moved(
        conn,
        "UPDATE web_topups SET razorpay_order_id = ?, status = 'pending', updated_at = ? \
         WHERE id = ? AND status = 'creating'",
        vec![order_id.into(), now_micros().into(), id.into()],
    )
    .await
}

/// creating, pending, cancelled, failed → failed, with Razorpay's reason code (or ours, such as
/// `order_refused`). Never from paid.
pub async fn failed<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    code: &str,
    method: Option<&str>,
) -> Result<bool, DbErr> {
    moved(
        conn,
        "UPDATE web_topups SET status = 'failed', failure_code = ?, method = COALESCE(?, method), \
         bank_pending_at = NULL, updated_at = ? \
         WHERE id = ? AND status IN ('creating', 'pending', 'failed', 'cancelled')",
        vec![
            code.into(),
            method.map(str::to_string).into(),
            now_micros().into(),
            id.into(),
        ],
    )
    .await
}

/// pending → cancelled: the customer left the checkout (Razorpay's `cancel_url`).
pub async fn cancelled<C: ConnectionTrait>(conn: &C, id: i64) -> Result<bool, DbErr> {
    moved(
        conn,
        "UPDATE web_topups SET status = 'cancelled', updated_at = ? WHERE id = ? AND status = 'pending'",
        vec![now_micros().into(), id.into()],
    )
    .await
}

/// creating, pending, cancelled → expired: nobody paid it, and it is too old to be paid now.
pub async fn expired<C: ConnectionTrait>(conn: &C, id: i64) -> Result<bool, DbErr> {
    moved(
        conn,
        "UPDATE web_topups SET status = 'expired', updated_at = ? \
         WHERE id = ? AND status IN ('creating', 'pending', 'cancelled')",
        vec![now_micros().into(), id.into()],
    )
    .await
}

/// Any status but paid → flagged, with the reason for the operator.
pub async fn flagged<C: ConnectionTrait>(conn: &C, id: i64, reason: &str) -> Result<bool, DbErr> {
    tracing::warn!(topup = id, reason, "top-up flagged for an operator");
    moved(
        conn,
        &format!(
            "UPDATE web_topups SET status = 'flagged', flag_reason = ?, updated_at = ? WHERE id = ? AND {NOT_PAID}"
        ),
        vec![reason.into(), now_micros().into(), id.into()],
    )
    .await
}

/// Any status but paid → paid, by this payment and this ledger credit. Only inside the
/// transaction that credits (see `billing::settle`).
pub async fn paid<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    payment_id: &str,
    method: &str,
    transfer_id: i64,
) -> Result<bool, DbErr> {
    moved(
        conn,
        &format!(
            "UPDATE web_topups SET status = 'paid', razorpay_payment_id = ?, method = ?, \
             credited_transfer_id = ?, failure_code = NULL, bank_pending_at = NULL, updated_at = ? \
             WHERE id = ? AND {NOT_PAID}"
        ),
        vec![
            payment_id.into(),
            method.into(),
            transfer_id.into(),
            now_micros().into(),
            id.into(),
        ],
    )
    .await
}

/// Not a move: a check found the payment still `created` (the bank has not answered), which
/// the top-up's page says.
pub async fn bank_pending<C: ConnectionTrait>(conn: &C, id: i64) -> Result<bool, DbErr> {
    moved(
        conn,
        "UPDATE web_topups SET bank_pending_at = COALESCE(bank_pending_at, ?), updated_at = ? \
         WHERE id = ? AND status IN ('creating', 'pending', 'cancelled')",
        vec![now_micros().into(), now_micros().into(), id.into()],
    )
    .await
}

async fn moved<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<bool, DbErr> {
    Ok(exec(conn, conn.get_database_backend(), sql, values).await? == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_and_an_unknown_one_is_an_error() {
        for status in [
            TopupStatus::Creating,
            TopupStatus::Pending,
            TopupStatus::Paid,
            TopupStatus::Failed,
            TopupStatus::Cancelled,
            TopupStatus::Expired,
            TopupStatus::Flagged,
        ] {
            assert_eq!(TopupStatus::parse(status.as_str()).ok(), Some(status));
        }
        assert!(
            TopupStatus::parse("refunded").is_err(),
            "never guessed as flagged"
        );
    }
}
