//! Refunds of payments on our orders, as recorded: each refund id once, with its status and the
//! credits it took back or returned.

use razorpay::wire::RefundState;
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, entity::prelude::*, sea_query::Expr};

use super::{FirstRow, StoreError, StoreResult, Writer, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub refund_id: String,
        pub topup_id: i64,
        pub payment_id: String,
        pub amount_paise: i64,
        pub credits: i64,
        pub taken: i64,
        pub shortfall: i64,
        pub transfer_id: Option<i64>,
        pub created_at: i64,
        pub status: String,
        pub returned: i64,
        pub returned_transfer_id: Option<i64>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

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

fn state_of(s: &str) -> Result<RefundState, StoreError> {
    match s {
        "pending" => Ok(RefundState::Pending),
        "processed" => Ok(RefundState::Processed),
        "failed" => Ok(RefundState::Failed),
        other => Err(StoreError::Db(DbErr::Custom(format!(
            "a refund has the unknown status {other:?}"
        )))),
    }
}

fn state_str(s: RefundState) -> &'static str {
    match s {
        RefundState::Pending => "pending",
        RefundState::Processed => "processed",
        RefundState::Failed => "failed",
    }
}

impl TryFrom<entity::Model> for RefundRecord {
    type Error = StoreError;

    fn try_from(m: entity::Model) -> Result<Self, StoreError> {
        Ok(RefundRecord {
            status: state_of(&m.status)?,
            refund_id: m.refund_id,
            topup_id: m.topup_id,
            payment_id: m.payment_id,
            amount_paise: m.amount_paise,
            credits: m.credits,
            taken: m.taken,
            shortfall: m.shortfall,
            returned: m.returned,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        })
    }
}

impl RefundRecord {
    pub fn status_label(&self) -> &'static str {
        match self.status {
            RefundState::Pending => "Pending",
            RefundState::Processed => "Processed",
            RefundState::Failed => "Failed",
        }
    }
}

fn all(rows: Vec<entity::Model>) -> StoreResult<Vec<RefundRecord>> {
    rows.into_iter().map(RefundRecord::try_from).collect()
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    refund_id: &str,
) -> StoreResult<Option<RefundRecord>> {
    Entity::find_by_id(refund_id.to_string())
        .first_row(conn)
        .await?
        .map(RefundRecord::try_from)
        .transpose()
}

/// Every refund recorded for a top-up, oldest first.
pub async fn of_topup<C: ConnectionTrait>(
    conn: &C,
    topup_id: i64,
) -> StoreResult<Vec<RefundRecord>> {
    all(Entity::find()
        .filter(Column::TopupId.eq(topup_id))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await?)
}

/// Refunds still pending that have not changed since `unchanged_since` (microseconds).
pub async fn pending<C: ConnectionTrait>(
    conn: &C,
    unchanged_since: i64,
    limit: u64,
) -> StoreResult<Vec<RefundRecord>> {
    all(Entity::find()
        .filter(Column::Status.eq("pending"))
        .filter(Column::UpdatedAt.lt(unchanged_since))
        .order_by_asc(Column::UpdatedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Refunds (not failed) that could not take back every credit they owed.
pub async fn with_shortfall<C: ConnectionTrait>(conn: &C) -> StoreResult<Vec<RefundRecord>> {
    all(Entity::find()
        .filter(Column::Shortfall.gt(0))
        .filter(Column::Status.ne("failed"))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await?)
}

/// A refund to record: what it owed back and what it took.
pub struct NewRefund<'a> {
    pub refund_id: &'a str,
    pub topup_id: i64,
    pub payment_id: &'a str,
    pub amount_paise: i64,
    pub status: RefundState,
    pub credits: i64,
    pub taken: i64,
    pub transfer_id: Option<i64>,
}

pub async fn record(writer: &impl Writer, refund: NewRefund<'_>) -> StoreResult<()> {
    let now = now_micros();
    Entity::insert(ActiveModel {
        refund_id: Set(refund.refund_id.to_string()),
        topup_id: Set(refund.topup_id),
        payment_id: Set(refund.payment_id.to_string()),
        amount_paise: Set(refund.amount_paise),
        credits: Set(refund.credits),
        taken: Set(refund.taken),
        shortfall: Set(refund.credits - refund.taken),
        transfer_id: Set(refund.transfer_id),
        created_at: Set(now),
        status: Set(state_str(refund.status).to_string()),
        returned: Set(0),
        returned_transfer_id: Set(None),
        updated_at: Set(now),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

pub async fn set_status(
    writer: &impl Writer,
    refund_id: &str,
    status: RefundState,
) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(state_str(status)))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::RefundId.eq(refund_id))
        .exec(writer)
        .await?;
    Ok(())
}

/// The credits given back when the refund failed, and the transfer that gave them.
pub async fn returned(
    writer: &impl Writer,
    refund_id: &str,
    credits: i64,
    transfer_id: Option<i64>,
) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::Returned, Expr::value(credits))
        .col_expr(Column::ReturnedTransferId, Expr::value(transfer_id))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::RefundId.eq(refund_id))
        .exec(writer)
        .await?;
    Ok(())
}
