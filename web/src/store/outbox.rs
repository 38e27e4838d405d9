//! Emails to send, written in the transaction that causes them (so an email goes out if and
//! only if what it tells of happened), and the state of sending each one: attempts, the next
//! try, a lease held by the sender working on it, and parking after repeated failure. The
//! sender is `emails::outbox_sender`.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{QueryOrder, QuerySelect};

use super::{FirstRow, StoreResult, Writer, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub recipient: String,
        pub subject: String,
        /// The text part.
        pub body: String,
        pub html_body: String,
        pub voucher_id: Option<i64>,
        pub once_key: Option<String>,
        pub attempts: i64,
        pub next_attempt_at: i64,
        pub claimed_until: Option<i64>,
        pub last_error: Option<String>,
        pub parked_at: Option<i64>,
        pub created_at: i64,
        pub sent_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// An email to write to the outbox.
pub struct NewEmail<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// A voucher to attach as PDF.
    pub voucher_id: Option<i64>,
    /// An email with a key is written once, however often it is asked for.
    pub once_key: Option<String>,
}

/// Writes an email to the outbox; with a `once_key` already written, writes nothing.
pub async fn enqueue(writer: &impl Writer, email: NewEmail<'_>) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        kind: Set(email.kind.to_string()),
        recipient: Set(email.recipient.to_string()),
        subject: Set(email.subject.to_string()),
        body: Set(email.text.to_string()),
        html_body: Set(email.html.to_string()),
        voucher_id: Set(email.voucher_id),
        once_key: Set(email.once_key),
        attempts: Set(0),
        next_attempt_at: Set(0),
        created_at: Set(now_micros()),
        ..Default::default()
    })
    .on_conflict(OnConflict::column(Column::OnceKey).do_nothing().to_owned())
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// An email in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub voucher_id: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub parked_at: Option<i64>,
}

impl From<entity::Model> for QueuedEmail {
    fn from(m: entity::Model) -> QueuedEmail {
        QueuedEmail {
            id: m.id,
            kind: m.kind,
            recipient: m.recipient,
            subject: m.subject,
            text: m.body,
            html: m.html_body,
            voucher_id: m.voucher_id,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: m.created_at,
            sent_at: m.sent_at,
            parked_at: m.parked_at,
        }
    }
}

/// Claims up to `limit` emails due at `now`, oldest first, leasing them until `lease_until` and
/// counting the attempt. One statement; on PostgreSQL rows another sender has locked are
/// skipped rather than waited for (`FOR UPDATE SKIP LOCKED`), and the outer conditions are
/// checked again, so two instances never claim the same row. SQLite has one writer.
pub async fn claim_due(
    writer: &impl Writer,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> StoreResult<Vec<QueuedEmail>> {
    let skip_locked = match writer.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let sql = format!(
        "UPDATE web_outbox SET claimed_until = ?, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM web_outbox WHERE sent_at IS NULL AND parked_at IS NULL \
           AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) \
           ORDER BY next_attempt_at, id LIMIT {limit}{skip_locked}) \
         AND sent_at IS NULL AND parked_at IS NULL \
         AND (claimed_until IS NULL OR claimed_until < ?) \
         RETURNING *"
    );
    let statement = ledger::statement(
        writer.get_database_backend(),
        &sql,
        vec![lease_until.into(), now.into(), now.into(), now.into()],
    );
    let mut claimed: Vec<QueuedEmail> = Entity::find()
        .from_raw_sql(statement)
        .all(writer)
        .await?
        .into_iter()
        .map(QueuedEmail::from)
        .collect();
    claimed.sort_by_key(|e| e.id);
    Ok(claimed)
}

/// Sent: never tried again.
pub async fn sent(writer: &impl Writer, id: i64, now: i64) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::SentAt, Expr::value(now))
        .col_expr(Column::ClaimedUntil, Expr::value(Option::<i64>::None))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .filter(Column::Id.eq(id))
        .exec(writer)
        .await?;
    Ok(())
}

/// An attempt failed: tried again at `retry_at`, or parked (`park`) for an operator.
pub async fn failed(
    writer: &impl Writer,
    id: i64,
    error: &str,
    retry_at: i64,
    park: bool,
    now: i64,
) -> StoreResult<()> {
    let error: String = error.chars().take(500).collect();
    Entity::update_many()
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::NextAttemptAt, Expr::value(retry_at))
        .col_expr(Column::ClaimedUntil, Expr::value(Option::<i64>::None))
        .col_expr(
            Column::ParkedAt,
            Expr::value(if park { Some(now) } else { None }),
        )
        .filter(Column::Id.eq(id))
        .exec(writer)
        .await?;
    Ok(())
}

/// An operator sends a parked email again: due now, with a fresh count of attempts. Returns
/// whether it was parked.
pub async fn unpark(writer: &impl Writer, id: i64) -> StoreResult<bool> {
    let result = Entity::update_many()
        .col_expr(Column::ParkedAt, Expr::value(Option::<i64>::None))
        .col_expr(Column::Attempts, Expr::value(0i64))
        .col_expr(Column::NextAttemptAt, Expr::value(0i64))
        .filter(Column::Id.eq(id))
        .filter(Column::ParkedAt.is_not_null())
        .filter(Column::SentAt.is_null())
        .exec(writer)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The emails a query selects, at most `limit`.
async fn listed<C: ConnectionTrait>(
    conn: &C,
    query: sea_orm::Select<Entity>,
    limit: u64,
) -> StoreResult<Vec<QueuedEmail>> {
    Ok(query
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(QueuedEmail::from)
        .collect())
}

/// One email by its outbox id.
pub async fn find<C: ConnectionTrait>(conn: &C, id: i64) -> StoreResult<Option<QueuedEmail>> {
    Ok(Entity::find_by_id(id)
        .first_row(conn)
        .await?
        .map(QueuedEmail::from))
}

/// Parked emails, newest first.
pub async fn parked<C: ConnectionTrait>(conn: &C, limit: u64) -> StoreResult<Vec<QueuedEmail>> {
    let query = Entity::find()
        .filter(Column::ParkedAt.is_not_null())
        .filter(Column::SentAt.is_null())
        .order_by_desc(Column::Id);
    listed(conn, query, limit).await
}

/// Every email to `recipient`, newest first (what a customer was sent).
pub async fn to_recipient<C: ConnectionTrait>(
    conn: &C,
    recipient: &str,
    limit: u64,
) -> StoreResult<Vec<QueuedEmail>> {
    let query = Entity::find()
        .filter(Column::Recipient.eq(recipient))
        .order_by_desc(Column::Id);
    listed(conn, query, limit).await
}

/// Emails not sent yet (parked ones too), oldest first.
pub async fn unsent<C: ConnectionTrait>(conn: &C, limit: u64) -> StoreResult<Vec<QueuedEmail>> {
    let query = Entity::find()
        .filter(Column::SentAt.is_null())
        .order_by_asc(Column::Id);
    listed(conn, query, limit).await
}

/// Emails waiting to be sent (not parked), and when the oldest was written (Unix microseconds).
pub async fn backlog<C: ConnectionTrait>(conn: &C) -> StoreResult<(u64, Option<i64>)> {
    use sea_orm::PaginatorTrait;
    let waiting = Entity::find()
        .filter(Column::SentAt.is_null())
        .filter(Column::ParkedAt.is_null())
        .count(conn)
        .await?;
    let oldest = Entity::find()
        .filter(Column::SentAt.is_null())
        .filter(Column::ParkedAt.is_null())
        .order_by_asc(Column::Id)
        .first_row(conn)
        .await?
        .map(|m| m.created_at);
    Ok((waiting, oldest))
}

/// How many emails are parked.
pub async fn parked_count<C: ConnectionTrait>(conn: &C) -> StoreResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(Entity::find()
        .filter(Column::ParkedAt.is_not_null())
        .filter(Column::SentAt.is_null())
        .count(conn)
        .await?)
}
