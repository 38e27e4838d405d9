//! What callers ask the ledger to do, and what it answers.

use chrono::{DateTime, Utc};

use crate::{
    db::col,
    error::LedgerResult,
    types::{
        AccountId, Credits, IdempotencyKey, LotId, LotSource, ReservationId, TransferId,
        TransferKind, from_micros,
    },
};

/// Why credits enter a wallet. Each becomes a lot with the matching source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditKind {
    /// Bought through Razorpay: paid credits, refundable.
    Purchase,
    /// Promotional credits granted by Kalp Studio.
    Grant,
    /// An operator's correction; the operator says whether the credits count as paid.
    Adjustment(LotSource),
}

impl CreditKind {
    pub fn transfer_kind(self) -> TransferKind {
        match self {
            CreditKind::Purchase => TransferKind::Purchase,
            CreditKind::Grant => TransferKind::Grant,
            CreditKind::Adjustment(_) => TransferKind::AdjustmentCredit,
        }
    }

    pub fn lot_source(self) -> LotSource {
        match self {
            CreditKind::Purchase => LotSource::Paid,
            CreditKind::Grant => LotSource::Promotional,
            CreditKind::Adjustment(source) => source,
        }
    }
}

/// Why credits leave a wallet at a customer's request (authorised: refused when short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitKind {
    UsageEmail,
    UsageSms,
    Adjustment,
}

impl DebitKind {
    pub fn transfer_kind(self) -> TransferKind {
        match self {
            DebitKind::UsageEmail => TransferKind::UsageEmail,
            DebitKind::UsageSms => TransferKind::UsageSms,
            DebitKind::Adjustment => TransferKind::AdjustmentDebit,
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "usage_email" => Some(DebitKind::UsageEmail),
            "usage_sms" => Some(DebitKind::UsageSms),
            "adjustment_debit" => Some(DebitKind::Adjustment),
            _ => None,
        }
    }
}

/// Credits entering a wallet (a purchase, a grant, an adjustment). Recorded, never refused for
/// lack of funds: the money already moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub wallet: AccountId,
    pub amount: Credits,
    pub kind: CreditKind,
    pub key: IdempotencyKey,
    /// What the credit came from, e.g. the Razorpay payment id.
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Credits leaving a wallet now; refused with `InsufficientCredits` when the wallet is short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debit {
    pub wallet: AccountId,
    pub amount: Credits,
    pub kind: DebitKind,
    pub key: IdempotencyKey,
    /// What the debit paid for, e.g. a message batch id.
    pub reference: Option<String>,
    pub memo: Option<String>,
}

/// Hold credits for later use (TigerBeetle's pending transfer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserve {
    pub wallet: AccountId,
    pub amount: Credits,
    pub kind: DebitKind,
    pub key: IdempotencyKey,
    pub reference: Option<String>,
    /// After this instant the hold lapses and the credits return to the wallet.
    pub expires_at: DateTime<Utc>,
}

/// Spend `used` credits of a reservation and release the rest. Settling twice with the same
/// `used` is a replay; with a different `used`, a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub reservation: ReservationId,
    pub used: i64,
}

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Credit(Credit),
    Debit(Debit),
    Reserve(Reserve),
    Settle(Settle),
    Release(ReservationId),
}

/// The answer to one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    Transfer(Receipt),
    Reservation(Reservation),
}

/// A transfer as stored. Immutable once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub key: String,
    pub kind: TransferKind,
    pub debit_account: AccountId,
    pub credit_account: AccountId,
    pub wallet: AccountId,
    pub amount: i64,
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub reservation: Option<ReservationId>,
    pub created_at: DateTime<Utc>,
}

impl Transfer {
    pub(crate) const COLUMNS: &'static str = "id, idempotency_key, kind, debit_account_id, \
        credit_account_id, wallet_account_id, amount, reference, memo, reservation_id, created_at";

    pub(crate) fn from_row(row: &sea_orm::QueryResult) -> LedgerResult<Self> {
        let kind: String = col(row, "kind")?;
        Ok(Transfer {
            id: TransferId(col(row, "id")?),
            key: col(row, "idempotency_key")?,
            kind: TransferKind::parse(&kind).ok_or_else(|| {
                crate::error::LedgerError::Inconsistent(format!("unknown transfer kind {kind:?}"))
            })?,
            debit_account: AccountId(col(row, "debit_account_id")?),
            credit_account: AccountId(col(row, "credit_account_id")?),
            wallet: AccountId(col(row, "wallet_account_id")?),
            amount: col(row, "amount")?,
            reference: col(row, "reference")?,
            memo: col(row, "memo")?,
            reservation: col::<Option<i64>>(row, "reservation_id")?.map(ReservationId),
            created_at: from_micros(col(row, "created_at")?),
        })
    }

    /// The change this transfer made to its wallet: positive in, negative out.
    pub fn signed_amount(&self) -> i64 {
        if self.credit_account == self.wallet {
            self.amount
        } else {
            -self.amount
        }
    }
}

/// The result of a transfer request: the transfer, and whether it was created by this call or
/// already existed under the same key (a replay moves nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub transfer: Transfer,
    pub replayed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    Pending,
    Settled,
    Released,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Pending => "pending",
            ReservationStatus::Settled => "settled",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub(crate) fn parse(s: &str) -> LedgerResult<Self> {
        match s {
            "pending" => Ok(ReservationStatus::Pending),
            "settled" => Ok(ReservationStatus::Settled),
            "released" => Ok(ReservationStatus::Released),
            "expired" => Ok(ReservationStatus::Expired),
            other => Err(crate::error::LedgerError::Inconsistent(format!(
                "unknown reservation status {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub key: String,
    pub wallet: AccountId,
    pub kind: DebitKind,
    pub amount: i64,
    pub status: ReservationStatus,
    /// Set once settled: the credits actually spent.
    pub used: Option<i64>,
    pub reference: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// True when this call found the reservation already in the state it asked for.
    pub replayed: bool,
}

impl Reservation {
    pub(crate) const COLUMNS: &'static str = "id, idempotency_key, fingerprint, \
        wallet_account_id, kind, amount, status, used, reference, expires_at, created_at";

    pub(crate) fn from_row(row: &sea_orm::QueryResult) -> LedgerResult<Self> {
        let kind: String = col(row, "kind")?;
        let status: String = col(row, "status")?;
        Ok(Reservation {
            id: ReservationId(col(row, "id")?),
            key: col(row, "idempotency_key")?,
            wallet: AccountId(col(row, "wallet_account_id")?),
            kind: DebitKind::parse(&kind).ok_or_else(|| {
                crate::error::LedgerError::Inconsistent(format!(
                    "unknown reservation kind {kind:?}"
                ))
            })?,
            amount: col(row, "amount")?,
            status: ReservationStatus::parse(&status)?,
            used: col(row, "used")?,
            reference: col(row, "reference")?,
            expires_at: from_micros(col(row, "expires_at")?),
            created_at: from_micros(col(row, "created_at")?),
            replayed: false,
        })
    }
}

/// A wallet's balance: `available` can be spent now; `reserved` is held by pending reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    pub available: i64,
    pub reserved: i64,
}

impl Balance {
    /// One wallet's balance row; bind the account id, read it with [`Balance::from_row`].
    pub(crate) const BY_WALLET: &'static str =
        "SELECT available, reserved FROM ledger_balances WHERE account_id = ?";

    pub(crate) fn from_row(row: &sea_orm::QueryResult) -> LedgerResult<Self> {
        Ok(Balance {
            available: col(row, "available")?,
            reserved: col(row, "reserved")?,
        })
    }

    pub fn total(&self) -> i64 {
        self.available + self.reserved
    }
}

/// A lot: credits that entered a wallet together, spent in expiry order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    pub id: LotId,
    pub wallet: AccountId,
    pub transfer: TransferId,
    pub source: LotSource,
    pub payment_reference: Option<String>,
    pub original: i64,
    /// Unspent and unreserved.
    pub remaining: i64,
    /// Held by pending reservations.
    pub held: i64,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Which lots paid for a debit, and how much from each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub lot: LotId,
    pub source: LotSource,
    pub payment_reference: Option<String>,
    pub amount: i64,
}

/// Take back credits bought with a payment Razorpay refunded, from the wallet's paid lots, as
/// far as they go (never below zero, never promotional credits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeBack {
    pub wallet: AccountId,
    /// The most to take: the refunded amount in credits.
    pub max: Credits,
    pub key: IdempotencyKey,
    /// The refunded payment; its own lot is drawn first.
    pub reference: Option<String>,
    pub memo: Option<String>,
}
