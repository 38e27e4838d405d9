//! A debit in one round trip: claim the key, withdraw from the balance, draw the first lot and
//! record the allocation, each step only if the one before it did its part. Round trips decide
//! throughput (ledger-rules §5.2), and the generic path in `ops` takes four or more.
//!
//! - PostgreSQL: one statement of data-modifying CTEs, each gated on the previous one's
//!   `RETURNING` rows.
//! - SQLite (no DML in CTEs): four statements sent as one query, which sqlx runs in a single hop
//!   to its worker thread; each is gated on `changes()`, the row count of the statement just
//!   before it. The transaction holds SQLite's write lock, so nothing runs in between.
//!
//! Every step reports a `(step, value)` row; what did not happen is finished (or undone) by the
//! caller with the generic statements.

use std::sync::LazyLock;

use sea_orm::{DbBackend, Value};

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    ops::{LOT_ORDER, insert_transfer},
    types::{AccountId, TransferId, TransferKind},
};

/// What the round trip did.
#[derive(Debug, Default)]
pub(crate) struct Trip {
    /// The transfer row it inserted; `None` when the key exists or the wallet doesn't.
    pub transfer: Option<TransferId>,
    /// The balance had enough and was reduced.
    pub withdrawn: bool,
    /// The first lot in spending order covered the amount and was drawn, with its allocation.
    pub drawn: bool,
}

/// The transfer to claim.
pub(crate) struct Claim<'a> {
    pub key: &'a str,
    pub fingerprint: &'a str,
    pub kind: TransferKind,
    pub wallet: AccountId,
    pub sink: AccountId,
    pub amount: i64,
    pub reference: &'a Option<String>,
    pub memo: &'a Option<String>,
    pub now: i64,
}

const CLAIM: &str = concat!(
    insert_transfer!(),
    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ? \
    WHERE EXISTS (SELECT 1 FROM ledger_balances WHERE account_id = ?) \
    ON CONFLICT (idempotency_key) DO NOTHING"
);

fn first_lot() -> String {
    format!(
        "SELECT l.id FROM ledger_lots l WHERE l.wallet_account_id = ? AND l.remaining > 0 \
         ORDER BY {LOT_ORDER} LIMIT 1"
    )
}

static POSTGRES_SQL: LazyLock<String> = LazyLock::new(|| {
    let first_lot = first_lot();
    format!(
        "WITH claim AS ({CLAIM} RETURNING id), \
         withdrawn AS (UPDATE ledger_balances SET available = available - ? \
           WHERE account_id = ? AND available >= ? AND EXISTS (SELECT 1 FROM claim) \
           RETURNING account_id), \
         drawn AS (UPDATE ledger_lots SET remaining = remaining - ? \
           WHERE id = ({first_lot}) AND remaining >= ? AND EXISTS (SELECT 1 FROM withdrawn) \
           RETURNING id), \
         allocated AS (INSERT INTO ledger_lot_allocations (transfer_id, lot_id, amount) \
           SELECT claim.id, drawn.id, ? FROM claim, drawn RETURNING lot_id) \
         SELECT 'claim' AS step, id AS value FROM claim \
         UNION ALL SELECT 'withdraw', account_id FROM withdrawn \
         UNION ALL SELECT 'draw', lot_id FROM allocated"
    )
});

static SQLITE_SQL: LazyLock<String> = LazyLock::new(|| {
    let first_lot = first_lot();
    format!(
        "{CLAIM} RETURNING 'claim' AS step, id AS value; \
         UPDATE ledger_balances SET available = available - ? \
           WHERE account_id = ? AND available >= ? AND changes() = 1 \
           RETURNING 'withdraw' AS step, account_id AS value; \
         INSERT INTO ledger_lot_allocations (transfer_id, lot_id, amount) \
           SELECT (SELECT id FROM ledger_transfers WHERE idempotency_key = ?), l.id, ? \
           FROM ledger_lots l WHERE changes() = 1 AND l.id = ({first_lot}) AND l.remaining >= ? \
           RETURNING 'allocate' AS step, lot_id AS value; \
         UPDATE ledger_lots SET remaining = remaining - ? \
           WHERE changes() = 1 AND remaining >= ? AND id = \
             (SELECT lot_id FROM ledger_lot_allocations WHERE rowid = last_insert_rowid()) \
           RETURNING 'draw' AS step, id AS value"
    )
});

fn claim_values(c: &Claim<'_>) -> Vec<Value> {
    vec![
        c.key.into(),
        c.fingerprint.into(),
        c.kind.as_str().into(),
        c.wallet.0.into(),
        c.sink.0.into(),
        c.wallet.0.into(),
        c.amount.into(),
        c.reference.clone().into(),
        c.memo.clone().into(),
        c.now.into(),
        c.wallet.0.into(),
    ]
}

/// Runs the debit's round trip. Nothing it did needs undoing unless the caller refuses the debit
/// (then it removes the claimed transfer, the only thing done).
pub(crate) async fn debit(tx: &Tx, c: &Claim<'_>) -> LedgerResult<Trip> {
    let (w, a) = (c.wallet.0, c.amount);
    let mut values = claim_values(c);
    let sql = match tx.backend {
        DbBackend::Postgres => {
            // withdrawn (amount, wallet, amount), drawn (amount, wallet, amount), allocated.
            values.extend::<[Value; 7]>([
                a.into(),
                w.into(),
                a.into(),
                a.into(),
                w.into(),
                a.into(),
                a.into(),
            ]);
            &*POSTGRES_SQL
        }
        _ => {
            // withdraw (amount, wallet, amount), allocate (key, amount, wallet, amount),
            // draw (amount, amount).
            values.extend::<[Value; 9]>([
                a.into(),
                w.into(),
                a.into(),
                c.key.into(),
                a.into(),
                w.into(),
                a.into(),
                a.into(),
                a.into(),
            ]);
            &*SQLITE_SQL
        }
    };
    let rows = tx.all(sql, values).await?;
    let mut trip = Trip::default();
    let mut allocated = false;
    for row in &rows {
        let step: String = col(row, "step")?;
        let value: i64 = col(row, "value")?;
        match step.as_str() {
            "claim" => trip.transfer = Some(TransferId(value)),
            "withdraw" => trip.withdrawn = true,
            "allocate" => allocated = true,
            "draw" => trip.drawn = true,
            other => {
                return Err(LedgerError::Inconsistent(format!(
                    "unexpected step {other:?} in a debit"
                )));
            }
        }
    }
    if tx.backend == DbBackend::Sqlite && allocated != trip.drawn {
        return Err(LedgerError::Inconsistent(format!(
            "debit {}: the lot allocation and the lot disagree",
            c.key
        )));
    }
    Ok(trip)
}
