//! What most migrations are: SQL in the ledger's dialect-neutral text, run in one transaction.

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, SchemaManager, async_trait};

/// A migration that is only SQL, in the ledger's dialect-neutral text
/// ([`ledger::schema_statements`]: `{ID}`, `{INT}`, `{STRICT}`), run in one transaction.
pub(super) struct SqlMigration {
    pub(super) name: &'static str,
    pub(super) sql: &'static str,
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_sql(manager, self.sql).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

pub(super) async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    for statement in ledger::schema_statements(manager.get_database_backend(), sql) {
        connection.execute_unprepared(&statement).await?;
    }
    Ok(())
}
