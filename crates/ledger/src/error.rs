//! Typed ledger errors, and the mapping of driver error codes sea-orm leaves unmapped.

use sea_orm::{DbErr, RuntimeErr};

use crate::types::{AccountId, ReservationId};

/// Everything a ledger call can fail with. Business outcomes (insufficient credits, conflicts)
/// are distinct from storage failures so that callers can answer users precisely.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("insufficient credits: {available} available, {required} required")]
    InsufficientCredits { available: i64, required: i64 },
    #[error("idempotency key {key:?} was already used for a different request")]
    IdempotencyConflict { key: String },
    #[error("unknown account {0}")]
    UnknownAccount(AccountId),
    #[error("account {0} is not a customer wallet")]
    NotAWallet(AccountId),
    #[error("unknown reservation {0}")]
    UnknownReservation(ReservationId),
    #[error("reservation {id} is {status}, not pending")]
    ReservationNotPending { id: ReservationId, status: String },
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    #[error("invalid idempotency key: {0}")]
    InvalidKey(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An all-or-nothing batch was refused because of this item; nothing of it was committed.
    #[error("batch item {index} was refused: {source}")]
    BatchItemRefused {
        index: usize,
        source: Box<LedgerError>,
    },
    #[error("the wallet balance would exceed the ledger's limit")]
    BalanceLimitExceeded,
    /// The database disagrees with an invariant the ledger keeps; the transaction was rolled back.
    #[error("ledger invariant violated: {0}")]
    Inconsistent(String),
    /// Another transaction changed what this one had planned on (PostgreSQL); retrying the
    /// whole transaction cures it.
    #[error("concurrent change: {0}")]
    Contention(String),
    #[error("storage error: {0}")]
    Storage(#[from] DbErr),
}

impl LedgerError {
    /// True for failures that a retry of the whole transaction may cure.
    pub fn is_transient(&self) -> bool {
        match self {
            LedgerError::Storage(e) => classify(e).is_transient(),
            LedgerError::Contention(_) => true,
            _ => false,
        }
    }
}

/// True for a database error that retrying the whole transaction may cure (a deadlock, a
/// serialization failure, SQLite's BUSY): for callers who run their own statements in a
/// [`crate::Ledger::transact`].
pub fn is_transient_db_error(err: &DbErr) -> bool {
    classify(err).is_transient()
}

/// What a database error means for the ledger, from the driver's own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbFailure {
    CheckViolation,
    UniqueViolation,
    SerializationFailure,
    Deadlock,
    Busy,
    Other,
}

impl DbFailure {
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            DbFailure::SerializationFailure | DbFailure::Deadlock | DbFailure::Busy
        )
    }
}

/// sea-orm maps only unique and foreign-key violations; CHECK violations, serialization failures,
/// deadlocks and SQLITE_BUSY need the driver's code (Postgres SQLSTATE, SQLite extended code).
pub(crate) fn classify(err: &DbErr) -> DbFailure {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return DbFailure::Other;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return DbFailure::Other;
    };
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        // Postgres SQLSTATEs.
        "23514" => DbFailure::CheckViolation,
        "23505" => DbFailure::UniqueViolation,
        "40001" => DbFailure::SerializationFailure,
        "40P01" => DbFailure::Deadlock,
        // SQLite extended result codes: 275 CONSTRAINT_CHECK, 2067 CONSTRAINT_UNIQUE,
        // 1555 CONSTRAINT_PRIMARYKEY, 5 BUSY, 517 BUSY_SNAPSHOT, 6 LOCKED.
        "275" => DbFailure::CheckViolation,
        "2067" | "1555" => DbFailure::UniqueViolation,
        "5" | "517" | "6" | "262" => DbFailure::Busy,
        _ => DbFailure::Other,
    }
}

pub type LedgerResult<T> = Result<T, LedgerError>;
