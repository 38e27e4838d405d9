//! The web app's own tables, behind typed functions: one module per aggregate, with sea-orm
//! entities and the query builder. Nothing outside this module (and the ledger) writes SQL.
//!
//! - Writes take a [`Writer`]: the ledger's open transaction (`&Tx`, from
//!   [`ledger::Ledger::transact`]), so they commit or roll back with the ledger's own changes and
//!   are retried with them; or, for a write that is one statement, the ledger's autocommit writer
//!   ([`ledger::Ledger::autocommit`]: no `BEGIN`/`COMMIT` round trips while SQLite's single writer
//!   is held, and a second statement refused). Either way they reach the single writer only
//!   through the ledger (a second transaction in the same task is refused at once, never a
//!   deadlock). The few writes of more than one statement take `&Tx`.
//! - A lookup by a primary or unique key is [`FirstRow::first_row`], never `.one()`: `.one()`
//!   binds `LIMIT ?`, and SQLite re-prepares a statement whose LIMIT is a bound parameter every
//!   time it runs (seen with a uprobe on `sqlite3LockAndPrepare`: docs/benchmarks.md).
//! - Raw SQL only where the query builder has no words for it: the health check's `SELECT 1`,
//!   `webhook_events::claim_due`, `migrations::missing` and `backup`'s `VACUUM INTO`.
//! - One module has a database of its own: `durable_appends`, the benchmark's durable baseline.
//! - Reads take any connection: the ledger's read connections ([`ledger::Ledger::reads`]) or
//!   the open transaction (to read what it has written, or to lock a row).

pub mod alerts;
pub mod api_keys;
pub mod audit_runs;
pub mod auth_attempts;
pub mod backup;
pub mod charge_answers;
pub mod credit_refunds;
pub mod cursors;
pub mod durable_appends;
pub mod migrations;
pub mod operator_actions;
pub mod outbox;
pub mod password_resets;
pub mod payments;
pub mod refund_requests;
pub mod refunds;
pub mod reservations;
pub mod sessions;
pub mod topup_moves;
pub mod topups;
pub mod users;
pub mod vouchers;
pub mod webhook_events;

use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, QueryTrait, Select, SelectModel, SelectTwo,
    SelectTwoModel, SelectorTrait, TryInsertResult,
};

pub use ledger::{
    LedgerAutocommit as Autocommit, LedgerReads as Reads, LedgerTx as Tx, LedgerWrite as Writer,
};

/// A store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A transaction of store writes alone is retried like any other (see [`ledger::Retryable`]).
impl ledger::Retryable for StoreError {
    fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => ledger::is_transient_db_error(e),
            StoreError::Ledger(e) => e.is_transient(),
        }
    }
}

/// Now, in the microseconds every table keeps time in.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The database answers (the simplest query there is: no entity to read it through).
pub async fn ping(reads: &Reads) -> StoreResult<()> {
    reads
        .query_one_raw(sea_orm::Statement::from_string(
            reads.get_database_backend(),
            "SELECT 1",
        ))
        .await?;
    Ok(())
}

/// The row a lookup by key finds. It runs the query as built, without the `LIMIT ?` that `.one()`
/// binds (SQLite re-prepares such a statement on every run), and stops at the first row, where
/// `.all()` would step on to the end of the scan (docs/benchmarks.md).
pub(crate) trait FirstRow {
    type Row;
    async fn first_row<C: ConnectionTrait>(self, conn: &C) -> Result<Option<Self::Row>, DbErr>;
}

async fn first_as<S: SelectorTrait, C: ConnectionTrait>(
    conn: &C,
    query: &impl QueryTrait,
) -> Result<Option<S::Item>, DbErr> {
    let statement = query.build(conn.get_database_backend());
    conn.query_one_raw(statement)
        .await?
        .map(S::from_raw_query_result)
        .transpose()
}

impl<E: EntityTrait> FirstRow for Select<E> {
    type Row = E::Model;
    async fn first_row<C: ConnectionTrait>(self, conn: &C) -> Result<Option<E::Model>, DbErr> {
        first_as::<SelectModel<E::Model>, C>(conn, &self).await
    }
}

impl<E: EntityTrait, F: EntityTrait> FirstRow for SelectTwo<E, F> {
    type Row = (E::Model, Option<F::Model>);
    async fn first_row<C: ConnectionTrait>(self, conn: &C) -> Result<Option<Self::Row>, DbErr> {
        first_as::<SelectTwoModel<E::Model, F::Model>, C>(conn, &self).await
    }
}

/// Whether an `INSERT … ON CONFLICT DO NOTHING` inserted its row.
fn inserted(result: TryInsertResult<u64>) -> bool {
    matches!(result, TryInsertResult::Inserted(n) if n > 0)
}

/// For work that runs in a ledger transaction and answers in the ledger's terms (the charge
/// batcher): a store failure is a database failure, and keeps its transient kind.
impl From<StoreError> for ledger::LedgerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => ledger::LedgerError::from(e),
            StoreError::Ledger(e) => e,
        }
    }
}
