//! The web app's migrations: frozen code. A migration never calls the application's functions
//! (they change; a migration must do tomorrow what it did today), so each one carries its own
//! copy of whatever logic it needs. The ledger applies its own migrations when it opens.

mod m0001_create_web_tables;
mod m0002_charge_answers_by_transfer;
mod m0003_every_payment_path;
mod m0004_auth_attempts;

use sea_orm::{ConnectionTrait, DbErr};
use sea_orm_migration::{
    MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait,
    sea_query::{Alias, DynIden, IntoIden},
};

/// The PostgreSQL advisory lock that makes several instances starting at once apply these one
/// at a time.
const MIGRATION_LOCK: i64 = 7283541002;

pub struct WebMigrator;

#[async_trait::async_trait]
impl MigratorTrait for WebMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_create_web_tables::MIGRATION),
            Box::new(m0002_charge_answers_by_transfer::ChargeAnswersByTransfer),
            Box::new(m0003_every_payment_path::MIGRATION),
            Box::new(m0004_auth_attempts::MIGRATION),
        ]
    }

    // Our own table, beside the ledger's `ledger_migrations`.
    fn migration_table_name() -> DynIden {
        Alias::new("web_migrations").into_iden()
    }
}

/// Applies the web app's pending migrations through the ledger's writer.
pub async fn apply(ledger: &ledger::Ledger) -> Result<(), ledger::LedgerError> {
    ledger.migrate_beside::<WebMigrator>(MIGRATION_LOCK).await
}

/// A migration that is only SQL, in the ledger's dialect-neutral text
/// ([`ledger::schema_statements`]: `{ID}`, `{INT}`, `{STRICT}`), run in one transaction.
struct SqlMigration {
    name: &'static str,
    sql: &'static str,
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

async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    for statement in ledger::schema_statements(manager.get_database_backend(), sql) {
        connection.execute_unprepared(&statement).await?;
    }
    Ok(())
}
