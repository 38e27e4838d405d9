//! Refunds of unused paid credits, one per payment. Each is planned, with its credits taken
//! back, in one transaction before Razorpay is asked (so credits are never spent and refunded
//! both); then linked to Razorpay's refund (its answer, or a webhook carrying our key in the
//! refund's notes, whichever comes first); or, if Razorpay refuses it, its credits return.

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ConnectionTrait, QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait},
};

use super::{FirstRow, StoreError, StoreResult, Writer, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_credit_refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub refund_key: String,
        pub request_id: Option<i64>,
        pub user_id: i64,
        pub topup_id: i64,
        pub payment_id: String,
        pub credits: i64,
        pub amount_paise: i64,
        pub transfer_id: i64,
        pub refund_id: Option<String>,
        pub status: String,
        pub returned_transfer_id: Option<i64>,
        pub attempts: i64,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// The key Razorpay's refund carries in its notes, naming our plan.
pub const NOTE_KEY: &str = "kalp_refund_key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditRefundStatus {
    /// Credits taken back; Razorpay's refund not linked yet.
    Planned,
    /// Razorpay's refund is linked (its own status is in `web_refunds`).
    Sent,
    /// Razorpay refused it; the credits came back.
    Returned,
}

impl CreditRefundStatus {
    fn as_str(self) -> &'static str {
        match self {
            CreditRefundStatus::Planned => "planned",
            CreditRefundStatus::Sent => "sent",
            CreditRefundStatus::Returned => "returned",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "planned" => CreditRefundStatus::Planned,
            "sent" => CreditRefundStatus::Sent,
            "returned" => CreditRefundStatus::Returned,
            other => {
                return Err(StoreError::Db(DbErr::Custom(format!(
                    "a credit refund has the unknown status {other:?}"
                ))));
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct CreditRefund {
    pub key: String,
    pub request_id: Option<i64>,
    pub user_id: i64,
    pub topup_id: i64,
    pub payment_id: String,
    pub credits: i64,
    pub amount_paise: i64,
    pub transfer_id: i64,
    pub refund_id: Option<String>,
    pub status: CreditRefundStatus,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<entity::Model> for CreditRefund {
    type Error = StoreError;
    fn try_from(m: entity::Model) -> StoreResult<Self> {
        Ok(CreditRefund {
            status: CreditRefundStatus::parse(&m.status)?,
            key: m.refund_key,
            request_id: m.request_id,
            user_id: m.user_id,
            topup_id: m.topup_id,
            payment_id: m.payment_id,
            credits: m.credits,
            amount_paise: m.amount_paise,
            transfer_id: m.transfer_id,
            refund_id: m.refund_id,
            last_error: m.last_error,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        })
    }
}

fn all(rows: Vec<entity::Model>) -> StoreResult<Vec<CreditRefund>> {
    rows.into_iter().map(CreditRefund::try_from).collect()
}

/// A planned refund, inside the transaction that took its credits back.
pub struct NewCreditRefund<'a> {
    pub key: &'a str,
    pub request_id: Option<i64>,
    pub user_id: i64,
    pub topup_id: i64,
    pub payment_id: &'a str,
    pub credits: i64,
    pub amount_paise: i64,
    pub transfer_id: i64,
}

pub async fn plan(writer: &impl Writer, new: NewCreditRefund<'_>) -> StoreResult<()> {
    let now = now_micros();
    Entity::insert(ActiveModel {
        refund_key: Set(new.key.to_string()),
        request_id: Set(new.request_id),
        user_id: Set(new.user_id),
        topup_id: Set(new.topup_id),
        payment_id: Set(new.payment_id.to_string()),
        credits: Set(new.credits),
        amount_paise: Set(new.amount_paise),
        transfer_id: Set(new.transfer_id),
        refund_id: Set(None),
        status: Set(CreditRefundStatus::Planned.as_str().to_string()),
        returned_transfer_id: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(conn: &C, key: &str) -> StoreResult<Option<CreditRefund>> {
    Entity::find_by_id(key.to_string())
        .first_row(conn)
        .await?
        .map(CreditRefund::try_from)
        .transpose()
}

/// Planned refunds not yet linked to Razorpay's, oldest first.
pub async fn planned<C: ConnectionTrait>(conn: &C, limit: u64) -> StoreResult<Vec<CreditRefund>> {
    all(Entity::find()
        .filter(Column::Status.eq(CreditRefundStatus::Planned.as_str()))
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// An account's refunds of unused credits, newest first.
pub async fn of_user<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    limit: u64,
) -> StoreResult<Vec<CreditRefund>> {
    all(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::CreatedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Planned → sent, linked to Razorpay's refund; false when it was already linked or returned.
pub async fn sent(writer: &impl Writer, key: &str, refund_id: &str) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::RefundId, Expr::value(refund_id))
        .col_expr(
            Column::Status,
            Expr::value(CreditRefundStatus::Sent.as_str()),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::RefundKey.eq(key))
        .filter(Column::Status.eq(CreditRefundStatus::Planned.as_str()))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

/// Planned → returned: Razorpay refused the refund, the credits came back with this transfer.
pub async fn returned(writer: &impl Writer, key: &str, transfer_id: i64) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(
            Column::Status,
            Expr::value(CreditRefundStatus::Returned.as_str()),
        )
        .col_expr(Column::ReturnedTransferId, Expr::value(transfer_id))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::RefundKey.eq(key))
        .filter(Column::Status.eq(CreditRefundStatus::Planned.as_str()))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

/// A try to send it failed in a way that may pass later.
pub async fn attempt_failed(writer: &impl Writer, key: &str, error: &str) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::RefundKey.eq(key))
        .exec(writer)
        .await?;
    Ok(())
}

/// Credits taken back for planned refunds of this payment that Razorpay has not answered yet.
pub async fn in_flight_credits<C: ConnectionTrait>(conn: &C, payment_id: &str) -> StoreResult<i64> {
    Ok(Entity::find()
        .filter(Column::PaymentId.eq(payment_id))
        .filter(Column::Status.eq(CreditRefundStatus::Planned.as_str()))
        .all(conn)
        .await?
        .iter()
        .map(|m| m.credits)
        .sum())
}
