//! Reads: balances in O(1) from the maintained row, history newest first (by time, then id)
//! with keyset pagination.

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::{
    db::{Pools, Tx, col, read_all, read_one},
    error::{LedgerError, LedgerResult},
    model::{Allocation, Balance, Lot, Reservation, Transfer},
    types::{AccountId, LotId, LotSource, ReservationId, TransferId, TransferKind, from_micros},
};

/// The largest page of history one call returns.
pub const MAX_PAGE: u32 = 500;

/// Which part of a wallet's history to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Entries per page, 1 to [`MAX_PAGE`].
    pub limit: u32,
    /// Continue after this entry (the `next` of the previous page).
    pub before: Option<TransferId>,
    /// Only these kinds; empty means all.
    pub kinds: Vec<TransferKind>,
    /// Only entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            limit: 50,
            before: None,
            kinds: Vec::new(),
            from: None,
            to: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub entries: Vec<Transfer>,
    /// Pass as `before` to read the next (older) page; `None` on the last page.
    pub next: Option<TransferId>,
}

pub(crate) async fn balance(pools: &Pools, wallet: AccountId) -> LedgerResult<Balance> {
    let row = read_one(pools, Balance::BY_WALLET, vec![wallet.0.into()])
        .await?
        .ok_or(LedgerError::UnknownAccount(wallet))?;
    Balance::from_row(&row)
}

/// The statement a history page reads with (also what `scale::explain_reads` explains).
pub(crate) fn history_statement(
    wallet: AccountId,
    query: &HistoryQuery,
) -> LedgerResult<(String, Vec<Value>)> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(LedgerError::InvalidRequest(format!(
            "a page holds 1 to {MAX_PAGE} entries, not {}",
            query.limit
        )));
    }
    let mut sql = format!(
        "SELECT {} FROM ledger_transfers WHERE wallet_account_id = ?",
        Transfer::COLUMNS
    );
    let mut values: Vec<Value> = vec![wallet.0.into()];
    // Keyset on `(created_at, id)`, the order of `ledger_transfers_wallet_time`: any page, with
    // or without a date range, is one index range (O(log n + page)). The cursor is a transfer
    // id; its instant is read beside it, so a cursor that names no transfer gives no entries.
    if let Some(before) = query.before {
        sql.push_str(
            " AND (created_at, id) < (SELECT c.created_at, c.id FROM ledger_transfers c WHERE c.id = ?)",
        );
        values.push(before.0.into());
    }
    if !query.kinds.is_empty() {
        sql.push_str(" AND kind IN (");
        sql.push_str(&vec!["?"; query.kinds.len()].join(", "));
        sql.push(')');
        values.extend(query.kinds.iter().map(|k| Value::from(k.as_str())));
    }
    if let Some(from) = query.from {
        sql.push_str(" AND created_at >= ?");
        values.push(from.timestamp_micros().into());
    }
    if let Some(to) = query.to {
        sql.push_str(" AND created_at < ?");
        values.push(to.timestamp_micros().into());
    }
    // One extra row tells whether another page exists.
    sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
    values.push(i64::from(query.limit + 1).into());
    Ok((sql, values))
}

pub(crate) async fn history(
    pools: &Pools,
    wallet: AccountId,
    query: &HistoryQuery,
) -> LedgerResult<HistoryPage> {
    let (sql, values) = history_statement(wallet, query)?;
    let rows = read_all(pools, &sql, values).await?;
    let mut entries = rows
        .iter()
        .map(Transfer::from_row)
        .collect::<LedgerResult<Vec<_>>>()?;
    let next = if entries.len() > query.limit as usize {
        entries.truncate(query.limit as usize);
        entries.last().map(|t| t.id)
    } else {
        None
    };
    Ok(HistoryPage { entries, next })
}

pub(crate) async fn transfer_by_key(pools: &Pools, key: &str) -> LedgerResult<Option<Transfer>> {
    let row = read_one(
        pools,
        &format!(
            "SELECT {} FROM ledger_transfers WHERE idempotency_key = ?",
            Transfer::COLUMNS
        ),
        vec![key.into()],
    )
    .await?;
    row.as_ref().map(Transfer::from_row).transpose()
}

pub(crate) async fn transfer(pools: &Pools, id: TransferId) -> LedgerResult<Option<Transfer>> {
    let row = read_one(
        pools,
        &format!(
            "SELECT {} FROM ledger_transfers WHERE id = ?",
            Transfer::COLUMNS
        ),
        vec![id.0.into()],
    )
    .await?;
    row.as_ref().map(Transfer::from_row).transpose()
}

pub(crate) async fn transfers_by_reference(
    pools: &Pools,
    reference: &str,
) -> LedgerResult<Vec<Transfer>> {
    let rows = read_all(
        pools,
        &format!(
            "SELECT {} FROM ledger_transfers WHERE reference = ? ORDER BY id",
            Transfer::COLUMNS
        ),
        vec![reference.into()],
    )
    .await?;
    rows.iter().map(Transfer::from_row).collect()
}

pub(crate) async fn reservation(pools: &Pools, id: ReservationId) -> LedgerResult<Reservation> {
    let row = read_one(
        pools,
        &format!(
            "SELECT {} FROM ledger_reservations WHERE id = ?",
            Reservation::COLUMNS
        ),
        vec![id.0.into()],
    )
    .await?
    .ok_or(LedgerError::UnknownReservation(id))?;
    Reservation::from_row(&row)
}

/// A wallet's lots, read in the write transaction that drew its pending debits.
const LOTS_OF_WALLET: &str = "SELECT id, wallet_account_id, transfer_id, source, \
     payment_reference, original, remaining, held, expires_at, created_at FROM ledger_lots \
     WHERE wallet_account_id = ? ORDER BY id";

pub(crate) async fn lots(tx: &Tx, wallet: AccountId) -> LedgerResult<Vec<Lot>> {
    let rows = tx.all(LOTS_OF_WALLET, vec![wallet.0.into()]).await?;
    lots_from_rows(&rows)
}

/// Lots of any wallet with credits left that expire after `after` and at or before `until`
/// (Unix microseconds), soonest first, at most `limit`: what a reminder of expiring credits
/// reads (the `ledger_lots_expiring` index). `remaining` is as of the last draw.
pub(crate) async fn lots_expiring(
    pools: &Pools,
    after: i64,
    until: i64,
    limit: u64,
) -> LedgerResult<Vec<Lot>> {
    let sql = format!(
        "SELECT id, wallet_account_id, transfer_id, source, payment_reference, original, \
         remaining, held, expires_at, created_at FROM ledger_lots \
         WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at > ? AND expires_at <= ? \
         ORDER BY expires_at, id LIMIT {limit}"
    );
    let rows = read_all(pools, &sql, vec![after.into(), until.into()]).await?;
    lots_from_rows(&rows)
}

/// A wallet's lots on the read pool, with the credits its balance row says are not drawn from
/// them yet (0: the lots are up to date).
pub(crate) async fn lots_and_undrawn(
    pools: &Pools,
    wallet: AccountId,
) -> LedgerResult<(Vec<Lot>, i64)> {
    let row = read_one(
        pools,
        "SELECT undrawn FROM ledger_balances WHERE account_id = ?",
        vec![wallet.0.into()],
    )
    .await?
    .ok_or(LedgerError::UnknownAccount(wallet))?;
    let undrawn: i64 = col(&row, "undrawn")?;
    let rows = read_all(pools, LOTS_OF_WALLET, vec![wallet.0.into()]).await?;
    Ok((lots_from_rows(&rows)?, undrawn))
}

fn lots_from_rows(rows: &[sea_orm::QueryResult]) -> LedgerResult<Vec<Lot>> {
    rows.iter()
        .map(|row| {
            Ok(Lot {
                id: LotId(col(row, "id")?),
                wallet: AccountId(col(row, "wallet_account_id")?),
                transfer: TransferId(col(row, "transfer_id")?),
                source: LotSource::parse(&col::<String>(row, "source")?)?,
                payment_reference: col(row, "payment_reference")?,
                original: col(row, "original")?,
                remaining: col(row, "remaining")?,
                held: col(row, "held")?,
                expires_at: col::<Option<i64>>(row, "expires_at")?.map(from_micros),
                created_at: from_micros(col(row, "created_at")?),
            })
        })
        .collect()
}

/// A transfer's allocations, read in the write transaction that drew its wallet's pending debits.
pub(crate) async fn allocations(tx: &Tx, transfer: TransferId) -> LedgerResult<Vec<Allocation>> {
    let rows = tx
        .all(
            "SELECT a.lot_id, a.amount, l.source, l.payment_reference \
         FROM ledger_lot_allocations a JOIN ledger_lots l ON l.id = a.lot_id \
         WHERE a.transfer_id = ? ORDER BY a.lot_id",
            vec![transfer.0.into()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Allocation {
                lot: LotId(col(row, "lot_id")?),
                source: LotSource::parse(&col::<String>(row, "source")?)?,
                payment_reference: col(row, "payment_reference")?,
                amount: col(row, "amount")?,
            })
        })
        .collect()
}

pub(crate) async fn account_net(pools: &Pools, account: AccountId) -> LedgerResult<i64> {
    let row = read_one(
        pools,
        "SELECT \
           CAST(COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE credit_account_id = ?), 0) AS BIGINT) AS credits_in, \
           CAST(COALESCE((SELECT SUM(amount) FROM ledger_transfers WHERE debit_account_id = ?), 0) AS BIGINT) AS debits_out",
        vec![account.0.into(), account.0.into()],
    )
    .await?
    .ok_or_else(|| LedgerError::Inconsistent("empty aggregate".into()))?;
    let credits_in: i64 = col(&row, "credits_in")?;
    let debits_out: i64 = col(&row, "debits_out")?;
    Ok(credits_in - debits_out)
}
