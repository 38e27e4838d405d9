//! The web app's migrations: frozen code. A migration never calls the application's functions
//! (they change; a migration must do tomorrow what it did today), so each one carries its own
//! copy of whatever logic it needs. The ledger applies its own migrations when it opens.

mod m0001_create_web_tables;
mod m0002_charge_answers_by_transfer;
mod m0003_every_payment_path;
mod m0004_auth_attempts;
mod m0005_operators;
mod m0006_retention;
mod m0007_audit_runs;
mod m0008_gst_vouchers;
mod m0009_emails;
mod sql_migration;

use sea_orm_migration::{
    MigrationTrait, MigratorTrait, async_trait,
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
            Box::new(m0005_operators::MIGRATION),
            Box::new(m0006_retention::MIGRATION),
            Box::new(m0007_audit_runs::MIGRATION),
            Box::new(m0008_gst_vouchers::MIGRATION),
            Box::new(m0009_emails::MIGRATION),
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

/// The migrations this binary knows that the database has not applied (an empty list: current).
pub async fn missing<C: sea_orm::ConnectionTrait>(conn: &C) -> Result<Vec<String>, sea_orm::DbErr> {
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT version FROM web_migrations",
        ))
        .await?;
    let applied: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String>("", "version").ok())
        .collect();
    Ok(WebMigrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .filter(|name| !applied.contains(name))
        .collect())
}
