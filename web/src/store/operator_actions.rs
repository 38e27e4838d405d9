//! The log of operator actions: who, when, what, why, and the ledger transfer or Razorpay refund
//! it caused. An action's key is unique, so an action recorded in the transaction that does it
//! happens once, however often it is posted.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, entity::prelude::*, sea_query::Expr};

use super::{FirstRow, StoreResult, Tx, Writer, inserted, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_operator_actions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub action_key: String,
        pub operator_id: i64,
        pub customer_id: Option<i64>,
        pub action: String,
        pub detail: String,
        pub reason: String,
        pub transfer_id: Option<i64>,
        pub razorpay_refund_id: Option<String>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// One recorded operator action.
#[derive(Debug, Clone)]
pub struct OperatorAction {
    pub id: i64,
    pub operator_id: i64,
    pub customer_id: Option<i64>,
    pub action: String,
    pub detail: String,
    pub reason: String,
    pub transfer_id: Option<i64>,
    pub razorpay_refund_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<entity::Model> for OperatorAction {
    fn from(m: entity::Model) -> Self {
        OperatorAction {
            id: m.id,
            operator_id: m.operator_id,
            customer_id: m.customer_id,
            action: m.action,
            detail: m.detail,
            reason: m.reason,
            transfer_id: m.transfer_id,
            razorpay_refund_id: m.razorpay_refund_id,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        }
    }
}

/// An action to record.
pub struct NewOperatorAction<'a> {
    pub key: &'a str,
    pub operator_id: i64,
    pub customer_id: Option<i64>,
    pub action: &'a str,
    pub detail: &'a str,
    pub reason: &'a str,
}

/// Records an action; `None` when an action with this key was already recorded (it is done).
pub async fn record(tx: &Tx<'_>, new: NewOperatorAction<'_>) -> StoreResult<Option<i64>> {
    let done = Entity::insert(ActiveModel {
        action_key: Set(new.key.to_string()),
        operator_id: Set(new.operator_id),
        customer_id: Set(new.customer_id),
        action: Set(new.action.to_string()),
        detail: Set(new.detail.to_string()),
        reason: Set(new.reason.to_string()),
        transfer_id: Set(None),
        razorpay_refund_id: Set(None),
        created_at: Set(now_micros()),
        ..Default::default()
    })
    .on_conflict_do_nothing_on([Column::ActionKey])
    .exec_without_returning(tx)
    .await?;
    if !inserted(done) {
        return Ok(None);
    }
    Ok(Entity::find()
        .filter(Column::ActionKey.eq(new.key))
        .first_row(tx)
        .await?
        .map(|m| m.id))
}

/// Whether an action with this key was recorded.
pub async fn exists<C: ConnectionTrait>(conn: &C, key: &str) -> StoreResult<bool> {
    Ok(Entity::find()
        .filter(Column::ActionKey.eq(key))
        .first_row(conn)
        .await?
        .is_some())
}

/// What an action caused: the ledger transfer, or Razorpay's refund.
pub async fn caused(
    writer: &impl Writer,
    id: i64,
    transfer_id: Option<i64>,
    razorpay_refund_id: Option<&str>,
) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::TransferId, Expr::value(transfer_id))
        .col_expr(Column::RazorpayRefundId, Expr::value(razorpay_refund_id))
        .filter(Column::Id.eq(id))
        .exec(writer)
        .await?;
    Ok(())
}

/// The newest actions, of one customer or of all.
pub async fn newest<C: ConnectionTrait>(
    conn: &C,
    customer_id: Option<i64>,
    limit: u64,
) -> StoreResult<Vec<OperatorAction>> {
    let mut query = Entity::find().order_by_desc(Column::Id).limit(limit);
    if let Some(customer) = customer_id {
        query = query.filter(Column::CustomerId.eq(customer));
    }
    Ok(query
        .all(conn)
        .await?
        .into_iter()
        .map(OperatorAction::from)
        .collect())
}

/// Counts of actions by kind (for the audit's summary).
pub async fn count_by_action<C: ConnectionTrait>(conn: &C) -> StoreResult<Vec<(String, i64)>> {
    Ok(Entity::find()
        .select_only()
        .column(Column::Action)
        .column_as(Column::Id.count(), "n")
        .group_by(Column::Action)
        .order_by_asc(Column::Action)
        .into_tuple::<(String, i64)>()
        .all(conn)
        .await?)
}
