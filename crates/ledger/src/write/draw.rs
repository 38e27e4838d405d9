//! Lots are drawn after the debit, not during it. A single plain debit (usage or a manual
//! adjustment: `Ledger::debit`) writes its transfer and takes the credits off the balance row,
//! where it counts them as `undrawn`; which lots they came from is settled later, oldest debit
//! first, in spending order: before anything that reads or changes lots (a credit, a reservation,
//! a settle or release, an expiry, a refund's take-back, the `lots` and `allocations` reads), and
//! by the housekeeping sweep. A debit then writes two rows instead of four: the rows and index
//! entries per debit, not the statements, are what bounds PostgreSQL (docs/benchmarks.md). A batch of
//! debits draws at once instead (`allocate`, set-based), after its wallets' undrawn ones.
//!
//! Invariants, per wallet: Σ lots.remaining = available + undrawn, and the plain debits without
//! allocations sum to `undrawn` (the audit checks both). Drawing moves no credits: balances and
//! transfers stay as they are; only lots and allocations catch up.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::DbBackend;

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    types::AccountId,
    write::{
        claims::record_allocations,
        sql::{CHUNK, LOT_ORDER, placeholders, subtract_guarded},
    },
};

/// Transfers read per page while looking for a wallet's undrawn debits.
const PAGE: i64 = 256;

/// The transfers that draw after the fact: debits out of a wallet that no reservation paid for.
/// (Settles draw from the lots their reservation held; expiries and take-backs name their lots.)
pub(crate) const PLAIN_DEBIT: &str = "t.kind IN ('usage_email', 'usage_sms', 'adjustment_debit') \
    AND t.reservation_id IS NULL AND t.debit_account_id = t.wallet_account_id";

/// Settles the undrawn debits of `wallets`. On PostgreSQL their balance rows are locked first (in
/// account order, like every batch), so no debit of theirs is in flight while lots are read. The
/// lock is `FOR NO KEY UPDATE`, the one an `UPDATE` takes: it does not conflict with the key-share
/// locks that inserts referencing the row (transfers, reservations) hold, which `FOR UPDATE`
/// would, deadlocking two such transactions that both go on to lock the row.
pub(crate) async fn draw_pending(tx: &Tx, wallets: &[AccountId]) -> LedgerResult<()> {
    let wallets: Vec<i64> = wallets
        .iter()
        .map(|w| w.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lock = if tx.backend == DbBackend::Postgres {
        " FOR NO KEY UPDATE"
    } else {
        ""
    };
    let mut undrawn: BTreeMap<i64, i64> = BTreeMap::new();
    for chunk in wallets.chunks(CHUNK) {
        let rows = tx
            .all(
                &format!(
                    "SELECT account_id, undrawn FROM ledger_balances WHERE account_id IN ({}) \
                     ORDER BY account_id{lock}",
                    placeholders("?", chunk.len())
                ),
                chunk.iter().map(|w| (*w).into()).collect(),
            )
            .await?;
        for row in &rows {
            let amount: i64 = col(row, "undrawn")?;
            if amount > 0 {
                undrawn.insert(col(row, "account_id")?, amount);
            }
        }
    }
    if undrawn.is_empty() {
        return Ok(());
    }
    let mut pending: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for (&wallet, &amount) in &undrawn {
        pending.insert(wallet, undrawn_debits(tx, wallet, amount).await?);
    }
    allocate(tx, &pending).await?;
    let totals: Vec<(i64, i64)> = undrawn.into_iter().collect();
    if subtract_guarded(tx, "ledger_balances", "account_id", "undrawn", &totals).await? > 0 {
        return Err(LedgerError::Inconsistent(
            "a wallet's undrawn credits changed while they were drawn".into(),
        ));
    }
    Ok(())
}

/// Every wallet with undrawn debits, up to `limit`, settled. Returns how many wallets.
pub(crate) async fn draw_some(tx: &Tx, limit: u64) -> LedgerResult<u64> {
    let rows = tx
        .all(
            "SELECT account_id FROM ledger_balances WHERE undrawn > 0 ORDER BY account_id LIMIT ?",
            vec![(limit as i64).into()],
        )
        .await?;
    let wallets = rows
        .iter()
        .map(|row| col(row, "account_id").map(AccountId))
        .collect::<LedgerResult<Vec<_>>>()?;
    draw_pending(tx, &wallets).await?;
    Ok(wallets.len() as u64)
}

/// The wallet's plain debits that have no allocations yet, oldest first: they sum to `undrawn`.
/// They are the newest of its history (a debit that committed late may sit a little further
/// back), so the search reads the history newest first and stops when the sum is reached.
async fn undrawn_debits(tx: &Tx, wallet: i64, undrawn: i64) -> LedgerResult<Vec<(i64, i64)>> {
    let mut found: Vec<(i64, i64)> = Vec::new();
    let mut sum = 0;
    let mut before = i64::MAX;
    while sum < undrawn {
        let rows = tx
            .all(
                &format!(
                    "SELECT t.id, t.amount, \
                       CAST(CASE WHEN {PLAIN_DEBIT} AND NOT EXISTS \
                         (SELECT 1 FROM ledger_lot_allocations a WHERE a.transfer_id = t.id) \
                       THEN 1 ELSE 0 END AS BIGINT) AS undrawn \
                     FROM ledger_transfers t WHERE t.wallet_account_id = ? AND t.id < ? \
                     ORDER BY t.id DESC LIMIT ?"
                ),
                vec![wallet.into(), before.into(), PAGE.into()],
            )
            .await?;
        for row in &rows {
            let id: i64 = col(row, "id")?;
            before = id;
            if col::<i64>(row, "undrawn")? == 1 {
                let amount: i64 = col(row, "amount")?;
                found.push((id, amount));
                sum += amount;
                if sum >= undrawn {
                    break;
                }
            }
        }
        if (rows.len() as i64) < PAGE && sum < undrawn {
            break;
        }
    }
    if sum != undrawn {
        return Err(LedgerError::Inconsistent(format!(
            "wallet {wallet}: {undrawn} credits undrawn but its undrawn debits sum to {sum}"
        )));
    }
    found.reverse();
    Ok(found)
}

/// Lots read per wallet at first: nearly always enough to cover what a batch draws.
const FIRST_LOTS: usize = 16;
/// Wallets per statement when reading their first lots: each is a branch of a `UNION ALL`.
const WALLETS_PER_UNION: usize = 64;

/// The open lots of each `(wallet, need)` in spending order, as `(lot, remaining)`: at least as
/// many as cover the need (all of them if they don't). Each wallet's first lots come from the
/// spending-order index and stop there, so a wallet with a thousand open lots costs what one
/// with a few does; only a need that outruns them reads the rest.
pub(crate) async fn spending_lots(
    tx: &Tx,
    needs: &[(i64, i64)],
) -> LedgerResult<HashMap<i64, Vec<(i64, i64)>>> {
    let mut lots: HashMap<i64, Vec<(i64, i64)>> = HashMap::with_capacity(needs.len());
    for chunk in needs.chunks(WALLETS_PER_UNION) {
        let first = format!(
            "SELECT * FROM (SELECT l.id, l.wallet_account_id, l.remaining, l.expires_at, l.source \
             FROM ledger_lots l WHERE l.wallet_account_id = ? AND l.remaining > 0 \
             ORDER BY {LOT_ORDER} LIMIT {FIRST_LOTS}) AS w"
        );
        let branches: Vec<String> = (0..chunk.len()).map(|i| format!("{first}{i}")).collect();
        let rows = tx
            .all(
                &format!(
                    "SELECT l.id, l.wallet_account_id, l.remaining FROM ({}) l \
                     ORDER BY l.wallet_account_id, {LOT_ORDER}",
                    branches.join(" UNION ALL ")
                ),
                chunk.iter().map(|(wallet, _)| (*wallet).into()).collect(),
            )
            .await?;
        add_lots(&mut lots, &rows)?;
    }
    let short: Vec<i64> = needs
        .iter()
        .filter(|(wallet, need)| {
            let found = lots.get(wallet).map(Vec::as_slice).unwrap_or_default();
            found.len() == FIRST_LOTS && found.iter().map(|(_, r)| r).sum::<i64>() < *need
        })
        .map(|(wallet, _)| *wallet)
        .collect();
    for chunk in short.chunks(CHUNK) {
        let rows = tx
            .all(
                &format!(
                    "SELECT l.id, l.wallet_account_id, l.remaining FROM ledger_lots l \
                     WHERE l.wallet_account_id IN ({}) AND l.remaining > 0 \
                     ORDER BY l.wallet_account_id, {LOT_ORDER}",
                    placeholders("?", chunk.len())
                ),
                chunk.iter().map(|w| (*w).into()).collect(),
            )
            .await?;
        for wallet in chunk {
            lots.remove(wallet);
        }
        add_lots(&mut lots, &rows)?;
    }
    Ok(lots)
}

/// Adds `(id, wallet_account_id, remaining)` rows to each wallet's lots, in the rows' order.
fn add_lots(
    lots: &mut HashMap<i64, Vec<(i64, i64)>>,
    rows: &[sea_orm::QueryResult],
) -> LedgerResult<()> {
    for row in rows {
        lots.entry(col(row, "wallet_account_id")?)
            .or_default()
            .push((col(row, "id")?, col(row, "remaining")?));
    }
    Ok(())
}

/// Draws each wallet's `(transfer, amount)` debits, in the order given, from its lots in
/// spending order: the lots lose `remaining`, the allocations are recorded.
pub(crate) async fn allocate(tx: &Tx, debits: &BTreeMap<i64, Vec<(i64, i64)>>) -> LedgerResult<()> {
    let needs: Vec<(i64, i64)> = debits
        .iter()
        .map(|(wallet, items)| (*wallet, items.iter().map(|(_, amount)| amount).sum()))
        .collect();
    let mut lots = spending_lots(tx, &needs).await?;
    let mut taken_from_lot: Vec<(i64, i64)> = Vec::new();
    let mut allocations: Vec<(i64, i64, i64)> = Vec::new();
    for (wallet, items) in debits {
        let wallet_lots = lots.remove(wallet).unwrap_or_default();
        let mut taken = vec![0i64; wallet_lots.len()];
        let mut k = 0;
        for &(transfer, amount) in items {
            let mut need = amount;
            while need > 0 {
                let Some(&(lot, remaining)) = wallet_lots.get(k) else {
                    return Err(LedgerError::Inconsistent(format!(
                        "wallet {wallet}: lots hold less than its balance"
                    )));
                };
                let take = (remaining - taken[k]).min(need);
                if take == 0 {
                    k += 1;
                    continue;
                }
                taken[k] += take;
                need -= take;
                allocations.push((transfer, lot, take));
            }
        }
        taken_from_lot.extend(
            wallet_lots
                .iter()
                .zip(taken)
                .filter(|(_, t)| *t > 0)
                .map(|((lot, _), t)| (*lot, t)),
        );
    }
    if subtract_guarded(tx, "ledger_lots", "id", "remaining", &taken_from_lot).await? > 0 {
        return Err(LedgerError::Contention(
            "a lot changed while debits were drawn from it".into(),
        ));
    }
    record_allocations(tx, &allocations).await
}
