//! Top-ups as stored: one row per Add Credits, tied to one Razorpay order.

use razorpay::Paise;
use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use crate::db::{Db, col, now_micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded; the Razorpay order is being created.
    Creating,
    /// Waiting for the customer to pay, or for Razorpay to tell us.
    Pending,
    Paid,
    Failed,
    Cancelled,
    /// Never paid; given up by reconciliation.
    Expired,
    /// Razorpay reported something that does not match; an operator must look.
    Flagged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Pending => "pending",
            Status::Paid => "paid",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Flagged => "flagged",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "creating" => Status::Creating,
            "pending" => Status::Pending,
            "paid" => Status::Paid,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            "expired" => Status::Expired,
            _ => Status::Flagged,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Creating | Status::Pending => "Pending",
            Status::Paid => "Paid",
            Status::Failed => "Failed",
            Status::Cancelled => "Cancelled",
            Status::Expired => "Expired",
            Status::Flagged => "Under review",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topup {
    pub id: i64,
    pub user_id: i64,
    pub amount: Paise,
    pub credits: i64,
    pub status: Status,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub method: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "id, user_id, amount_paise, credits, status, razorpay_order_id, \
    razorpay_payment_id, method, failure_reason, created_at";

impl Topup {
    /// Paid with this very payment, and so credited: the credit and `paid` commit together.
    pub fn credited_by(&self, payment_id: &str) -> bool {
        self.status == Status::Paid && self.payment_id.as_deref() == Some(payment_id)
    }

    fn from_row(row: &QueryResult) -> Result<Topup, DbErr> {
        Ok(Topup {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            amount: Paise(col(row, "amount_paise")?),
            credits: col(row, "credits")?,
            status: Status::parse(&col::<String>(row, "status")?),
            order_id: col(row, "razorpay_order_id")?,
            payment_id: col(row, "razorpay_payment_id")?,
            method: col(row, "method")?,
            failure_reason: col(row, "failure_reason")?,
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

pub async fn create(db: &Db, user_id: i64, amount: Paise, credits: i64) -> Result<i64, DbErr> {
    let now = now_micros();
    let row = db
        .write
        .query_one_raw(ledger::statement(
            db.backend,
            "INSERT INTO web_topups (user_id, amount_paise, credits, status, created_at, updated_at) \
             VALUES (?, ?, ?, 'creating', ?, ?) RETURNING id",
            vec![user_id.into(), amount.0.into(), credits.into(), now.into(), now.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("insert returned nothing".into()))?;
    col(&row, "id")
}

pub async fn attach_order(db: &Db, id: i64, order_id: &str) -> Result<(), DbErr> {
    db.exec(
        "UPDATE web_topups SET razorpay_order_id = ?, status = 'pending', updated_at = ? \
         WHERE id = ? AND status = 'creating'",
        vec![order_id.into(), now_micros().into(), id.into()],
    )
    .await?;
    Ok(())
}

/// Records a failure, unless the top-up was already paid (a top-up never moves backwards).
pub async fn mark_failed(
    db: &Db,
    id: i64,
    reason: &str,
    method: Option<&str>,
) -> Result<(), DbErr> {
    db.exec(
        "UPDATE web_topups SET status = 'failed', failure_reason = ?, method = COALESCE(?, method), \
         updated_at = ? WHERE id = ? AND status IN ('creating', 'pending', 'failed', 'cancelled')",
        vec![reason.into(), method.map(str::to_string).into(), now_micros().into(), id.into()],
    )
    .await?;
    Ok(())
}

pub async fn mark_cancelled(db: &Db, id: i64) -> Result<(), DbErr> {
    db.exec(
        "UPDATE web_topups SET status = 'cancelled', updated_at = ? WHERE id = ? AND status = 'pending'",
        vec![now_micros().into(), id.into()],
    )
    .await?;
    Ok(())
}

pub async fn flag(db: &Db, id: i64, reason: &str) -> Result<(), DbErr> {
    tracing::warn!(topup = id, reason, "top-up flagged for an operator");
    db.exec(
        "UPDATE web_topups SET status = 'flagged', flag_reason = ?, updated_at = ? \
         WHERE id = ? AND status <> 'paid'",
        vec![reason.into(), now_micros().into(), id.into()],
    )
    .await?;
    Ok(())
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

pub async fn recent(db: &Db, user_id: i64, limit: i64) -> Result<Vec<Topup>, DbErr> {
    let rows = db
        .all(
            &format!("SELECT {COLUMNS} FROM web_topups WHERE user_id = ? AND status <> 'creating' ORDER BY id DESC LIMIT ?"),
            vec![user_id.into(), limit.into()],
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
