//! A ledger with years of data, made fast for benchmarks (`cargo xtask bench --scale`, issue 21):
//! set-based inserts straight into the ledger's own tables (numbers from `generate_series` on
//! PostgreSQL, a recursive CTE on SQLite), never one API call per row. What it writes keeps every
//! invariant `Ledger::audit` checks: each purchase has its lot, each usage debit is drawn from its
//! wallet's first lot, lots' remaining and balances follow from the allocations.
//!
//! The shape: `wallets` wallets with `purchases` paid top-ups each; `usage` debits of one credit,
//! `big_wallet_usage` of them on the first wallet (a customer with years of sends) and the rest
//! spread over the others.

use chrono::{DateTime, Utc};

use crate::{
    db::{Pools, Tx, col, read_all},
    error::{LedgerError, LedgerResult},
    model::Balance,
    read::{HistoryQuery, history_statement},
    totals::daily_totals_statement,
    types::{AccountId, SystemAccount},
    write::{
        batch::key_lookup_statement,
        sql::{add_to_half_hours, into_half_hours},
    },
};

/// How much to preload.
#[derive(Debug, Clone, Copy)]
pub struct ScaleShape {
    pub wallets: i64,
    pub purchases: i64,
    pub usage: i64,
    pub big_wallet_usage: i64,
}

impl ScaleShape {
    /// Issue 21's shape: 20,000 wallets, 100,000 paid top-ups, 2,000,000 usage transfers with
    /// 500,000 on one wallet.
    pub const ISSUE_21: ScaleShape = ScaleShape {
        wallets: 20_000,
        purchases: 5,
        usage: 2_000_000,
        big_wallet_usage: 500_000,
    };
}

/// What was written: the big wallet, and every wallet in order.
#[derive(Debug, Clone)]
pub struct Preloaded {
    pub big_wallet: AccountId,
    pub first_wallet: i64,
    pub wallets: i64,
}

/// `SELECT i FROM <1..=n>` as a derived table.
fn numbers(backend: sea_orm::DbBackend, n: i64) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => {
            format!("(SELECT generate_series(CAST(1 AS BIGINT), CAST({n} AS BIGINT)) AS i) AS s")
        }
        _ => format!(
            "(WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n}) \
             SELECT i FROM seq) AS s"
        ),
    }
}

async fn system_id(tx: &Tx, account: SystemAccount) -> LedgerResult<i64> {
    let row = tx
        .one(
            "SELECT id FROM ledger_accounts WHERE code = ?",
            vec![account.code().into()],
        )
        .await?
        .ok_or_else(|| LedgerError::Inconsistent(format!("no {} account", account.code())))?;
    col(&row, "id")
}

/// The table's indexes that no constraint owns, as `(name, CREATE INDEX …)`.
async fn secondary_indexes(tx: &Tx, table: &str) -> LedgerResult<Vec<(String, String)>> {
    let sql = match tx.backend {
        // The definitions are rendered only for this schema's table, after the filter (the
        // `OFFSET 0` keeps the planner from moving `pg_get_indexdef` before it). Through the
        // `pg_indexes` view, PostgreSQL rendered indexes of every schema first, and one being
        // dropped meanwhile (a parallel test's) failed the preload: "could not open relation".
        sea_orm::DbBackend::Postgres => {
            "SELECT name, pg_get_indexdef(index_id) AS definition FROM \
             (SELECT i.indexrelid AS index_id, c.relname AS name \
              FROM pg_index i \
              JOIN pg_class t ON t.oid = i.indrelid \
              JOIN pg_class c ON c.oid = i.indexrelid \
              JOIN pg_namespace n ON n.oid = t.relnamespace \
              WHERE t.relname = ? AND n.nspname = current_schema() AND NOT i.indisunique \
              OFFSET 0) AS own"
        }
        _ => {
            "SELECT name, sql AS definition FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL \
               AND sql NOT LIKE 'CREATE UNIQUE%'"
        }
    };
    tx.all(sql, vec![table.into()])
        .await?
        .iter()
        .map(|row| Ok((col(row, "name")?, col(row, "definition")?)))
        .collect()
}

pub(crate) async fn preload(pools: &Pools, shape: ScaleShape) -> LedgerResult<Preloaded> {
    if shape.wallets < 2 || shape.purchases < 1 || shape.big_wallet_usage >= shape.usage {
        return Err(LedgerError::InvalidAmount(
            "a scale shape needs 2 wallets or more".into(),
        ));
    }
    let tx = Tx::begin(pools).await?;
    let backend = tx.backend;
    let purchases_account = system_id(&tx, SystemAccount::RazorpayPurchases).await?;
    let email_account = system_id(&tx, SystemAccount::EmailUsage).await?;
    // Everything happened over the last two years, oldest first.
    let now = chrono::Utc::now().timestamp_micros();
    let start = now - 2 * 365 * 86_400 * 1_000_000;

    tx.exec(
        &format!(
            "INSERT INTO ledger_accounts (code, kind, created_at) \
             SELECT 'scale:wallet:' || CAST(i AS TEXT), 'wallet', {start} FROM {} ORDER BY i",
            numbers(backend, shape.wallets)
        ),
        vec![],
    )
    .await?;
    let row = tx
        .one(
            "SELECT MIN(id) AS first, MAX(id) AS last FROM ledger_accounts \
             WHERE code LIKE 'scale:wallet:%'",
            vec![],
        )
        .await?
        .ok_or_else(|| LedgerError::Inconsistent("no scale wallets".into()))?;
    let (first, last): (i64, i64) = (col(&row, "first")?, col(&row, "last")?);
    if last - first + 1 != shape.wallets {
        return Err(LedgerError::Inconsistent(
            "the scale wallets' ids are not consecutive (preload into an empty ledger)".into(),
        ));
    }
    // Balances first (transfers and lots reference them); set from the lots at the end.
    tx.exec(
        &format!(
            "INSERT INTO ledger_balances (account_id, available, reserved, undrawn) \
             SELECT {first} + i - 1, 0, 0, 0 FROM {}",
            numbers(backend, shape.wallets)
        ),
        vec![],
    )
    .await?;
    // Purchases: `purchases` per wallet, numbered p = 0.. per wallet. The first of each wallet
    // is large enough for all its usage, and for the charges `cargo xtask bench --scale` adds.
    let big_first = shape.big_wallet_usage + 1_000_000;
    tx.exec(
        &format!(
            "INSERT INTO ledger_transfers (idempotency_key, fingerprint, kind, debit_account_id, \
               credit_account_id, wallet_account_id, amount, reference, memo, created_at) \
             SELECT 'scale:purchase:' || CAST(i AS TEXT), 'scale', 'purchase', {purchases_account}, \
               {first} + (i - 1) / {p}, {first} + (i - 1) / {p}, \
               CASE WHEN i = 1 THEN {big_first} WHEN (i - 1) % {p} = 0 THEN 10000 ELSE 1000 END, \
               'pay_scale_' || CAST(i AS TEXT), 'Top-up via Razorpay', \
               {start} + i * 1000000 \
             FROM {} ORDER BY i",
            numbers(backend, shape.wallets * shape.purchases),
            p = shape.purchases,
        ),
        vec![],
    )
    .await?;
    tx.exec(
        "INSERT INTO ledger_lots (wallet_account_id, transfer_id, source, payment_reference, \
           original, remaining, held, expires_at, created_at) \
         SELECT wallet_account_id, id, 'paid', reference, amount, amount, 0, NULL, created_at \
         FROM ledger_transfers WHERE idempotency_key LIKE 'scale:purchase:%' ORDER BY id",
        vec![],
    )
    .await?;
    // Two million rows into the wallet indexes one at a time, in wallet order, cost more than
    // the rows themselves; the indexes are dropped and built again after, from the database's
    // own definitions.
    let secondary = secondary_indexes(&tx, "ledger_transfers").await?;
    for (name, _) in &secondary {
        tx.exec(&format!("DROP INDEX {name}"), vec![]).await?;
    }
    // Usage: debit i goes to the big wallet for the first `big_wallet_usage`, then round the
    // others; one credit each, a minute apart, after the purchases.
    let rest = shape.wallets - 1;
    let usage_start = start + shape.wallets * shape.purchases * 1_000_000;
    tx.exec(
        &format!(
            "INSERT INTO ledger_transfers (idempotency_key, fingerprint, kind, debit_account_id, \
               credit_account_id, wallet_account_id, amount, reference, memo, created_at) \
             SELECT 'scale:usage:' || CAST(i AS TEXT), 'scale', 'usage_email', w, {email_account}, \
               w, 1, NULL, NULL, {usage_start} + i * 20000000 \
             FROM (SELECT i, CASE WHEN i <= {big} THEN {first} \
                     ELSE {first} + 1 + (i % {rest}) END AS w FROM {}) AS u ORDER BY i",
            numbers(backend, shape.usage),
            big = shape.big_wallet_usage,
        ),
        vec![],
    )
    .await?;
    for (_, definition) in &secondary {
        tx.exec(definition, vec![]).await?;
    }
    // Each debit drawn from its wallet's first lot (the lot of its first purchase).
    tx.exec(
        &format!(
            "INSERT INTO ledger_lot_allocations (transfer_id, lot_id, amount) \
             SELECT t.id, l.id, t.amount FROM ledger_transfers t \
             JOIN ledger_lots l ON l.wallet_account_id = t.wallet_account_id \
               AND l.payment_reference = 'pay_scale_' || \
                 CAST((t.wallet_account_id - {first}) * {p} + 1 AS TEXT) \
             WHERE t.idempotency_key LIKE 'scale:usage:%'",
            p = shape.purchases,
        ),
        vec![],
    )
    .await?;
    tx.exec(
        "UPDATE ledger_lots SET remaining = original - a.total \
         FROM (SELECT lot_id, SUM(amount) AS total FROM ledger_lot_allocations GROUP BY lot_id) a \
         WHERE a.lot_id = ledger_lots.id",
        vec![],
    )
    .await?;
    tx.exec(
        &format!(
            "UPDATE ledger_balances SET available = l.total \
             FROM (SELECT wallet_account_id, SUM(remaining) AS total FROM ledger_lots \
               WHERE wallet_account_id BETWEEN {first} AND {last} GROUP BY wallet_account_id) l \
             WHERE l.wallet_account_id = ledger_balances.account_id"
        ),
        vec![],
    )
    .await?;
    // The half-hour rollup, which the write path keeps per statement (`write::sql`), in one pass.
    tx.exec(
        concat!(
            into_half_hours!(),
            " SELECT wallet_account_id, created_at / 1800000000, kind, SUM(amount), COUNT(*) \
             FROM ledger_transfers WHERE idempotency_key LIKE 'scale:%' GROUP BY 1, 2, 3",
            add_to_half_hours!()
        ),
        vec![],
    )
    .await?;
    tx.commit().await?;
    Ok(Preloaded {
        big_wallet: AccountId(first),
        first_wallet: first,
        wallets: shape.wallets,
    })
}

/// Keys in the explained lookup: a full batch of the API's charges at 64 connections.
const KEY_LOOKUP_KEYS: usize = 64;

/// How the database runs each per-page read for `wallet`, as `(what, plan)`: the balance, each
/// of `pages`, the Dashboard's days since `days_since` (India's offset), and a charge batch's
/// key lookup. PostgreSQL's plans are `EXPLAIN (ANALYZE, BUFFERS)`, SQLite's `EXPLAIN QUERY
/// PLAN`. For `docs/benchmarks.md`.
pub(crate) async fn explain_reads(
    pools: &Pools,
    wallet: AccountId,
    pages: &[(String, HistoryQuery)],
    days_since: DateTime<Utc>,
) -> LedgerResult<Vec<(String, String)>> {
    let mut statements = vec![(
        "balance".to_string(),
        Balance::BY_WALLET.to_string(),
        vec![wallet.0.into()],
    )];
    for (what, query) in pages {
        let (sql, values) = history_statement(wallet, query)?;
        statements.push((what.clone(), sql, values));
    }
    let (sql, values) = daily_totals_statement(wallet, days_since, 19_800, &[]);
    statements.push(("dashboard: usage by day".to_string(), sql, values));
    // A full charge batch's replay lookup: keys nobody used, so every probe misses, as for
    // a batch of new charges.
    statements.push((
        format!("charge batch: {KEY_LOOKUP_KEYS} idempotency keys looked up"),
        key_lookup_statement(pools.backend, KEY_LOOKUP_KEYS),
        (0..KEY_LOOKUP_KEYS)
            .map(|i| format!("explain:unused:{i}").into())
            .collect(),
    ));
    let (prefix, column) = match pools.backend {
        sea_orm::DbBackend::Postgres => ("EXPLAIN (ANALYZE, BUFFERS) ", "QUERY PLAN"),
        _ => ("EXPLAIN QUERY PLAN ", "detail"),
    };
    let mut out = Vec::new();
    for (what, sql, values) in statements {
        let rows = read_all(pools, &format!("{prefix}{sql}"), values).await?;
        let lines = rows
            .iter()
            .map(|row| col::<String>(row, column))
            .collect::<LedgerResult<Vec<_>>>()?;
        out.push((what, format!("{sql}\n{}", lines.join("\n"))));
    }
    Ok(out)
}
