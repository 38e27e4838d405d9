//! Connections and the few helpers every ledger statement goes through.
//!
//! The ledger writes hand-written, dialect-neutral SQL through sea-orm's connection: one code path
//! for SQLite and PostgreSQL, with every statement visible (round trips decide throughput).

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, QueryResult, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
    Value,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::error::{LedgerError, LedgerResult};

/// How to open the ledger's database.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// `sqlite://path/to/file.db?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    /// Connections for reads (and, on PostgreSQL, writes).
    pub pool_size: u32,
    /// Postgres only: the schema to use (created if missing). Tests give each run its own.
    pub pg_schema: Option<String>,
    /// How long SQLite waits for the write lock before failing with BUSY.
    pub busy_timeout: Duration,
}

impl ConnectConfig {
    pub fn new(url: impl Into<String>) -> Self {
        ConnectConfig {
            url: url.into(),
            pool_size: 8,
            pg_schema: None,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The ledger's connections. SQLite allows one writer at a time, so all writes go through a pool
/// of exactly one connection (no SQLITE_BUSY between our own writers) and reads use a separate
/// pool that WAL lets run beside the writer. PostgreSQL uses one pool for both.
#[derive(Clone)]
pub(crate) struct Pools {
    pub write: DatabaseConnection,
    pub read: DatabaseConnection,
    pub backend: DbBackend,
    /// SQLite: the checkpointer runs while any clone of this lives.
    _checkpointer: Option<std::sync::Arc<()>>,
}

/// How much of one connection pool is in use (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// `write` or `read`.
    pub pool: &'static str,
    /// Connections open.
    pub open: u32,
    /// Open and not in use.
    pub idle: u32,
    pub max: u32,
}

impl Pools {
    pub(crate) fn usage(&self) -> Vec<PoolUse> {
        [("write", &self.write), ("read", &self.read)]
            .into_iter()
            .map(|(pool, connection)| {
                // The pool getters panic on the other backend: ask only for the one we run.
                let (open, idle, max) = match connection.get_database_backend() {
                    DbBackend::Sqlite => {
                        let p = connection.get_sqlite_connection_pool();
                        (p.size(), p.num_idle(), p.options().get_max_connections())
                    }
                    _ => {
                        let p = connection.get_postgres_connection_pool();
                        (p.size(), p.num_idle(), p.options().get_max_connections())
                    }
                };
                PoolUse {
                    pool,
                    open,
                    idle: u32::try_from(idle).unwrap_or(u32::MAX),
                    max,
                }
            })
            .collect()
    }
}

pub(crate) async fn connect(config: &ConnectConfig) -> LedgerResult<Pools> {
    if config.url.starts_with("sqlite:") {
        let write = Database::connect(sqlite_options(config, 1, false)).await?;
        // Reads only: a write through them would contend for SQLite's one writer.
        let read = Database::connect(sqlite_options(config, config.pool_size.max(1), true)).await?;
        let alive = std::sync::Arc::new(());
        spawn_checkpointer(
            Database::connect(sqlite_options(config, 1, false)).await?,
            std::sync::Arc::downgrade(&alive),
        );
        Ok(Pools {
            write,
            read,
            backend: DbBackend::Sqlite,
            _checkpointer: Some(alive),
        })
    } else if config.url.starts_with("postgres:") || config.url.starts_with("postgresql:") {
        if let Some(schema) = &config.pg_schema {
            validate_identifier(schema)?;
            let bootstrap = Database::connect(base_options(config, 1)).await?;
            bootstrap
                .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await?;
            bootstrap.close().await?;
        }
        let mut opts = base_options(config, config.pool_size.max(2));
        opts.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
        if let Some(schema) = &config.pg_schema {
            opts.set_schema_search_path(schema.clone());
        }
        let pool = Database::connect(opts).await?;
        Ok(Pools {
            write: pool.clone(),
            read: pool,
            backend: DbBackend::Postgres,
            _checkpointer: None,
        })
    } else {
        Err(LedgerError::InvalidRequest(format!(
            "unsupported database URL {:?}: use sqlite:// or postgres://",
            redact_url(&config.url)
        )))
    }
}

/// Prepared statements kept per connection. Batches use multi-row statements whose text depends
/// on the row count, so the driver's default of 100 would evict and re-prepare them constantly.
const STATEMENT_CACHE: usize = 1_000;

fn base_options(config: &ConnectConfig, max: u32) -> ConnectOptions {
    let mut opts = ConnectOptions::new(config.url.clone());
    opts.max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    opts
}

/// Rows sqlx may buffer between a SQLite connection's thread and the query: a whole history
/// page (`read::MAX_PAGE` + 1) and more.
const ROW_BUFFER: usize = 1_024;

/// `read_only`: the connections refuse to write (`PRAGMA query_only`). One mapping closure holds
/// every option: sea-orm keeps only the last one set.
fn sqlite_options(config: &ConnectConfig, max: u32, read_only: bool) -> ConnectOptions {
    let busy = config.busy_timeout;
    let mut opts = base_options(config, max);
    // Durable commits for money: WAL with synchronous=FULL (NORMAL may lose a committed
    // transaction on power loss). Foreign keys on; sqlx sets them, we state it anyway.
    opts.map_sqlx_sqlite_opts(move |o| {
        o.pragma("query_only", if read_only { "ON" } else { "OFF" })
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(busy)
            .create_if_missing(true)
            // A multi-row statement that is not its transaction's first keeps a statement
            // journal of the pages it changes; past 64 KiB SQLite spills that to a temporary
            // file. A batch's statements change far more, and those file writes were a sixth of
            // the writer thread's time (perf). In memory, they cost a copy.
            .pragma("temp_store", "MEMORY")
            .statement_cache_capacity(STATEMENT_CACHE)
            // sqlx runs each SQLite connection on a thread of its own and hands rows to the
            // query's task through a channel of this many. At its default (50) a page of history
            // (up to 501 rows) stopped the worker ten times to wait for the task, and the CSV
            // export spent a fifth of its time switching threads (perf: docs/benchmarks.md).
            .row_buffer_size(ROW_BUFFER)
    });
    opts
}

/// How often the checkpointer copies committed WAL frames back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Copies the WAL back into the database from a connection of its own, beside the writer, so
/// that commits don't pay for it. SQLite's automatic checkpoint runs inside the commit that finds
/// 1,000 frames in the WAL, and under the API's load that made some group commits several times
/// slower than the rest. That automatic checkpoint stays: it now finds nearly everything
/// copied, so it costs the commit a few frames and one fsync, and, being the writer's, it is what
/// lets the WAL start over from the beginning under continuous writes. (A checkpoint from another
/// connection can only restart the WAL if it catches up between two write transactions: with the
/// automatic one raised to 10,000 frames instead, the WAL grew through the whole top-up run and
/// top-ups were slower: docs/benchmarks.md.) Passive: it never waits for, or blocks, the writer.
fn spawn_checkpointer(connection: DatabaseConnection, alive: std::sync::Weak<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.upgrade().is_none() {
                break;
            }
            if let Err(e) = connection
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
        let _ = connection.close().await;
    });
}

fn validate_identifier(name: &str) -> LedgerResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LedgerError::InvalidRequest(format!(
            "{name:?} is not a valid schema name"
        )))
    }
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Builds a statement from SQL written with `?` placeholders, numbering them `$1, $2, …` for
/// PostgreSQL. The SQL must not contain a literal `?` (string literals included).
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_string(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A write transaction and the backend it runs on.
pub(crate) struct Tx {
    pub txn: DatabaseTransaction,
    pub backend: DbBackend,
}

impl Tx {
    pub async fn begin(pools: &Pools) -> LedgerResult<Tx> {
        // BEGIN IMMEDIATE takes SQLite's write lock up front: a deferred transaction that reads
        // before it writes fails with BUSY without waiting. Postgres keeps READ COMMITTED; every
        // balance change is a conditional UPDATE that is correct under it.
        let options = TransactionOptions {
            sqlite_transaction_mode: (pools.backend == DbBackend::Sqlite)
                .then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let txn = pools.write.begin_with_options(options).await?;
        Ok(Tx {
            txn,
            backend: pools.backend,
        })
    }

    pub async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
        let result = self
            .txn
            .execute_raw(stmt(self.backend, sql, values))
            .await?;
        Ok(result.rows_affected())
    }

    pub async fn one(&self, sql: &str, values: Vec<Value>) -> Result<Option<QueryResult>, DbErr> {
        self.txn
            .query_one_raw(stmt(self.backend, sql, values))
            .await
    }

    pub async fn all(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, DbErr> {
        self.txn
            .query_all_raw(stmt(self.backend, sql, values))
            .await
    }

    pub async fn commit(self) -> LedgerResult<()> {
        self.txn.commit().await.map_err(LedgerError::from)
    }
}

/// Reads outside a transaction, on the read pool.
pub(crate) async fn read_all(
    pools: &Pools,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    pools
        .read
        .query_all_raw(stmt(pools.backend, sql, values))
        .await
}

pub(crate) async fn read_one(
    pools: &Pools,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<QueryResult>, DbErr> {
    pools
        .read
        .query_one_raw(stmt(pools.backend, sql, values))
        .await
}

/// Reads a column by name, turning a type mismatch into a storage error (never a panic).
pub(crate) fn col<T: sea_orm::TryGetable>(row: &QueryResult, name: &str) -> LedgerResult<T> {
    row.try_get::<T>("", name).map_err(LedgerError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        let pg = stmt(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(pg.sql, "a = $1 AND b = $2");
        let lite = stmt(
            DbBackend::Sqlite,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(lite.sql, "a = ? AND b = ?");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://kalp:secret@db:5432/kalp"),
            "postgres://kalp:***@db:5432/kalp"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://data/kalp.db"), "sqlite://data/kalp.db");
    }
}
