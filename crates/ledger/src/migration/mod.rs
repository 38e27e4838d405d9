//! Schema migrations (sea-orm-migration). Every constraint the ledger relies on — CHECKs on
//! balances and amounts, the UNIQUE idempotency keys, the foreign keys — is in the first
//! migration: SQLite cannot add constraints to an existing table without rebuilding it.

use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use sea_orm_migration::{
    MigrationName, MigrationTrait, MigratorTrait, SchemaManager, async_trait,
    sea_query::{Alias, DynIden, IntoIden},
};

use crate::{
    db::{Pools, stmt},
    error::{LedgerError, LedgerResult},
    types::{MAX_AMOUNT, SystemAccount},
};

mod half_hours;

use half_hours::{HalfHoursWithoutTriggers, WalletHalfHours};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateLedger),
            Box::new(UndrawnDebits),
            Box::new(LotsInSpendingOrder),
            Box::new(LotsByWallet),
            Box::new(TransfersByWalletTime),
            Box::new(WalletHalfHours),
            Box::new(HalfHoursWithoutTriggers),
        ]
    }

    // Our own table, so the web app's migrations can live beside these without colliding.
    fn migration_table_name() -> DynIden {
        Alias::new("ledger_migrations").into_iden()
    }
}

struct CreateLedger;

impl MigrationName for CreateLedger {
    fn name(&self) -> &str {
        "m0001_create_ledger"
    }
}

/// Table definitions in one dialect-neutral text; `{ID}`, `{INT}` and `{STRICT}` are filled in per
/// backend. SQLite tables are STRICT so that a value of the wrong type (a float where credits
/// belong) is an error instead of being stored.
const SCHEMA: &str = r#"
CREATE TABLE ledger_accounts (
    id {ID},
    code TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 250),
    kind TEXT NOT NULL CHECK (kind IN ('wallet', 'system')),
    created_at {INT} NOT NULL
){STRICT};

CREATE TABLE ledger_balances (
    account_id {INT} PRIMARY KEY REFERENCES ledger_accounts (id),
    available {INT} NOT NULL CHECK (available >= 0 AND available <= {MAX}),
    reserved {INT} NOT NULL CHECK (reserved >= 0 AND reserved <= {MAX})
){STRICT};

CREATE TABLE ledger_reservations (
    id {ID},
    idempotency_key TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    fingerprint TEXT NOT NULL,
    wallet_account_id {INT} NOT NULL REFERENCES ledger_balances (account_id),
    kind TEXT NOT NULL CHECK (kind IN ('usage_email', 'usage_sms', 'adjustment_debit')),
    amount {INT} NOT NULL CHECK (amount > 0 AND amount <= {MAX}),
    status TEXT NOT NULL CHECK (status IN ('pending', 'settled', 'released', 'expired')),
    used {INT} CHECK (used >= 0 AND used <= amount),
    reference TEXT,
    expires_at {INT} NOT NULL,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    CHECK ((status = 'settled' AND used IS NOT NULL) OR (status <> 'settled' AND used IS NULL))
){STRICT};
CREATE INDEX ledger_reservations_wallet ON ledger_reservations (wallet_account_id, id);
CREATE INDEX ledger_reservations_pending ON ledger_reservations (expires_at) WHERE status = 'pending';

CREATE TABLE ledger_transfers (
    id {ID},
    idempotency_key TEXT NOT NULL UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('purchase', 'grant', 'adjustment_credit',
        'adjustment_debit', 'usage_email', 'usage_sms', 'expiry', 'refund_reversal')),
    debit_account_id {INT} NOT NULL REFERENCES ledger_accounts (id),
    credit_account_id {INT} NOT NULL REFERENCES ledger_accounts (id),
    wallet_account_id {INT} NOT NULL REFERENCES ledger_balances (account_id),
    amount {INT} NOT NULL CHECK (amount > 0 AND amount <= {MAX}),
    reference TEXT,
    memo TEXT,
    reservation_id {INT} UNIQUE REFERENCES ledger_reservations (id),
    created_at {INT} NOT NULL,
    CHECK (debit_account_id <> credit_account_id),
    CHECK (wallet_account_id = debit_account_id OR wallet_account_id = credit_account_id)
){STRICT};
CREATE INDEX ledger_transfers_wallet ON ledger_transfers (wallet_account_id, id);
CREATE INDEX ledger_transfers_reference ON ledger_transfers (reference);

CREATE TABLE ledger_lots (
    id {ID},
    wallet_account_id {INT} NOT NULL REFERENCES ledger_balances (account_id),
    transfer_id {INT} NOT NULL UNIQUE REFERENCES ledger_transfers (id),
    source TEXT NOT NULL CHECK (source IN ('paid', 'promotional')),
    payment_reference TEXT,
    original {INT} NOT NULL CHECK (original > 0 AND original <= {MAX}),
    remaining {INT} NOT NULL CHECK (remaining >= 0),
    held {INT} NOT NULL CHECK (held >= 0),
    expires_at {INT},
    created_at {INT} NOT NULL,
    CHECK (remaining + held <= original)
){STRICT};
CREATE INDEX ledger_lots_spendable ON ledger_lots (wallet_account_id) WHERE remaining > 0;
CREATE INDEX ledger_lots_expiring ON ledger_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

CREATE TABLE ledger_lot_allocations (
    transfer_id {INT} NOT NULL REFERENCES ledger_transfers (id),
    lot_id {INT} NOT NULL REFERENCES ledger_lots (id),
    amount {INT} NOT NULL CHECK (amount > 0),
    PRIMARY KEY (transfer_id, lot_id)
){STRICT};
CREATE INDEX ledger_lot_allocations_lot ON ledger_lot_allocations (lot_id);

CREATE TABLE ledger_reservation_lots (
    reservation_id {INT} NOT NULL REFERENCES ledger_reservations (id),
    lot_id {INT} NOT NULL REFERENCES ledger_lots (id),
    held {INT} NOT NULL CHECK (held >= 0),
    PRIMARY KEY (reservation_id, lot_id)
){STRICT};
CREATE INDEX ledger_reservation_lots_lot ON ledger_reservation_lots (lot_id);
"#;

/// The statements of a dialect-neutral schema for `backend`: `{ID}` (an auto-increment primary
/// key), `{INT}` (a 64-bit integer), `{STRICT}` (STRICT tables on SQLite) and `{MAX}` (the
/// ledger's largest amount) filled in; `--` comment lines dropped before splitting on `;`, which
/// they may contain. The web app's migrations use it too.
pub fn schema_statements(backend: DbBackend, schema: &str) -> Vec<String> {
    let (id, int, strict) = match backend {
        DbBackend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", " STRICT"),
        _ => (
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "BIGINT",
            "",
        ),
    };
    schema
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{ID}", id)
        .replace("{INT}", int)
        .replace("{STRICT}", strict)
        .replace("{MAX}", &MAX_AMOUNT.to_string())
        .split(';')
        .filter(|statement| !statement.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateLedger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        for statement in schema_statements(backend, SCHEMA) {
            db.execute_unprepared(&statement).await?;
        }
        let now = chrono::Utc::now().timestamp_micros();
        for account in SystemAccount::ALL {
            db.execute_raw(stmt(
                backend,
                "INSERT INTO ledger_accounts (code, kind, created_at) VALUES (?, 'system', ?)",
                vec![account.code().into(), now.into()],
            ))
            .await?;
        }
        Ok(())
    }

    // SQLite runs migrations outside a transaction by default; this one must be all or nothing.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Plain debits take their credits off the balance row only, counted as `undrawn` until the lots
/// are drawn after the fact (see `draw`). Every debit before this migration was drawn at once.
struct UndrawnDebits;

impl MigrationName for UndrawnDebits {
    fn name(&self) -> &str {
        "m0002_undrawn_debits"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for UndrawnDebits {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        let int = match manager.get_database_backend() {
            DbBackend::Sqlite => "INTEGER",
            _ => "BIGINT",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE ledger_balances ADD COLUMN undrawn {int} NOT NULL DEFAULT 0 \
                 CHECK (undrawn >= 0 AND undrawn <= {MAX_AMOUNT})"
            ))
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// An index in the order lots are spent (`write::sql::LOT_ORDER`), so that finding the lots a
/// debit draws from reads those few lots instead of sorting every open lot of the wallet (an
/// account with a thousand top-ups made every group commit of its charges pay for that sort).
/// It replaces the plain spendable-lots index, whose queries it serves too.
struct LotsInSpendingOrder;

impl MigrationName for LotsInSpendingOrder {
    fn name(&self) -> &str {
        "m0003_lots_in_spending_order"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LotsInSpendingOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX ledger_lots_spending ON ledger_lots (wallet_account_id, \
             (CASE WHEN expires_at IS NULL THEN 1 ELSE 0 END), expires_at, \
             (CASE WHEN source = 'promotional' THEN 0 ELSE 1 END), id) WHERE remaining > 0",
        )
        .await?;
        db.execute_unprepared("DROP INDEX ledger_lots_spendable")
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Every lot of a wallet, spent or not: what a wallet's lots are read by (`Ledger::lots`, the
/// refund quote, the customer page). The spending index covers only lots with credits left, so
/// without this a wallet's lots were a scan of every lot (seen with `cargo xtask bench --scale`).
struct LotsByWallet;

impl MigrationName for LotsByWallet {
    fn name(&self) -> &str {
        "m0004_lots_by_wallet"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LotsByWallet {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ledger_lots_wallet ON ledger_lots (wallet_account_id, id)",
            )
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// A wallet's transfers in time order: Credit History pages newest first by `(created_at, id)`,
/// and its date filters, the Dashboard's days and the month's totals are ranges of it. With only
/// `(wallet_account_id, id)`, a date range a year back in a wallet of 500,000 transfers read
/// every newer transfer first (617 ms on SQLite, `cargo xtask bench --scale`). `kind` and
/// `amount` ride along so that the Dashboard's sums read the index alone (SQLite: 2.4 times
/// faster over 40,000 transfers). The id index stays: the draw walks a wallet's newest debits
/// by id.
struct TransfersByWalletTime;

impl MigrationName for TransfersByWalletTime {
    fn name(&self) -> &str {
        "m0005_transfers_by_wallet_time"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for TransfersByWalletTime {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ledger_transfers_wallet_time \
                 ON ledger_transfers (wallet_account_id, created_at, id, kind, amount)",
            )
            .await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Applies pending migrations. On PostgreSQL an advisory lock makes concurrent starts of several
/// app instances wait for one another instead of racing to create the same tables.
pub(crate) async fn migrate(pools: &Pools) -> LedgerResult<()> {
    run::<Migrator>(pools, 7283541001).await
}

/// Applies `M`'s pending migrations on the writer, under the advisory lock `lock_key` on
/// PostgreSQL.
pub(crate) async fn run<M: MigratorTrait>(pools: &Pools, lock_key: i64) -> LedgerResult<()> {
    match pools.backend {
        DbBackend::Postgres => {
            let guard = pools.write.begin().await?;
            guard
                .execute_unprepared(&format!("SELECT pg_advisory_xact_lock({lock_key})"))
                .await?;
            M::up(&pools.write, None).await?;
            guard.commit().await?;
        }
        _ => M::up(&pools.write, None).await?,
    }
    Ok(())
}

/// The names of the migrations applied so far, oldest first.
pub(crate) async fn applied(pools: &Pools) -> LedgerResult<Vec<String>> {
    let applied = Migrator::get_applied_migrations(&pools.write)
        .await
        .map_err(LedgerError::from)?;
    Ok(applied.iter().map(|m| m.name().to_string()).collect())
}
