//! The half-hour rollup's table (m0006, with the triggers that kept it) and the end of those
//! triggers (m0007), when the ledger's own statements took the rollup over (`write::sql`).

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{MigrationName, MigrationTrait, SchemaManager, async_trait};

/// Each wallet's credits moved per half-hour and kind, kept by triggers in the statement that
/// inserts or removes a transfer (until m0007 left that to the ledger's own statements), so that
/// the Dashboard sums at most 48 rows a day per kind instead of every charge (80 ms p99 over 14
/// busy days, `cargo xtask bench --scale`). Half-hours, not days, so that a day can begin at any
/// offset that is a multiple of 30 minutes (India's +5:30). `crate::totals` reads it; the audit
/// recomputes it from the transfers. Frozen: the SQL is written out here, not shared with the
/// code that reads it.
pub(super) struct WalletHalfHours;

impl MigrationName for WalletHalfHours {
    fn name(&self) -> &str {
        "m0006_wallet_half_hours"
    }
}

const WALLET_HALF_HOURS_SQLITE: &[&str] = &[
    "CREATE TABLE ledger_wallet_half_hours ( \
       wallet_account_id INTEGER NOT NULL, half_hour INTEGER NOT NULL, kind TEXT NOT NULL, \
       total INTEGER NOT NULL, transfers INTEGER NOT NULL, \
       PRIMARY KEY (wallet_account_id, half_hour, kind)) STRICT, WITHOUT ROWID",
    "INSERT INTO ledger_wallet_half_hours \
     SELECT wallet_account_id, created_at / 1800000000, kind, SUM(amount), COUNT(*) \
     FROM ledger_transfers GROUP BY 1, 2, 3",
    "CREATE TRIGGER ledger_wallet_half_hours_add AFTER INSERT ON ledger_transfers BEGIN \
       INSERT INTO ledger_wallet_half_hours (wallet_account_id, half_hour, kind, total, transfers) \
       VALUES (NEW.wallet_account_id, NEW.created_at / 1800000000, NEW.kind, NEW.amount, 1) \
       ON CONFLICT (wallet_account_id, half_hour, kind) \
       DO UPDATE SET total = total + excluded.total, transfers = transfers + 1; \
     END",
    "CREATE TRIGGER ledger_wallet_half_hours_remove AFTER DELETE ON ledger_transfers BEGIN \
       UPDATE ledger_wallet_half_hours SET total = total - OLD.amount, transfers = transfers - 1 \
       WHERE wallet_account_id = OLD.wallet_account_id \
         AND half_hour = OLD.created_at / 1800000000 AND kind = OLD.kind; \
     END",
];

// PostgreSQL: once per statement over its transition table, so that a batch of 500 charges is
// one upsert per wallet and kind, not 500. The trigger takes the wallets' balance rows before
// their half-hour rows: every path that writes a transfer also changes its wallet's balance, so
// the half-hour rows are only ever waited for by a holder of that balance row, and a path that
// inserts before it updates the balance (the claims) can't deadlock with one that locks the
// balance first (the batch).
const WALLET_HALF_HOURS_POSTGRES: &[&str] = &[
    "CREATE TABLE ledger_wallet_half_hours ( \
       wallet_account_id BIGINT NOT NULL, half_hour BIGINT NOT NULL, kind TEXT NOT NULL, \
       total BIGINT NOT NULL, transfers BIGINT NOT NULL, \
       PRIMARY KEY (wallet_account_id, half_hour, kind))",
    "INSERT INTO ledger_wallet_half_hours \
     SELECT wallet_account_id, created_at / 1800000000, kind, SUM(amount), COUNT(*) \
     FROM ledger_transfers GROUP BY 1, 2, 3",
    "CREATE FUNCTION ledger_wallet_half_hours_add() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       PERFORM 1 FROM ledger_balances \
         WHERE account_id IN (SELECT wallet_account_id FROM ledger_added_transfers) \
         ORDER BY account_id FOR NO KEY UPDATE; \
       INSERT INTO ledger_wallet_half_hours (wallet_account_id, half_hour, kind, total, transfers) \
       SELECT wallet_account_id, created_at / 1800000000, kind, SUM(amount), COUNT(*) \
         FROM ledger_added_transfers GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 \
       ON CONFLICT (wallet_account_id, half_hour, kind) DO UPDATE \
         SET total = ledger_wallet_half_hours.total + EXCLUDED.total, \
             transfers = ledger_wallet_half_hours.transfers + EXCLUDED.transfers; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER ledger_wallet_half_hours_add AFTER INSERT ON ledger_transfers \
     REFERENCING NEW TABLE AS ledger_added_transfers \
     FOR EACH STATEMENT EXECUTE FUNCTION ledger_wallet_half_hours_add()",
    "CREATE FUNCTION ledger_wallet_half_hours_remove() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       UPDATE ledger_wallet_half_hours h SET total = h.total - r.total, \
              transfers = h.transfers - r.transfers \
       FROM (SELECT wallet_account_id, created_at / 1800000000 AS half_hour, kind, \
                    SUM(amount) AS total, COUNT(*) AS transfers \
             FROM ledger_removed_transfers GROUP BY 1, 2, 3) r \
       WHERE h.wallet_account_id = r.wallet_account_id AND h.half_hour = r.half_hour \
         AND h.kind = r.kind; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER ledger_wallet_half_hours_remove AFTER DELETE ON ledger_transfers \
     REFERENCING OLD TABLE AS ledger_removed_transfers \
     FOR EACH STATEMENT EXECUTE FUNCTION ledger_wallet_half_hours_remove()",
];

#[async_trait::async_trait]
impl MigrationTrait for WalletHalfHours {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        run_for_backend(
            manager,
            WALLET_HALF_HOURS_POSTGRES,
            WALLET_HALF_HOURS_SQLITE,
        )
        .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// The half-hour totals are written by the ledger's own statements from here on
/// (`write::sql`), so the triggers go. PostgreSQL's statement trigger (a plpgsql call and a
/// transition table per statement, even one that inserted nothing) made single debits 5–12 %
/// and replays 7–15 % slower than the same upsert written in the statement (docs/benchmarks.md).
/// Code from before this migration counts only through the triggers: stop it before this runs
/// (docs/operations.md, upgrading).
pub(super) struct HalfHoursWithoutTriggers;

impl MigrationName for HalfHoursWithoutTriggers {
    fn name(&self) -> &str {
        "m0007_half_hours_without_triggers"
    }
}

const HALF_HOURS_WITHOUT_TRIGGERS_SQLITE: &[&str] = &[
    "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_add",
    "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_remove",
];

const HALF_HOURS_WITHOUT_TRIGGERS_POSTGRES: &[&str] = &[
    "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_add ON ledger_transfers",
    "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_remove ON ledger_transfers",
    "DROP FUNCTION IF EXISTS ledger_wallet_half_hours_add()",
    "DROP FUNCTION IF EXISTS ledger_wallet_half_hours_remove()",
];

#[async_trait::async_trait]
impl MigrationTrait for HalfHoursWithoutTriggers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), sea_orm::DbErr> {
        run_for_backend(
            manager,
            HALF_HOURS_WITHOUT_TRIGGERS_POSTGRES,
            HALF_HOURS_WITHOUT_TRIGGERS_SQLITE,
        )
        .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// Runs the statements written for the database the migration runs on.
async fn run_for_backend(
    manager: &SchemaManager<'_>,
    postgres: &[&str],
    sqlite: &[&str],
) -> Result<(), sea_orm::DbErr> {
    let statements = match manager.get_database_backend() {
        DbBackend::Postgres => postgres,
        _ => sqlite,
    };
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
