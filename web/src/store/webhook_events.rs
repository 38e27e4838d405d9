//! Razorpay's webhooks as received: stored once per event id, then claimed by a worker with a
//! lease, processed, and marked.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, PaginatorTrait, entity::prelude::*, sea_query::Expr};

use super::{FirstRow, StoreResult, Writer, inserted};

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
    writer: &impl Writer,
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
    .exec_without_returning(writer)
    .await?;
    Ok(inserted(done))
}

/// An event claimed for processing.
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub event_id: String,
    pub body: String,
}

/// Claims up to `limit` due events, oldest first, leasing them until `lease_until` and counting
/// the attempt: one statement, so two workers never claim the same event.
///
/// Raw SQL, measured: it runs for every webhook, and the query builder can only bind the LIMIT,
/// which makes SQLite re-prepare the statement on every run (see the module `store`).
pub async fn claim_due(
    writer: &impl Writer,
    now: i64,
    lease_until: i64,
    max_attempts: i64,
    limit: u64,
) -> StoreResult<Vec<ClaimedEvent>> {
    let sql = format!(
        "UPDATE web_webhook_events SET locked_until = ?, attempts = attempts + 1 \
         WHERE event_id IN (SELECT event_id FROM web_webhook_events WHERE processed_at IS NULL \
           AND attempts < ? AND (locked_until IS NULL OR locked_until < ?) \
           ORDER BY received_at LIMIT {limit}) \
         AND processed_at IS NULL AND (locked_until IS NULL OR locked_until < ?) \
         RETURNING event_id, body"
    );
    let rows = writer
        .query_all_raw(ledger::statement(
            writer.get_database_backend(),
            &sql,
            vec![
                lease_until.into(),
                max_attempts.into(),
                now.into(),
                now.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ClaimedEvent {
                event_id: row.try_get("", "event_id")?,
                body: row.try_get("", "body")?,
            })
        })
        .collect()
}

/// An attempt failed: the error is kept, and the event waits until `retry_at`.
pub async fn failed(
    writer: &impl Writer,
    event_id: &str,
    error: &str,
    retry_at: i64,
) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::LockedUntil, Expr::value(retry_at))
        .filter(Column::EventId.eq(event_id))
        .exec(writer)
        .await?;
    Ok(())
}

/// Marks events processed, in one statement.
pub async fn processed(writer: &impl Writer, event_ids: &[String], now: i64) -> StoreResult<()> {
    if event_ids.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::ProcessedAt, Expr::value(now))
        .col_expr(Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .filter(Column::EventId.is_in(event_ids.iter().cloned()))
        .exec(writer)
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

/// When the oldest event not processed yet was received (Unix microseconds).
pub async fn oldest_unprocessed<C: ConnectionTrait>(conn: &C) -> StoreResult<Option<i64>> {
    use sea_orm::QueryOrder;
    Ok(Entity::find()
        .filter(Column::ProcessedAt.is_null())
        .order_by_asc(Column::ReceivedAt)
        .first_row(conn)
        .await?
        .map(|m| m.received_at))
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
        .first_row(conn)
        .await?
        .map(StoredEvent::from))
}

/// Deletes up to `limit` events processed before `before`; returns how many. Events not yet
/// processed are never purged.
pub async fn purge_processed_before(
    writer: &impl Writer,
    before: i64,
    limit: u64,
) -> StoreResult<u64> {
    use sea_orm::{QuerySelect, QueryTrait};
    let due = Entity::find()
        .select_only()
        .column(Column::EventId)
        .filter(Column::ProcessedAt.lt(before))
        .limit(limit)
        .into_query();
    Ok(Entity::delete_many()
        .filter(Column::EventId.in_subquery(due))
        .exec(writer)
        .await?
        .rows_affected)
}
