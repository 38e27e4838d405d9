//! The benchmark's durable baseline (`api::durable_baseline`): a database of one table, apart
//! from the ledger's, to which each batch appends one row per request in one durable commit. It
//! has its own connection because it is its own database: nothing else is in it, so a batch
//! costs what any durable commit costs on this machine that day, and no more.
//!
//! Its connection is as durable as the ledger's (crates/ledger/src/db.rs): SQLite in WAL mode
//! with `synchronous=FULL`, PostgreSQL with its default `synchronous_commit=on`.

use std::time::Duration;

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Schema,
    TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use super::StoreResult;

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bench_durable_appends")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub appended_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Entity};

/// The one-table database, open.
#[derive(Clone)]
pub struct DurableAppends {
    connection: DatabaseConnection,
}

/// Rows per multi-row statement (as `charge_answers`).
const CHUNK: usize = 500;

impl DurableAppends {
    /// Opens `url` (one connection: one batch commits at a time) and creates the table if it is
    /// missing. On PostgreSQL, `schema` (created if missing) holds it alone.
    pub async fn open(url: &str, schema: Option<&str>) -> StoreResult<DurableAppends> {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(1)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .create_if_missing(true)
            });
        } else if let Some(schema) = schema.filter(|s| !s.is_empty()) {
            let bootstrap = Database::connect(url).await?;
            let create = format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                schema.replace('"', "")
            );
            bootstrap.execute_unprepared(&create).await?;
            bootstrap.close().await?;
            options.set_schema_search_path(schema.to_string());
        }
        let connection = Database::connect(options).await?;
        let backend = connection.get_database_backend();
        connection
            .execute(
                Schema::new(backend)
                    .create_table_from_entity(Entity)
                    .if_not_exists(),
            )
            .await?;
        Ok(DurableAppends { connection })
    }

    /// Appends one row per user id, all in one transaction: one durable commit.
    pub async fn append(&self, user_ids: &[i64], now: i64) -> StoreResult<()> {
        let tx = self.connection.begin().await?;
        for chunk in user_ids.chunks(CHUNK) {
            Entity::insert_many(chunk.iter().map(|&user_id| ActiveModel {
                id: NotSet,
                user_id: Set(user_id),
                appended_at: Set(now),
            }))
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rows appended so far (the tests' check that each request wrote one).
    pub async fn count(&self) -> StoreResult<u64> {
        use sea_orm::PaginatorTrait;
        Ok(Entity::find().count(&self.connection).await?)
    }
}
