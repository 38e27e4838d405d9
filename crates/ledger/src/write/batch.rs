//! Batches of debits, set-based: a handful of multi-row statements for the whole batch instead of
//! several per item (a batch of 1,000 is several times faster than 1,000 single debits: docs/benchmarks.md).
//!
//! 1. Read (on PostgreSQL, lock with `FOR NO KEY UPDATE`, in account order) the wallets' balances.
//! 2. Then look up every key at once: replays and conflicts are answered from what is stored,
//!    including what a concurrent batch committed while we waited for the lock.
//! 3. Decide every item in memory, in the order given per wallet: accepted while the running
//!    balance covers it, refused with the running balance otherwise — the same answers the
//!    item-by-item path gives.
//! 4. Write: the transfers (multi-row `INSERT … RETURNING`), one guarded balance `UPDATE … FROM`
//!    per chunk of wallets, the lots drawn in spending order (one `UPDATE … FROM`), and the
//!    allocations (multi-row `INSERT`): a batch draws at once (`draw::allocate`), after any single
//!    debits of its wallets still undrawn. The half-hour rollup gets one row per wallet and kind,
//!    in the transfers' INSERT on PostgreSQL (after the balances, in the locking order). Every guard is re-checked by the database; a row count
//!    that disagrees with the plan fails the transaction instead of committing a wrong ledger.

use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{DbBackend, Value};

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    model::{Balance, Debit, Receipt, Transfer},
    types::{AccountId, TransferId},
    write::{
        claims::{SystemIds, debit_fingerprint, debit_transfer, missing_wallet},
        draw,
        sql::{
            CHUNK, add_to_half_hours, half_hour, insert_transfer, into_half_hours, placeholders,
            subtract_guarded,
        },
    },
};

/// True when the set-based path gives the same answers as the item-by-item one: no key repeats
/// within the batch (a repeat's answer depends on how the first one went).
pub(crate) fn keys_are_distinct(debits: &[&Debit]) -> bool {
    let mut seen = HashSet::with_capacity(debits.len());
    debits.iter().all(|d| seen.insert(d.key.as_str()))
}

/// What each item came to: its receipt and the wallet's balance right after it, or a refusal.
pub(crate) type Decided = Vec<LedgerResult<(Receipt, Balance)>>;

enum DebitPlan {
    Replay(Transfer),
    Refused(LedgerError),
    Accepted,
}

/// Applies `debits` (keys distinct: see [`keys_are_distinct`]) in this transaction.
pub(crate) async fn debits(
    tx: &Tx,
    sys: &SystemIds,
    debits: &[&Debit],
    now: i64,
) -> LedgerResult<Decided> {
    let fingerprints: Vec<String> = debits.iter().map(|d| debit_fingerprint(d)).collect();
    // Lock the balances first, then look the keys up: the lock waits for any transaction that
    // debits these wallets, so a key another instance's batch committed meanwhile is seen as a
    // replay. Looked up before the lock, that key was missed and its retry refused for the
    // credits the original had just spent (three instances on PostgreSQL: web/tests/instances.rs).
    let (mut running, undrawn) = lock_balances(tx, debits).await?;
    let stored = existing_transfers(tx, debits).await?;
    // Decide, in the order given, against the running balances.
    let mut plans = Vec::with_capacity(debits.len());
    let mut after = Vec::with_capacity(debits.len());
    for (d, fingerprint) in debits.iter().zip(&fingerprints) {
        let plan = match stored.get(d.key.as_str()) {
            Some((transfer, stored_fp)) if stored_fp == fingerprint => {
                DebitPlan::Replay(transfer.clone())
            }
            Some(_) => DebitPlan::Refused(LedgerError::IdempotencyConflict {
                key: d.key.as_str().into(),
            }),
            None => match running.get_mut(&d.wallet) {
                None => DebitPlan::Refused(missing_wallet(tx, d.wallet).await),
                Some(b) if b.available >= d.amount.get() => {
                    b.available -= d.amount.get();
                    DebitPlan::Accepted
                }
                Some(b) => DebitPlan::Refused(LedgerError::InsufficientCredits {
                    available: b.available,
                    required: d.amount.get(),
                }),
            },
        };
        after.push(running.get(&d.wallet).copied().unwrap_or_default());
        plans.push(plan);
    }
    if let Some(e) = plans.iter().find_map(|p| match p {
        DebitPlan::Refused(e @ LedgerError::Storage(_)) => Some(e.clone()),
        _ => None,
    }) {
        return Err(e);
    }

    let accepted: Vec<usize> = (0..debits.len())
        .filter(|&i| matches!(plans[i], DebitPlan::Accepted))
        .collect();
    // Single debits of these wallets not drawn yet come first (and before this batch's transfers
    // exist, which would look undrawn too).
    if !undrawn.is_empty() {
        draw::draw_pending(tx, &undrawn).await?;
    }
    let ids = insert_transfers(tx, sys, debits, &fingerprints, &accepted, now).await?;
    withdraw(tx, debits, &accepted).await?;
    if tx.backend != DbBackend::Postgres {
        // PostgreSQL counted them in the INSERT (`insert_transfers`).
        count_in_half_hours(tx, debits, &accepted, now).await?;
    }
    let mut drawn: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for &i in &accepted {
        drawn
            .entry(debits[i].wallet.0)
            .or_default()
            .push((ids[&i].0, debits[i].amount.get()));
    }
    draw::allocate(tx, &drawn).await?;

    let mut out = Vec::with_capacity(debits.len());
    for (i, plan) in plans.into_iter().enumerate() {
        let d = debits[i];
        out.push(match plan {
            DebitPlan::Replay(transfer) => Ok((
                Receipt {
                    transfer,
                    replayed: true,
                },
                after[i],
            )),
            DebitPlan::Refused(e) => Err(e),
            DebitPlan::Accepted => Ok((
                Receipt {
                    transfer: debit_transfer(
                        d,
                        ids[&i],
                        sys.get(d.kind.transfer_kind().system_account())?,
                        now,
                    ),
                    replayed: false,
                },
                after[i],
            )),
        });
    }
    Ok(out)
}

/// The statement that reads the stored transfers (and fingerprints) of `keys` idempotency keys,
/// bound in order (also what `scale::explain_reads` explains).
pub(crate) fn key_lookup_statement(backend: DbBackend, keys: usize) -> String {
    match backend {
        // One probe of the unique index per key, whatever the statistics say. Given `IN (…)`,
        // PostgreSQL costs 64 probes above a scan of a young table it has not analysed yet, and
        // read every transfer per batch: 1.8 ms at 6,000 transfers against 0.2 ms
        // (docs/benchmarks.md). The `OFFSET 0` keeps the planner from turning the per-key lookup
        // back into a join, which it would hash over the same scan.
        DbBackend::Postgres => format!(
            "SELECT t.* FROM (VALUES {}) AS k (key) CROSS JOIN LATERAL \
             (SELECT {}, fingerprint FROM ledger_transfers WHERE idempotency_key = k.key \
             OFFSET 0) AS t",
            placeholders("(?)", keys),
            Transfer::COLUMNS,
        ),
        _ => format!(
            "SELECT {}, fingerprint FROM ledger_transfers WHERE idempotency_key IN ({})",
            Transfer::COLUMNS,
            placeholders("?", keys)
        ),
    }
}

/// Stored transfers (and their fingerprints) for the batch's keys.
async fn existing_transfers(
    tx: &Tx,
    debits: &[&Debit],
) -> LedgerResult<HashMap<String, (Transfer, String)>> {
    let mut found = HashMap::new();
    for chunk in debits.chunks(CHUNK) {
        let sql = key_lookup_statement(tx.backend, chunk.len());
        let rows = tx
            .all(&sql, chunk.iter().map(|d| d.key.as_str().into()).collect())
            .await?;
        for row in &rows {
            let transfer = Transfer::from_row(row)?;
            found.insert(transfer.key.clone(), (transfer, col(row, "fingerprint")?));
        }
    }
    Ok(found)
}

/// The balances of the batch's wallets. On PostgreSQL the rows are locked, in account order (the
/// order every batch takes them in, so two batches cannot deadlock on them); SQLite's write
/// transaction already excludes every other writer. Also: the wallets with single debits not
/// drawn yet.
async fn lock_balances(
    tx: &Tx,
    debits: &[&Debit],
) -> LedgerResult<(HashMap<AccountId, Balance>, Vec<AccountId>)> {
    let wallets: Vec<i64> = debits
        .iter()
        .map(|d| d.wallet.0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let lock = if tx.backend == DbBackend::Postgres {
        " FOR NO KEY UPDATE"
    } else {
        ""
    };
    let mut balances = HashMap::with_capacity(wallets.len());
    let mut undrawn = Vec::new();
    for chunk in wallets.chunks(CHUNK) {
        let rows = tx
            .all(
                &format!(
                    "SELECT account_id, available, reserved, undrawn FROM ledger_balances \
                     WHERE account_id IN ({}) ORDER BY account_id{lock}",
                    placeholders("?", chunk.len())
                ),
                chunk.iter().map(|w| (*w).into()).collect(),
            )
            .await?;
        for row in &rows {
            let wallet = AccountId(col(row, "account_id")?);
            if col::<i64>(row, "undrawn")? > 0 {
                undrawn.push(wallet);
            }
            balances.insert(
                wallet,
                Balance {
                    available: col(row, "available")?,
                    reserved: col(row, "reserved")?,
                },
            );
        }
    }
    Ok((balances, undrawn))
}

async fn insert_transfers(
    tx: &Tx,
    sys: &SystemIds,
    debits: &[&Debit],
    fingerprints: &[String],
    accepted: &[usize],
    now: i64,
) -> LedgerResult<HashMap<usize, TransferId>> {
    let mut ids = HashMap::with_capacity(accepted.len());
    for chunk in accepted.chunks(CHUNK) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 10);
        let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(chunk.len());
        for &i in chunk {
            let d = debits[i];
            let kind = d.kind.transfer_kind();
            by_key.insert(d.key.as_str(), i);
            values.extend::<[Value; 10]>([
                d.key.as_str().into(),
                fingerprints[i].clone().into(),
                kind.as_str().into(),
                d.wallet.0.into(),
                sys.get(kind.system_account())?.0.into(),
                d.wallet.0.into(),
                d.amount.get().into(),
                d.reference.clone().into(),
                d.memo.clone().into(),
                now.into(),
            ]);
        }
        // ON CONFLICT: a concurrent transaction may have committed one of these keys since the
        // lookup. Then the plan is stale and the whole transaction is retried.
        let insert = format!(
            concat!(
                insert_transfer!(),
                " VALUES {} ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
            ),
            placeholders("(?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)", chunk.len())
        );
        let sql = match tx.backend {
            // The rows inserted are counted in their half-hours by the same statement: one round
            // trip, as when a trigger did it, and after the balances the batch has locked. The
            // INSERT's RETURNING list is extended with what the count needs.
            DbBackend::Postgres => {
                values.push(half_hour(now).into());
                format!(
                    concat!(
                        "WITH inserted AS ({}, wallet_account_id, kind, amount), \
                         counted AS (",
                        into_half_hours!(),
                        " SELECT wallet_account_id, ?, kind, SUM(amount), COUNT(*) \
                         FROM inserted GROUP BY wallet_account_id, kind \
                         ORDER BY wallet_account_id, kind",
                        add_to_half_hours!(),
                        ") SELECT id, idempotency_key FROM inserted"
                    ),
                    insert
                )
            }
            _ => insert,
        };
        let rows = tx.all(&sql, values).await?;
        if rows.len() != chunk.len() {
            return Err(LedgerError::Contention(
                "an idempotency key of the batch was claimed concurrently".into(),
            ));
        }
        for row in &rows {
            let key: String = col(row, "idempotency_key")?;
            let i = by_key.get(key.as_str()).copied().ok_or_else(|| {
                LedgerError::Inconsistent(format!("the batch inserted an unknown key {key:?}"))
            })?;
            ids.insert(i, TransferId(col(row, "id")?));
        }
    }
    Ok(ids)
}

/// Each wallet's total, taken in one guarded UPDATE per chunk of wallets.
async fn withdraw(tx: &Tx, debits: &[&Debit], accepted: &[usize]) -> LedgerResult<()> {
    let mut totals: BTreeMap<i64, i64> = BTreeMap::new();
    for &i in accepted {
        *totals.entry(debits[i].wallet.0).or_default() += debits[i].amount.get();
    }
    let totals: Vec<(i64, i64)> = totals.into_iter().collect();
    let short = subtract_guarded(tx, "ledger_balances", "account_id", "available", &totals).await?;
    if short > 0 {
        return Err(LedgerError::Inconsistent(format!(
            "{short} of {} wallets of a batch could not be debited",
            totals.len()
        )));
    }
    Ok(())
}

/// The accepted debits counted in their wallets' half-hour, summed per wallet and kind (a batch
/// has one `now`): a statement of its own on SQLite, where it costs no round trip over a network.
async fn count_in_half_hours(
    tx: &Tx,
    debits: &[&Debit],
    accepted: &[usize],
    now: i64,
) -> LedgerResult<()> {
    let mut sums: BTreeMap<(i64, &str), (i64, i64)> = BTreeMap::new();
    for &i in accepted {
        let d = debits[i];
        let sum = sums
            .entry((d.wallet.0, d.kind.transfer_kind().as_str()))
            .or_default();
        sum.0 += d.amount.get();
        sum.1 += 1;
    }
    let rows: Vec<_> = sums.into_iter().collect();
    for chunk in rows.chunks(CHUNK) {
        let values = chunk
            .iter()
            .flat_map(|((wallet, kind), (total, count))| {
                [
                    Value::from(*wallet),
                    half_hour(now).into(),
                    (*kind).into(),
                    (*total).into(),
                    (*count).into(),
                ]
            })
            .collect();
        tx.exec(
            &format!(
                concat!(into_half_hours!(), " VALUES {}", add_to_half_hours!()),
                placeholders("(?, ?, ?, ?, ?)", chunk.len())
            ),
            values,
        )
        .await?;
    }
    Ok(())
}
