//! The Kalp Credits ledger: a double-entry ledger of integer credits.
//!
//! Customer wallets hold credits; system accounts (Razorpay purchases, email and SMS usage,
//! promotional grants, manual adjustments, expiry) are the other side of every transfer. Every
//! movement is an immutable transfer with a unique idempotency key; a wallet never goes below
//! zero (a conditional UPDATE, with a CHECK constraint behind it). Credits arrive in lots that
//! debits draw from, soonest expiry first. See `docs/architecture.md` for the invariants.
//!
//! No HTTP and no Razorpay types here: callers pass plain references (a payment id is a string).
//!
//! This file is the public API: every method of [`Ledger`], each a short transaction around one
//! function of the write path (`write`) or the read path (`read`). It stays one file, longer than
//! the others, so that the whole surface reads in one place.

mod audit;
mod db;
mod error;
mod migration;
mod model;
mod read;
mod scale;
mod totals;
mod transactions;
mod types;
mod write;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::DbBackend;

pub use audit::AuditReport;
pub use db::{ConnectConfig, PoolUse, redact_url, stmt as statement};
pub use error::{LedgerError, LedgerResult, is_transient_db_error};
pub use migration::schema_statements;
pub use model::{
    Allocation, Balance, Credit, CreditKind, Debit, DebitKind, Lot, Op, OpOutcome, Receipt,
    Reservation, ReservationStatus, Reserve, Settle, TakeBack, Transfer,
};
pub use read::{HistoryPage, HistoryQuery, MAX_PAGE};
pub use scale::{Preloaded, ScaleShape};
pub use types::{
    AccountId, Credits, IdempotencyKey, LotId, LotSource, MAX_AMOUNT, MAX_KEY_LEN, ReservationId,
    SystemAccount, TransferId, TransferKind,
};

pub use transactions::{LedgerAutocommit, LedgerReads, LedgerTx, LedgerWrite, Retryable, TxFuture};

use crate::{
    db::{Pools, Tx, col},
    transactions::{
        IN_TRANSACTION, InjectedFaults, MAX_ATTEMPTS, backoff, now_micros, refuse_nested,
    },
    write::{
        apply::{apply, is_refusal},
        batch,
        claims::SystemIds,
        credit, debit, draw, lots, reservations,
    },
};

/// How many lots or reservations one sweep transaction handles.
const SWEEP_BATCH: u64 = 500;

/// Runs `$body` in a write transaction, retrying the whole transaction on transient failures.
/// Business refusals roll back and return at once.
macro_rules! in_write_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        refuse_nested()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let $tx = Tx::begin(&$self.pools).await?;
            let result = $body;
            let result = match result {
                Ok(value) => match $self.faults.take() {
                    Some(injected) => {
                        let _ = $tx.txn.rollback().await;
                        Err(injected)
                    }
                    None => $tx.commit().await.map(|_| value),
                },
                Err(e) => {
                    let _ = $tx.txn.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "retrying ledger transaction");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => break other,
            }
        }
    }};
}

/// A handle to the ledger. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Ledger {
    pools: Pools,
    system: SystemIds,
    faults: InjectedFaults,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.pools.backend)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Opens the database, applies pending migrations and loads the system accounts.
    pub async fn connect(config: &ConnectConfig) -> LedgerResult<Ledger> {
        let pools = db::connect(config).await?;
        migration::migrate(&pools).await?;
        let rows = db::read_all(
            &pools,
            "SELECT id, code FROM ledger_accounts WHERE kind = 'system'",
            vec![],
        )
        .await?;
        let mut map = HashMap::new();
        for row in &rows {
            let code: String = col(row, "code")?;
            if let Some(account) = SystemAccount::ALL.into_iter().find(|a| a.code() == code) {
                map.insert(account, AccountId(col(row, "id")?));
            }
        }
        let system = SystemIds::new(map);
        for account in SystemAccount::ALL {
            system.get(account)?;
        }
        Ok(Ledger {
            pools,
            system,
            faults: InjectedFaults::default(),
        })
    }

    /// Applies pending migrations without opening a ledger (the `migrate` command).
    pub async fn migrate(config: &ConnectConfig) -> LedgerResult<Vec<String>> {
        let pools = db::connect(config).await?;
        migration::migrate(&pools).await?;
        migration::applied(&pools).await
    }

    /// Applies another component's migrations, for its tables beside the ledger's in the same
    /// database (their migration table must be their own). `lock_key` is the PostgreSQL advisory
    /// lock that makes concurrent starts wait for one another.
    pub async fn migrate_beside<M: sea_orm_migration::MigratorTrait>(
        &self,
        lock_key: i64,
    ) -> LedgerResult<()> {
        refuse_nested()?;
        migration::run::<M>(&self.pools, lock_key).await
    }

    pub fn backend(&self) -> DbBackend {
        self.pools.backend
    }

    /// Reads on the ledger's read connections (a pool beside the single writer on SQLite, in
    /// WAL mode and read-only; the shared pool on PostgreSQL), for the tables of other components
    /// in the same database. Writes go through [`Ledger::transact`] only.
    pub fn reads(&self) -> LedgerReads {
        LedgerReads::new(self.pools.read.clone())
    }

    pub fn system_account(&self, account: SystemAccount) -> LedgerResult<AccountId> {
        self.system.get(account)
    }

    /// The wallet of a customer, created (with a zero balance) on first use. `owner` is the
    /// caller's stable customer reference, e.g. `user:42` (printable ASCII, no spaces).
    pub async fn open_wallet(&self, owner: &str) -> LedgerResult<AccountId> {
        if owner.is_empty() || owner.len() > 200 || !owner.chars().all(|c| c.is_ascii_graphic()) {
            return Err(LedgerError::InvalidRequest(format!(
                "{owner:?} is not a valid wallet owner"
            )));
        }
        let code = format!("wallet:{owner}");
        in_write_tx!(self, |tx| {
            async {
                tx.exec(
                    "INSERT INTO ledger_accounts (code, kind, created_at) VALUES (?, 'wallet', ?) \
                     ON CONFLICT (code) DO NOTHING",
                    vec![code.clone().into(), now_micros().into()],
                )
                .await?;
                let row = tx
                    .one(
                        "SELECT id FROM ledger_accounts WHERE code = ?",
                        vec![code.clone().into()],
                    )
                    .await?
                    .ok_or_else(|| LedgerError::Inconsistent(format!("{code} vanished")))?;
                let id = AccountId(col(&row, "id")?);
                tx.exec(
                    "INSERT INTO ledger_balances (account_id, available, reserved) \
                     VALUES (?, 0, 0) ON CONFLICT (account_id) DO NOTHING",
                    vec![id.0.into()],
                )
                .await?;
                Ok::<_, LedgerError>(id)
            }
            .await
        })
    }

    /// The wallet of `owner`, if it was ever opened.
    pub async fn find_wallet(&self, owner: &str) -> LedgerResult<Option<AccountId>> {
        let row = db::read_one(
            &self.pools,
            "SELECT id FROM ledger_accounts WHERE code = ? AND kind = 'wallet'",
            vec![format!("wallet:{owner}").into()],
        )
        .await?;
        row.map(|r| col::<i64>(&r, "id").map(AccountId)).transpose()
    }

    /// Records credits entering a wallet. Repeating the key returns the original transfer.
    pub async fn credit(&self, req: Credit) -> LedgerResult<Receipt> {
        in_write_tx!(self, |tx| credit::credit(
            &tx,
            &self.system,
            &req,
            now_micros()
        )
        .await)
    }

    /// Takes credits out of a wallet, or refuses with `InsufficientCredits`.
    pub async fn debit(&self, req: Debit) -> LedgerResult<Receipt> {
        in_write_tx!(self, |tx| debit::debit(
            &tx,
            &self.system,
            &req,
            now_micros()
        )
        .await)
    }

    /// Holds credits until settled, released or expired.
    pub async fn reserve(&self, req: Reserve) -> LedgerResult<Reservation> {
        in_write_tx!(self, |tx| reservations::reserve(&tx, &req, now_micros())
            .await)
    }

    /// Spends `used` credits of a pending reservation and returns the rest to the wallet.
    pub async fn settle(&self, req: Settle) -> LedgerResult<Reservation> {
        in_write_tx!(self, |tx| reservations::settle(
            &tx,
            &self.system,
            &req,
            now_micros()
        )
        .await)
    }

    /// Returns all credits of a pending reservation to the wallet.
    pub async fn release(&self, id: ReservationId) -> LedgerResult<Reservation> {
        in_write_tx!(self, |tx| {
            reservations::finish_reservation(
                &tx,
                &self.system,
                id,
                0,
                ReservationStatus::Released,
                now_micros(),
            )
            .await
        })
    }

    /// Ends every pending reservation whose time is up at `as_of`. Returns how many.
    pub async fn expire_reservations(&self, as_of: DateTime<Utc>) -> LedgerResult<u64> {
        let mut total = 0;
        loop {
            let n = in_write_tx!(self, |tx| {
                reservations::expire_reservations(
                    &tx,
                    &self.system,
                    as_of.timestamp_micros(),
                    SWEEP_BATCH,
                )
                .await
            })?;
            total += n;
            if n < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }

    /// Moves what is left of every lot past its expiry at `as_of` to the expiry account.
    pub async fn expire_lots(&self, as_of: DateTime<Utc>) -> LedgerResult<u64> {
        let mut total = 0;
        loop {
            let n = in_write_tx!(self, |tx| {
                lots::expire_lots(&tx, &self.system, as_of.timestamp_micros(), SWEEP_BATCH).await
            })?;
            total += n;
            if n < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }

    /// Draws every wallet's pending debits from its lots (see `draw`); the housekeeping sweep.
    /// Returns how many wallets it drew for.
    pub async fn draw_pending(&self) -> LedgerResult<u64> {
        let mut total = 0;
        loop {
            let n = in_write_tx!(self, |tx| draw::draw_some(&tx, SWEEP_BATCH).await)?;
            total += n;
            if n < SWEEP_BATCH {
                return Ok(total);
            }
        }
    }

    /// Runs many operations in one database transaction (one commit, one fsync). Each item gets
    /// its own outcome: a refused item (insufficient credits, conflict, unknown account) changes
    /// nothing and the others still commit. A storage failure fails the whole batch, and nothing
    /// of it is committed. Items are applied wallet by wallet (locks taken in a fixed order), so
    /// two items for one wallet see each other in the order given.
    pub async fn submit(&self, ops: &[Op]) -> LedgerResult<Vec<LedgerResult<OpOutcome>>> {
        self.run_batch(ops, false).await
    }

    /// Runs many operations in one transaction, all or nothing: if any item is refused, none
    /// is committed and the answer is `BatchItemRefused` naming the first refused item.
    pub async fn submit_all_or_nothing(&self, ops: &[Op]) -> LedgerResult<Vec<OpOutcome>> {
        self.run_batch(ops, true)
            .await?
            .into_iter()
            .collect::<LedgerResult<Vec<_>>>()
    }

    async fn run_batch(
        &self,
        ops: &[Op],
        atomic: bool,
    ) -> LedgerResult<Vec<LedgerResult<OpOutcome>>> {
        let debits: Vec<&Debit> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Debit(d) => Some(d),
                _ => None,
            })
            .collect();
        if debits.len() == ops.len() && batch::keys_are_distinct(&debits) {
            return self.run_debit_batch(&debits, atomic).await;
        }
        let mut order: Vec<usize> = (0..ops.len()).collect();
        order.sort_by_key(|&i| match &ops[i] {
            Op::Credit(c) => (0, c.wallet.0),
            Op::Debit(d) => (0, d.wallet.0),
            Op::Reserve(r) => (0, r.wallet.0),
            Op::Settle(_) | Op::Release(_) => (1, 0),
        });
        in_write_tx!(self, |tx| {
            async {
                let now = now_micros();
                let mut outcomes: Vec<Option<LedgerResult<OpOutcome>>> =
                    (0..ops.len()).map(|_| None).collect();
                for &i in &order {
                    match apply(&tx, &self.system, &ops[i], now).await {
                        Err(e) if !is_refusal(&e) => return Err(e),
                        Err(e) if atomic => {
                            return Err(LedgerError::BatchItemRefused {
                                index: i,
                                source: Box::new(e),
                            });
                        }
                        other => outcomes[i] = Some(other),
                    }
                }
                Ok(outcomes
                    .into_iter()
                    .map(|o| {
                        o.unwrap_or_else(|| {
                            Err(LedgerError::Inconsistent("batch item was skipped".into()))
                        })
                    })
                    .collect())
            }
            .await
        })
    }

    /// A batch of plain debits, set-based (see `batch`): the same answers as item by item.
    async fn run_debit_batch(
        &self,
        debits: &[&Debit],
        atomic: bool,
    ) -> LedgerResult<Vec<LedgerResult<OpOutcome>>> {
        in_write_tx!(self, |tx| {
            async {
                let decided = batch::debits(&tx, &self.system, debits, now_micros()).await?;
                if atomic {
                    // The first refusal in the order items are applied: by wallet, then as given.
                    let refused = decided
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| d.is_err())
                        .min_by_key(|(i, _)| (debits[*i].wallet.0, *i));
                    if let Some((index, Err(e))) = refused {
                        return Err(LedgerError::BatchItemRefused {
                            index,
                            source: Box::new(e.clone()),
                        });
                    }
                }
                Ok(decided
                    .into_iter()
                    .map(|d| d.map(|(receipt, _)| OpOutcome::Transfer(receipt)))
                    .collect())
            }
            .await
        })
    }

    /// Runs `body` in one write transaction in which several ledger operations, and the
    /// caller's own statements on the same connection, commit or roll back together. A
    /// transient failure (deadlock, serialization failure, SQLite BUSY) anywhere in it, or at
    /// the commit, rolls it back and runs `body` again from the start, at most 5 times with
    /// jittered backoff; any other error rolls back and is returned. `body` must therefore do
    /// nothing outside the transaction that it cannot repeat.
    ///
    /// ```ignore
    /// ledger.transact(|tx| Box::pin(async move { tx.credit(&request).await })).await
    /// ```
    pub async fn transact<'l, T, E, F>(&'l self, mut body: F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t LedgerTx<'l>) -> TxFuture<'t, T, E>,
        E: From<LedgerError> + Retryable,
    {
        refuse_nested()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match Tx::begin(&self.pools).await {
                Ok(tx) => {
                    let tx = LedgerTx::new(tx, &self.system);
                    match IN_TRANSACTION.scope((), body(&tx)).await {
                        Ok(value) => match self.faults.take() {
                            Some(injected) => {
                                tx.rollback().await;
                                Err(E::from(injected))
                            }
                            None => tx.commit().await.map(|_| value).map_err(E::from),
                        },
                        Err(e) => {
                            tx.rollback().await;
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(E::from(e)),
            };
            match result {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "retrying a transaction after a transient failure");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Runs `body` with the writer for exactly one statement that commits by itself: a
    /// component's single-statement write (an insert, a guarded update), without the `BEGIN` and
    /// `COMMIT` round trips of [`Ledger::transact`] while SQLite's single writer is held. A second
    /// statement in `body` is refused. Transient failures (BUSY, a deadlock) run `body` again,
    /// like `transact`; so does an injected failure (see
    /// [`Ledger::inject_transient_failures`]), before the statement runs.
    pub async fn autocommit<'l, T, E, F>(&'l self, mut body: F) -> Result<T, E>
    where
        F: for<'w> FnMut(&'w LedgerAutocommit<'l>) -> TxFuture<'w, T, E>,
        E: From<LedgerError> + Retryable,
    {
        refuse_nested()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.faults.take() {
                Some(injected) => Err(E::from(injected)),
                None => {
                    let writer = LedgerAutocommit::new(&self.pools.write);
                    IN_TRANSACTION.scope((), body(&writer)).await
                }
            };
            match result {
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, "retrying a write after a transient failure");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Makes the next `n` commits (of [`Ledger::transact`] and of every ledger operation) fail
    /// with a transient error instead, rolled back: each caller must retry them. For tests and
    /// failure drills; nothing injects failures unless this is called.
    pub fn inject_transient_failures(&self, n: u32) {
        self.faults.set(n);
    }

    pub async fn balance(&self, wallet: AccountId) -> LedgerResult<Balance> {
        read::balance(&self.pools, wallet).await
    }

    pub async fn history(
        &self,
        wallet: AccountId,
        query: &HistoryQuery,
    ) -> LedgerResult<HistoryPage> {
        read::history(&self.pools, wallet, query).await
    }

    pub async fn transfer_by_key(&self, key: &str) -> LedgerResult<Option<Transfer>> {
        read::transfer_by_key(&self.pools, key).await
    }

    pub async fn transfer(&self, id: TransferId) -> LedgerResult<Option<Transfer>> {
        read::transfer(&self.pools, id).await
    }

    pub async fn transfers_by_reference(&self, reference: &str) -> LedgerResult<Vec<Transfer>> {
        read::transfers_by_reference(&self.pools, reference).await
    }

    pub async fn reservation(&self, id: ReservationId) -> LedgerResult<Reservation> {
        read::reservation(&self.pools, id).await
    }

    /// A wallet's lots, after drawing its pending debits from them (a write: see `draw`).
    pub async fn lots(&self, wallet: AccountId) -> LedgerResult<Vec<Lot>> {
        in_write_tx!(self, |tx| {
            async {
                draw::draw_pending(&tx, &[wallet]).await?;
                read::lots(&tx, wallet).await
            }
            .await
        })
    }

    /// A wallet's lots, read without a write when they are up to date (no debit waits to be
    /// drawn from them); otherwise as [`Ledger::lots`], after drawing.
    pub async fn current_lots(&self, wallet: AccountId) -> LedgerResult<Vec<Lot>> {
        let (lots, undrawn) = read::lots_and_undrawn(&self.pools, wallet).await?;
        if undrawn == 0 {
            return Ok(lots);
        }
        self.lots(wallet).await
    }

    /// Preloads a ledger with years of data in a few set-based statements, for benchmarks at
    /// scale (see `scale`). Into an empty ledger only.
    pub async fn preload_scale(&self, shape: ScaleShape) -> LedgerResult<Preloaded> {
        scale::preload(&self.pools, shape).await
    }

    /// The database's plan for each per-page read of `wallet` (balance, the history `pages`,
    /// the Dashboard's days since `days_since`) and for a charge batch's key lookup, as `(what,
    /// statement and plan)`: how `cargo xtask bench --scale` shows that each read fits an index.
    pub async fn explain_reads(
        &self,
        wallet: AccountId,
        pages: &[(String, HistoryQuery)],
        days_since: DateTime<Utc>,
    ) -> LedgerResult<Vec<(String, String)>> {
        scale::explain_reads(&self.pools, wallet, pages, days_since).await
    }

    /// Lots of every wallet with credits left that expire in `(after, until]`, soonest first, at
    /// most `limit` (read without a write: `remaining` is as of the last draw).
    pub async fn lots_expiring(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> LedgerResult<Vec<Lot>> {
        read::lots_expiring(
            &self.pools,
            after.timestamp_micros(),
            until.timestamp_micros(),
            limit,
        )
        .await
    }

    /// Which lots paid for a transfer, after drawing its wallet's pending debits (a write).
    pub async fn allocations(&self, transfer: TransferId) -> LedgerResult<Vec<Allocation>> {
        in_write_tx!(self, |tx| {
            async {
                let wallet = tx
                    .one(
                        "SELECT wallet_account_id FROM ledger_transfers WHERE id = ?",
                        vec![transfer.0.into()],
                    )
                    .await?;
                if let Some(row) = wallet {
                    draw::draw_pending(&tx, &[AccountId(col(&row, "wallet_account_id")?)]).await?;
                }
                read::allocations(&tx, transfer).await
            }
            .await
        })
    }

    /// Credits moved per kind for a wallet between `from` (inclusive) and `to` (exclusive).
    pub async fn totals_by_kind(
        &self,
        wallet: AccountId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> LedgerResult<Vec<(TransferKind, i64)>> {
        totals::totals_by_kind(&self.pools, wallet, from, to).await
    }

    /// Credits moved per local day and kind since `from` (days begin `utc_offset_secs` after UTC
    /// midnight, e.g. 19800 for India), newest first; `kinds` empty means all.
    pub async fn daily_totals(
        &self,
        wallet: AccountId,
        from: DateTime<Utc>,
        utc_offset_secs: i64,
        kinds: &[TransferKind],
    ) -> LedgerResult<Vec<(chrono::NaiveDate, TransferKind, i64)>> {
        totals::daily_totals(&self.pools, wallet, from, utc_offset_secs, kinds).await
    }

    /// The balance of a system account, computed from its transfers (credits in minus out).
    pub async fn system_balance(&self, account: SystemAccount) -> LedgerResult<i64> {
        read::account_net(&self.pools, self.system.get(account)?).await
    }

    /// How much of each connection pool is in use now.
    pub fn pool_use(&self) -> Vec<PoolUse> {
        self.pools.usage()
    }

    /// Checks every invariant the ledger keeps. See [`AuditReport`].
    pub async fn audit(&self) -> LedgerResult<AuditReport> {
        audit::run(&self.pools).await
    }

    /// Closes the connection pools.
    pub async fn close(self) -> LedgerResult<()> {
        self.pools.write.close().await?;
        if self.pools.backend == DbBackend::Sqlite {
            self.pools.read.close().await?;
        }
        Ok(())
    }
}
