//! Transactions as callers see them: [`LedgerTx`] (the open write transaction lent to the body
//! of `Ledger::transact`, which other components' statements join), [`LedgerReads`] (reads
//! beside the ledger that refuse to write), retries of transient failures, and the guard that
//! refuses a transaction begun inside another in the same task.

use std::{future::Future, pin::Pin, time::Duration};

use chrono::Utc;
use sea_orm::{DatabaseConnection, DbBackend};

use crate::{
    db::Tx,
    error::{LedgerError, LedgerResult},
    model::{
        Balance, Credit, Debit, Op, OpOutcome, Receipt, Reservation, Reserve, TakeBack, Transfer,
    },
    types::{AccountId, ReservationId},
    write::{
        apply::{apply, is_refusal},
        batch,
        claims::{SystemIds, balance_in},
        credit::credit,
        debit::debit,
        lots::take_back_paid,
        reservations::{reserve, settle_transfer},
    },
};

/// How many times a transaction is tried in all when it meets a deadlock, a serialization
/// failure or BUSY.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Small, growing, de-synchronised: concurrent losers of a deadlock should not collide again.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 2u64.saturating_pow(attempt).min(64);
    let jitter = getrandom::u64().unwrap_or(0) % base;
    Duration::from_millis(base + jitter)
}

tokio::task_local! {
    /// Set while this task runs the body of a `Ledger::transact`.
    pub(crate) static IN_TRANSACTION: ();
}

/// A write transaction begun inside another one in the same task would wait for the single
/// writer its own task holds (SQLite: a pool of one connection), for the whole busy timeout. So
/// it is refused at once: pass the open transaction instead.
pub(crate) fn refuse_nested() -> LedgerResult<()> {
    if IN_TRANSACTION.try_with(|_| ()).is_ok() {
        return Err(LedgerError::InvalidRequest(
            "a write transaction was started inside another one in the same task; use the open transaction instead".into(),
        ));
    }
    Ok(())
}

/// Transient failures injected on purpose, so that tests and drills can prove every caller
/// retries (see `Ledger::inject_transient_failures`). One atomic load per commit when unused.
#[derive(Clone, Default)]
pub(crate) struct InjectedFaults(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl InjectedFaults {
    pub(crate) fn set(&self, n: u32) {
        self.0.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The next injected failure, if any are left.
    pub(crate) fn take(&self) -> Option<LedgerError> {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| LedgerError::Contention("injected transient failure".into()))
    }
}

/// What a transaction body returns to `Ledger::transact`: a boxed future borrowing the
/// transaction.
pub type TxFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// An error that may say "retrying the whole transaction may cure this" (a deadlock, a
/// serialization failure, SQLite's BUSY).
pub trait Retryable {
    fn is_transient(&self) -> bool;
}

impl Retryable for LedgerError {
    fn is_transient(&self) -> bool {
        LedgerError::is_transient(self)
    }
}

/// A write transaction on the ledger, lent to the body of `Ledger::transact`, which commits
/// it (or rolls it back). Other components' statements join it: it is a
/// [`sea_orm::ConnectionTrait`].
pub struct LedgerTx<'l> {
    tx: Tx,
    system: &'l SystemIds,
}

impl<'l> LedgerTx<'l> {
    pub(crate) fn new(tx: Tx, system: &'l SystemIds) -> LedgerTx<'l> {
        LedgerTx { tx, system }
    }

    pub(crate) async fn commit(self) -> LedgerResult<()> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) {
        let _ = self.tx.txn.rollback().await;
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm::ConnectionTrait for LedgerTx<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.tx.backend
    }

    async fn execute_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.tx.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.tx.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.tx.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.tx.txn.query_all_raw(stmt).await
    }
}

/// A component's write on the ledger's writer: through an open transaction ([`LedgerTx`]) or
/// as one statement committed by itself ([`LedgerAutocommit`]). Reads connections are not
/// writers, so a function that takes a `LedgerWrite` can't be handed one.
pub trait LedgerWrite: sea_orm::ConnectionTrait + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::LedgerTx<'_> {}
    impl Sealed for super::LedgerAutocommit<'_> {}
}

impl LedgerWrite for LedgerTx<'_> {}
impl LedgerWrite for LedgerAutocommit<'_> {}

/// The writer for exactly one statement, which commits by itself (autocommit): no `BEGIN` and
/// `COMMIT` round trips while the single writer is held, for the many writes that are one
/// statement. A second statement is refused, so what it does is atomic by construction. Lent to
/// the body of `Ledger::autocommit`.
pub struct LedgerAutocommit<'l> {
    pool: &'l DatabaseConnection,
    used: std::sync::atomic::AtomicBool,
}

impl<'l> LedgerAutocommit<'l> {
    pub(crate) fn new(pool: &'l DatabaseConnection) -> LedgerAutocommit<'l> {
        LedgerAutocommit {
            pool,
            used: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn once(&self) -> Result<(), sea_orm::DbErr> {
        if self.used.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(sea_orm::DbErr::Custom(
                "an autocommit write is one statement; use Ledger::transact for more".into(),
            ));
        }
        Ok(())
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm::ConnectionTrait for LedgerAutocommit<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.once()?;
        self.pool.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.once()?;
        self.pool.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.once()?;
        self.pool.query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.once()?;
        self.pool.query_all_raw(stmt).await
    }
}

/// Reads beside the ledger (see `Ledger::reads`): a [`sea_orm::ConnectionTrait`] that runs
/// queries and refuses statements that write.
#[derive(Clone)]
pub struct LedgerReads {
    pool: DatabaseConnection,
}

impl LedgerReads {
    pub(crate) fn new(pool: DatabaseConnection) -> LedgerReads {
        LedgerReads { pool }
    }

    fn refuse<T>() -> Result<T, sea_orm::DbErr> {
        Err(sea_orm::DbErr::Custom(
            "writes go through Ledger::transact, not the read connections".into(),
        ))
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm::ConnectionTrait for LedgerReads {
    fn get_database_backend(&self) -> DbBackend {
        self.pool.get_database_backend()
    }

    async fn execute_raw(
        &self,
        _stmt: sea_orm::Statement,
    ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        Self::refuse()
    }

    async fn execute_unprepared(&self, _sql: &str) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        Self::refuse()
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.pool.query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.pool.query_all_raw(stmt).await
    }
}

impl LedgerTx<'_> {
    pub async fn credit(&self, req: &Credit) -> LedgerResult<Receipt> {
        credit(&self.tx, self.system, req, now_micros()).await
    }

    pub async fn debit(&self, req: &Debit) -> LedgerResult<Receipt> {
        debit(&self.tx, self.system, req, now_micros()).await
    }

    pub async fn balance(&self, wallet: AccountId) -> LedgerResult<Balance> {
        balance_in(&self.tx, wallet).await
    }

    /// Many debits in this transaction, each with its own answer: the receipt and the wallet's
    /// balance right after it, or a refusal that changed nothing. Set-based (a few statements
    /// for the whole batch) when the keys are distinct; item by item otherwise.
    pub async fn debit_many(
        &self,
        debits: &[Debit],
    ) -> LedgerResult<Vec<LedgerResult<(Receipt, Balance)>>> {
        let refs: Vec<&Debit> = debits.iter().collect();
        let now = now_micros();
        if batch::keys_are_distinct(&refs) {
            return batch::debits(&self.tx, self.system, &refs, now).await;
        }
        let mut out = Vec::with_capacity(debits.len());
        for d in debits {
            match debit(&self.tx, self.system, d, now).await {
                Ok(receipt) => out.push(Ok((receipt, balance_in(&self.tx, d.wallet).await?))),
                Err(e) if is_refusal(&e) => out.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Runs one operation in this transaction. A refusal (insufficient credits, conflict) leaves
    /// nothing behind, so the caller may go on with other operations and commit them.
    pub async fn apply(&self, op: &Op) -> LedgerResult<OpOutcome> {
        apply(&self.tx, self.system, op, now_micros()).await
    }

    /// Takes back refunded credits from paid lots as far as they go; `None` when there were
    /// none to take. The shortfall is `max - taken`.
    pub async fn take_back_paid(&self, req: &TakeBack) -> LedgerResult<Option<Receipt>> {
        take_back_paid(&self.tx, self.system, req, now_micros()).await
    }

    /// The transfer that settled a reservation, if it spent anything.
    pub async fn settle_transfer(&self, id: ReservationId) -> LedgerResult<Option<Transfer>> {
        settle_transfer(&self.tx, id).await
    }

    /// Reserves credits in this transaction (see `Ledger::reserve`).
    pub async fn reserve(&self, req: &Reserve) -> LedgerResult<Reservation> {
        reserve(&self.tx, req, now_micros()).await
    }
}
