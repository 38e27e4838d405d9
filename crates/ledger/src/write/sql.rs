//! SQL shared by the write path: the transfer INSERT's columns, the half-hour rollup's upsert, the
//! spending order of lots, multi-row statement sizes and the guarded set-based subtraction. The
//! bottom of the write path: it imports nothing of it.

use sea_orm::Value;

use crate::{db::Tx, error::LedgerResult, types::HALF_HOUR};

/// The start of every transfer INSERT, with its columns in the order the values follow (the
/// claims, `claim_and_withdraw` and `batch`).
macro_rules! insert_transfer {
    () => {
        "INSERT INTO ledger_transfers (idempotency_key, fingerprint, kind, debit_account_id, \
         credit_account_id, wallet_account_id, amount, reference, memo, reservation_id, created_at)"
    };
}
pub(crate) use insert_transfer;

/// The half-hour rollup (`ledger_wallet_half_hours`, migration m0006; read by `crate::totals`,
/// checked by the audit) is written by the statement that writes the transfer, in the same round
/// trip: a data-modifying CTE on PostgreSQL, a second statement gated on `changes()` on SQLite.
/// It was kept by triggers until migration m0007; PostgreSQL's statement trigger cost single
/// debits about 18 % (docs/benchmarks.md). This starts the upsert; rows follow as a `SELECT` or
/// `VALUES` of `(wallet, half-hour, kind, total, transfers)`, then [`add_to_half_hours`]'s end.
macro_rules! into_half_hours {
    () => {
        "INSERT INTO ledger_wallet_half_hours (wallet_account_id, half_hour, kind, total, transfers)"
    };
}
pub(crate) use into_half_hours;

/// The end of the rollup's upsert: a row that exists is added to. The same text on both backends.
macro_rules! add_to_half_hours {
    () => {
        " ON CONFLICT (wallet_account_id, half_hour, kind) DO UPDATE \
         SET total = ledger_wallet_half_hours.total + excluded.total, \
             transfers = ledger_wallet_half_hours.transfers + excluded.transfers"
    };
}
pub(crate) use add_to_half_hours;

/// The half-hour a transfer made at `at` (microseconds) is counted in: truncated, as the SQL
/// `created_at / 1800000000` of the migration's backfill and of the audit is.
pub(crate) fn half_hour(at: i64) -> i64 {
    at / HALF_HOUR
}

/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
pub(crate) const CHUNK: usize = 500;

pub(crate) fn placeholders(row: &str, n: usize) -> String {
    vec![row; n].join(", ")
}

/// The order in which a wallet's credits are used: soonest expiry first (never-expiring last),
/// promotional before paid at equal expiry, oldest first. The index `ledger_lots_spending`
/// (migration m0003) has these very expressions, so a wallet's lots are read in this order
/// without sorting them (`draw::spending_lots`).
pub(crate) const LOT_ORDER: &str = "CASE WHEN l.expires_at IS NULL THEN 1 ELSE 0 END, l.expires_at, \
    CASE WHEN l.source = 'promotional' THEN 0 ELSE 1 END, l.id";

/// `UPDATE table SET column = column - amount WHERE key = id AND column >= amount` for every
/// `(id, amount)`, a chunk of rows per statement. Returns how many rows the guard refused.
pub(crate) async fn subtract_guarded(
    tx: &Tx,
    table: &str,
    key: &str,
    column: &str,
    amounts: &[(i64, i64)],
) -> LedgerResult<u64> {
    let mut refused = 0;
    for chunk in amounts.chunks(CHUNK) {
        let values = chunk
            .iter()
            .flat_map(|(id, amount)| [Value::from(*id), Value::from(*amount)])
            .collect();
        let changed = tx
            .exec(
                &format!(
                    "WITH v (id, amount) AS (VALUES {}) \
                     UPDATE {table} SET {column} = {column} - v.amount FROM v \
                     WHERE {table}.{key} = v.id AND {table}.{column} >= v.amount",
                    placeholders("(?, ?)", chunk.len())
                ),
                values,
            )
            .await?;
        refused += chunk.len() as u64 - changed.min(chunk.len() as u64);
    }
    Ok(refused)
}
