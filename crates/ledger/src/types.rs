//! Domain types: parsed and validated once, so the rest of the ledger can trust them.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::error::LedgerError;

macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[doc = concat!("Database id of ", $what, ".")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(AccountId, "an account");
id_type!(TransferId, "a transfer");
id_type!(ReservationId, "a reservation");
id_type!(LotId, "a lot");

/// The largest amount one transfer may move, and the largest balance a wallet may hold.
/// Far above any real purchase (₹5,00,000 at one credit per paisa is 5e7), and far enough below
/// i64::MAX that no sum the ledger computes can overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// The half-hour rollup's bucket (`ledger_wallet_half_hours`), in microseconds, the unit of
/// `created_at`.
pub(crate) const HALF_HOUR: i64 = 1_800_000_000;

/// A strictly positive number of credits, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Credits(i64);

impl Credits {
    pub fn new(value: i64) -> Result<Self, LedgerError> {
        if value <= 0 {
            return Err(LedgerError::InvalidAmount(format!(
                "{value} is not a positive number of credits"
            )));
        }
        if value > MAX_AMOUNT {
            return Err(LedgerError::InvalidAmount(format!(
                "{value} exceeds the largest transfer ({MAX_AMOUNT})"
            )));
        }
        Ok(Credits(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i64> for Credits {
    type Error = LedgerError;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Credits::new(value)
    }
}

/// The longest idempotency key accepted (a Razorpay payment id is 18 characters; a derived key
/// such as `topup:pay_xxx` or `charge:<account>:<client key>` fits comfortably).
pub const MAX_KEY_LEN: usize = 200;

/// A caller-chosen key that makes a ledger operation happen at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn new(key: impl Into<String>) -> Result<Self, LedgerError> {
        let key = key.into();
        if key.is_empty() {
            return Err(LedgerError::InvalidKey("the key is empty".into()));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(LedgerError::InvalidKey(format!(
                "the key is {} bytes long; at most {MAX_KEY_LEN} are allowed",
                key.len()
            )));
        }
        if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(LedgerError::InvalidKey(format!(
                "the key contains {c:?}; only printable ASCII without spaces is allowed"
            )));
        }
        Ok(IdempotencyKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ledger's own accounts. Their balances are computed from transfers, never maintained on a
/// row, so that no shared hot row serialises every top-up or send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemAccount {
    RazorpayPurchases,
    EmailUsage,
    SmsUsage,
    PromotionalGrants,
    ManualAdjustments,
    Expiry,
}

impl SystemAccount {
    pub const ALL: [SystemAccount; 6] = [
        SystemAccount::RazorpayPurchases,
        SystemAccount::EmailUsage,
        SystemAccount::SmsUsage,
        SystemAccount::PromotionalGrants,
        SystemAccount::ManualAdjustments,
        SystemAccount::Expiry,
    ];

    pub fn code(self) -> &'static str {
        match self {
            SystemAccount::RazorpayPurchases => "system:razorpay_purchases",
            SystemAccount::EmailUsage => "system:email_usage",
            SystemAccount::SmsUsage => "system:sms_usage",
            SystemAccount::PromotionalGrants => "system:promotional_grants",
            SystemAccount::ManualAdjustments => "system:manual_adjustments",
            SystemAccount::Expiry => "system:expiry",
        }
    }
}

/// Where the credits of a lot came from. Paid credits can be refunded; promotional ones cannot,
/// so debits spend promotional credits first at equal expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LotSource {
    Paid,
    Promotional,
}

impl LotSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LotSource::Paid => "paid",
            LotSource::Promotional => "promotional",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, LedgerError> {
        match s {
            "paid" => Ok(LotSource::Paid),
            "promotional" => Ok(LotSource::Promotional),
            other => Err(LedgerError::Inconsistent(format!(
                "unknown lot source {other:?}"
            ))),
        }
    }
}

/// What a transfer was for. Each kind moves credits between a wallet and one system account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// Credits bought through Razorpay.
    Purchase,
    /// Free credits granted by Kalp Studio.
    Grant,
    /// An operator's correction in the customer's favour.
    AdjustmentCredit,
    /// An operator's correction against the customer.
    AdjustmentDebit,
    UsageEmail,
    UsageSms,
    /// Unused credits of an expired lot.
    Expiry,
    /// Credits taken back because Razorpay refunded the payment that bought them.
    RefundReversal,
}

impl TransferKind {
    pub const ALL: [TransferKind; 8] = [
        TransferKind::Purchase,
        TransferKind::Grant,
        TransferKind::AdjustmentCredit,
        TransferKind::AdjustmentDebit,
        TransferKind::UsageEmail,
        TransferKind::UsageSms,
        TransferKind::Expiry,
        TransferKind::RefundReversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::Purchase => "purchase",
            TransferKind::Grant => "grant",
            TransferKind::AdjustmentCredit => "adjustment_credit",
            TransferKind::AdjustmentDebit => "adjustment_debit",
            TransferKind::UsageEmail => "usage_email",
            TransferKind::UsageSms => "usage_sms",
            TransferKind::Expiry => "expiry",
            TransferKind::RefundReversal => "refund_reversal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TransferKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The system account on the other side of a transfer of this kind.
    pub fn system_account(self) -> SystemAccount {
        match self {
            TransferKind::Purchase | TransferKind::RefundReversal => {
                SystemAccount::RazorpayPurchases
            }
            TransferKind::Grant => SystemAccount::PromotionalGrants,
            TransferKind::AdjustmentCredit | TransferKind::AdjustmentDebit => {
                SystemAccount::ManualAdjustments
            }
            TransferKind::UsageEmail => SystemAccount::EmailUsage,
            TransferKind::UsageSms => SystemAccount::SmsUsage,
            TransferKind::Expiry => SystemAccount::Expiry,
        }
    }

    /// True when credits flow into the wallet.
    pub fn credits_wallet(self) -> bool {
        matches!(
            self,
            TransferKind::Purchase | TransferKind::Grant | TransferKind::AdjustmentCredit
        )
    }
}

/// Timestamps are stored as microseconds since the Unix epoch (BIGINT on both backends).
pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_reject_zero_negative_and_overflowing_amounts() {
        assert!(matches!(
            Credits::new(0),
            Err(LedgerError::InvalidAmount(_))
        ));
        assert!(matches!(
            Credits::new(-5),
            Err(LedgerError::InvalidAmount(_))
        ));
        assert!(matches!(
            Credits::new(i64::MIN),
            Err(LedgerError::InvalidAmount(_))
        ));
        assert!(matches!(
            Credits::new(i64::MAX),
            Err(LedgerError::InvalidAmount(_))
        ));
        assert!(matches!(
            Credits::new(MAX_AMOUNT + 1),
            Err(LedgerError::InvalidAmount(_))
        ));
        assert_eq!(
            Credits::new(MAX_AMOUNT).map(Credits::get).ok(),
            Some(MAX_AMOUNT)
        );
    }

    #[test]
    fn keys_must_be_short_printable_and_non_empty() {
        assert!(matches!(
            IdempotencyKey::new(""),
            Err(LedgerError::InvalidKey(_))
        ));
        assert!(matches!(
            IdempotencyKey::new("a b"),
            Err(LedgerError::InvalidKey(_))
        ));
        assert!(matches!(
            IdempotencyKey::new("é"),
            Err(LedgerError::InvalidKey(_))
        ));
        assert!(matches!(
            IdempotencyKey::new("k".repeat(MAX_KEY_LEN + 1)),
            Err(LedgerError::InvalidKey(_))
        ));
        assert!(IdempotencyKey::new("topup:pay_29QQoUBi66xm2f").is_ok());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in TransferKind::ALL {
            assert_eq!(TransferKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TransferKind::parse("nonsense"), None);
    }
}
