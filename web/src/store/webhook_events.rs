//! Razorpay's webhooks as received: stored once per event id, then claimed by a worker with a
//! lease, processed, and marked.

use sea_orm::{ActiveValue::Set, sea_query::ExprTrait};
use sea_orm::{
    ConnectionTrait, PaginatorTrait,
    entity::prelude::*,
    sea_query::{Expr, Query},
};

use super::{StoreResult, Tx, inserted};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_webhook_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub event: String,
        pub body: String,
        pub received_at: i64,
        pub processed_at: Option<i64>,
        pub attempts: i64,
        pub locked_until: Option<i64>,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// Stores an event unless its id is known; true when it was new. `handled` stores it as
/// processed already (nothing left to do for it).
pub async fn record(
    tx: &Tx<'_>,
    event_id: &str,
    event: &str,
    body: &str,
    now: i64,
    handled: bool,
) -> StoreResult<bool> {
    let done = Entity::insert(ActiveModel {
        event_id: Set(event_id.to_string()),
        event: Set(event.to_string()),
        body: Set(body.to_string()),
        received_at: Set(now),
        processed_at: Set(handled.then_some(now)),
        attempts: Set(0),
        locked_until: Set(None),
        last_error: Set(None),
    })
    .on_conflict_do_nothing_on([Column::EventId])
    .exec_without_returning(tx)
    .await?;
    Ok(inserted(done))
}

/// An event claimed for processing.
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub event_id: String,
    pub body: String,
}

fn unleased(now: i64) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(Column::LockedUntil.is_null())
        .add(Column::LockedUntil.lt(now))
}

/// Claims up to `limit` due events, oldest first, leasing them until `lease_until` and counting
/// the attempt: one statement, so two workers never claim the same event.
pub async fn claim_due(
    tx: &Tx<'_>,
    now: i64,
    lease_until: i64,
    max_attempts: i64,
    limit: u64,
) -> StoreResult<Vec<ClaimedEvent>> {
    let due = Query::select()
        .column(Column::EventId)
        .from(Entity)
        .and_where(Column::ProcessedAt.is_null())
        .and_where(Column::Attempts.lt(max_attempts))
        .cond_where(unleased(now))
        .order_by(Column::ReceivedAt, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    Ok(Entity::update_many()
        .col_expr(Column::LockedUntil, Expr::value(lease_until))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::EventId.in_subquery(due))
        .filter(Column::ProcessedAt.is_null())
        .filter(unleased(now))
        .exec_with_returning(tx)
        .await?
        .into_iter()
        .map(|e| ClaimedEvent {
            event_id: e.event_id,
            body: e.body,
        })
        .collect())
}

/// An attempt failed: the error is kept, and the event waits until `retry_at`.
pub async fn failed(tx: &Tx<'_>, event_id: &str, error: &str, retry_at: i64) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::LockedUntil, Expr::value(retry_at))
        .filter(Column::EventId.eq(event_id))
        .exec(tx)
        .await?;
    Ok(())
}

/// Marks events processed, in one statement.
pub async fn processed(tx: &Tx<'_>, event_ids: &[String], now: i64) -> StoreResult<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::ProcessedAt, Expr::value(now))
        .col_expr(Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .filter(Column::EventId.is_in(event_ids.iter().cloned()))
        .exec(tx)
        .await?;
    Ok(())
}

/// Events stored and not processed yet.
pub async fn unprocessed<C: ConnectionTrait>(conn: &C) -> StoreResult<u64> {
    Ok(Entity::find()
        .filter(Column::ProcessedAt.is_null())
        .count(conn)
        .await?)
}

/// Events stored in all (processed or not).
pub async fn stored<C: ConnectionTrait>(conn: &C) -> StoreResult<u64> {
    Ok(Entity::find().count(conn).await?)
}

/// An event as stored, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub event_id: String,
    pub event: String,
    pub received_at: i64,
    pub processed_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl From<entity::Model> for StoredEvent {
    fn from(m: entity::Model) -> StoredEvent {
        StoredEvent {
            event_id: m.event_id,
            event: m.event,
            received_at: m.received_at,
            processed_at: m.processed_at,
            attempts: m.attempts,
            last_error: m.last_error,
        }
    }
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    event_id: &str,
) -> StoreResult<Option<StoredEvent>> {
    Ok(Entity::find_by_id(event_id.to_string())
        .one(conn)
        .await?
        .map(StoredEvent::from))
}
