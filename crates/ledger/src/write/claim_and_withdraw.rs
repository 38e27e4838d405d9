//! A debit's claim and withdrawal in one round trip: claim the key, then withdraw from the
//! balance (counting the credits as undrawn: the lots are drawn later, see `draw`) only if the
//! claim inserted a row. Round trips decide a single debit's throughput (docs/benchmarks.md), and
//! the generic statements take two or more.
//!
//! - PostgreSQL: one statement, the withdrawal a data-modifying CTE gated on the claim's
//!   `RETURNING` row, and the half-hour rollup's upsert gated on the withdrawal's (so the wallet's
//!   balance row is locked before its half-hour row, as in every path: `write::sql`).
//! - SQLite (no DML in CTEs): three statements sent as one query, which sqlx runs in a single hop
//!   to its worker thread; each is gated on `changes()`, the row count of the one before. The
//!   transaction holds SQLite's write lock, so nothing runs in between.
//!
//! A claim that was not withdrawn is not counted in the rollup, so its undoing
//! (`claims::unclaim_uncounted`) leaves the rollup alone.
//!
//! Every step reports a `(step, value)` row; a claim without a withdrawal is undone by the caller
//! (a refusal).

use std::sync::LazyLock;

use sea_orm::{DbBackend, Value};

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    types::{AccountId, TransferId, TransferKind},
    write::sql::{add_to_half_hours, half_hour, insert_transfer, into_half_hours},
};

/// What the round trip did.
#[derive(Debug, Default)]
pub(crate) struct Trip {
    /// The transfer row it inserted; `None` when the key exists or the wallet doesn't.
    pub transfer: Option<TransferId>,
    /// The balance had enough and was reduced.
    pub withdrawn: bool,
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

const INTO_HALF_HOURS: &str = into_half_hours!();
const ADD_TO_HALF_HOURS: &str = add_to_half_hours!();

static POSTGRES_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH claim AS ({CLAIM} RETURNING id), \
         withdrawn AS (UPDATE ledger_balances SET available = available - ?, undrawn = undrawn + ? \
           WHERE account_id = ? AND available >= ? AND EXISTS (SELECT 1 FROM claim) \
           RETURNING account_id), \
         counted AS ({INTO_HALF_HOURS} SELECT ?, ?, ?, ?, 1 FROM withdrawn{ADD_TO_HALF_HOURS}) \
         SELECT 'claim' AS step, id AS value FROM claim \
         UNION ALL SELECT 'withdraw', account_id FROM withdrawn"
    )
});

static SQLITE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{CLAIM} RETURNING 'claim' AS step, id AS value; \
         UPDATE ledger_balances SET available = available - ?, undrawn = undrawn + ? \
           WHERE account_id = ? AND available >= ? AND changes() = 1 \
           RETURNING 'withdraw' AS step, account_id AS value; \
         {INTO_HALF_HOURS} SELECT ?, ?, ?, ?, 1 WHERE changes() = 1{ADD_TO_HALF_HOURS}"
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
    // The withdrawal: (amount, amount, wallet, amount), then the half-hour it is counted in,
    // only once withdrawn: (wallet, half-hour, kind, amount). The same on both backends.
    values.extend::<[Value; 8]>([
        a.into(),
        a.into(),
        w.into(),
        a.into(),
        w.into(),
        half_hour(c.now).into(),
        c.kind.as_str().into(),
        a.into(),
    ]);
    let sql = match tx.backend {
        DbBackend::Postgres => &*POSTGRES_SQL,
        _ => &*SQLITE_SQL,
    };
    let rows = tx.all(sql, values).await?;
    let mut trip = Trip::default();
    for row in &rows {
        let step: String = col(row, "step")?;
        let value: i64 = col(row, "value")?;
        match step.as_str() {
            "claim" => trip.transfer = Some(TransferId(value)),
            "withdraw" => trip.withdrawn = true,
            other => {
                return Err(LedgerError::Inconsistent(format!(
                    "unexpected step {other:?} in a debit"
                )));
            }
        }
    }
    Ok(trip)
}
