//! Top-ups as stored: one row per Add Credits, tied to one Razorpay order, with the credits and
//! rate it was sold at; and every status a top-up can have. Reads only: the moves between
//! statuses are in `topup_moves`.

use razorpay::Paise;
use sea_orm::{ConnectionTrait, QueryOrder, QuerySelect, entity::prelude::*};

use super::{FirstRow, StoreError, StoreResult, Tx};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_topups")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub amount_paise: i64,
        pub credits: i64,
        pub status: String,
        pub razorpay_order_id: Option<String>,
        pub razorpay_payment_id: Option<String>,
        pub method: Option<String>,
        pub flag_reason: Option<String>,
        pub credited_transfer_id: Option<i64>,
        pub reconcile_locked_until: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
        pub paise_per_credit: i64,
        pub failure_code: Option<String>,
        pub bank_pending_at: Option<i64>,
        pub refunded_paise: i64,
        pub refund_taken: i64,
        pub refund_shortfall: i64,
        pub flagged_payment_id: Option<String>,
        pub resolution: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{Column, Entity};

/// Where a top-up is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopupStatus {
    /// Recorded; the Razorpay order is being created.
    Creating,
    /// Waiting for the customer to pay, or for Razorpay to tell us.
    Pending,
    /// Credited, by exactly one payment.
    Paid,
    Failed,
    Cancelled,
    /// Never paid; given up by reconciliation.
    Expired,
    /// Razorpay reported something that does not fit; an operator must look.
    Flagged,
}

impl TopupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TopupStatus::Creating => "creating",
            TopupStatus::Pending => "pending",
            TopupStatus::Paid => "paid",
            TopupStatus::Failed => "failed",
            TopupStatus::Cancelled => "cancelled",
            TopupStatus::Expired => "expired",
            TopupStatus::Flagged => "flagged",
        }
    }

    /// A status read from the database; anything else is an error, never a guess.
    pub fn parse(s: &str) -> Result<TopupStatus, StoreError> {
        Ok(match s {
            "creating" => TopupStatus::Creating,
            "pending" => TopupStatus::Pending,
            "paid" => TopupStatus::Paid,
            "failed" => TopupStatus::Failed,
            "cancelled" => TopupStatus::Cancelled,
            "expired" => TopupStatus::Expired,
            "flagged" => TopupStatus::Flagged,
            other => {
                return Err(StoreError::Db(DbErr::Custom(format!(
                    "a top-up has the unknown status {other:?}"
                ))));
            }
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            TopupStatus::Creating | TopupStatus::Pending => "Pending",
            TopupStatus::Paid => "Paid",
            TopupStatus::Failed => "Failed",
            TopupStatus::Cancelled => "Cancelled",
            TopupStatus::Expired => "Expired",
            TopupStatus::Flagged => "Under review",
        }
    }

    /// Still waiting for a payment: reconciliation and the status page look these up.
    pub fn is_open(self) -> bool {
        matches!(self, TopupStatus::Creating | TopupStatus::Pending)
    }
}

#[derive(Debug, Clone)]
pub struct Topup {
    pub id: i64,
    pub user_id: i64,
    pub amount: Paise,
    /// The credits it buys, fixed when it was created.
    pub credits: i64,
    /// The rate it was sold at, fixed when it was created.
    pub paise_per_credit: i64,
    pub status: TopupStatus,
    pub order_id: Option<String>,
    /// The payment that credited it (paid top-ups only).
    pub payment_id: Option<String>,
    pub method: Option<String>,
    /// Razorpay's reason code for a failure (shown in our own words, never Razorpay's).
    pub failure_code: Option<String>,
    pub flag_reason: Option<String>,
    /// When a check found the payment still `created` at the bank.
    pub bank_pending_at: Option<i64>,
    /// Paise refunded of the crediting payment, refunds that failed excluded.
    pub refunded_paise: i64,
    /// Credits taken back for those refunds (net of credits returned when one failed).
    pub refund_taken: i64,
    /// Credits those refunds should have taken back but could not (already spent).
    pub refund_shortfall: i64,
    /// The payment a flagged top-up is about.
    pub flagged_payment_id: Option<String>,
    /// How an operator resolved it, when flagged.
    pub resolution: Option<FlagResolution>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// How an operator resolved a flagged top-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagResolution {
    /// Credited as the top-up promised (it is `paid` now).
    Credited,
    /// Its payment refunded through Razorpay.
    Refunded,
    /// Looked at; nothing to do.
    Dismissed,
}

impl FlagResolution {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagResolution::Credited => "credited",
            FlagResolution::Refunded => "refunded",
            FlagResolution::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Result<FlagResolution, StoreError> {
        Ok(match s {
            "credited" => FlagResolution::Credited,
            "refunded" => FlagResolution::Refunded,
            "dismissed" => FlagResolution::Dismissed,
            other => {
                return Err(StoreError::Db(DbErr::Custom(format!(
                    "a top-up has the unknown resolution {other:?}"
                ))));
            }
        })
    }
}

impl TryFrom<entity::Model> for Topup {
    type Error = StoreError;

    fn try_from(m: entity::Model) -> Result<Topup, StoreError> {
        Ok(Topup {
            status: TopupStatus::parse(&m.status)?,
            id: m.id,
            user_id: m.user_id,
            amount: Paise(m.amount_paise),
            credits: m.credits,
            paise_per_credit: m.paise_per_credit,
            order_id: m.razorpay_order_id,
            payment_id: m.razorpay_payment_id,
            method: m.method,
            failure_code: m.failure_code,
            flag_reason: m.flag_reason,
            bank_pending_at: m.bank_pending_at,
            refunded_paise: m.refunded_paise,
            refund_taken: m.refund_taken,
            refund_shortfall: m.refund_shortfall,
            flagged_payment_id: m.flagged_payment_id,
            resolution: m
                .resolution
                .as_deref()
                .map(FlagResolution::parse)
                .transpose()?,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        })
    }
}

impl Topup {
    /// Paid with this very payment, and so credited: the credit and `paid` commit together.
    pub fn credited_by(&self, payment_id: &str) -> bool {
        self.status == TopupStatus::Paid && self.payment_id.as_deref() == Some(payment_id)
    }

    /// Credits a refund of `refunded` paise in all owes back: the refunded share of what the
    /// top-up bought, at its own rate, rounded down (a refund never takes more than it paid for;
    /// refunds of the whole amount, in any number of parts, take back every credit).
    pub fn credits_owed_for(&self, refunded: i64) -> i64 {
        if self.paise_per_credit <= 0 {
            return 0;
        }
        refunded.clamp(0, self.amount.0) / self.paise_per_credit
    }

    pub fn method_label(&self) -> String {
        self.method
            .as_deref()
            .map(|m| razorpay::wire::PaymentMethod::parse(m).label().to_string())
            .unwrap_or_default()
    }
}

fn all(rows: Vec<entity::Model>) -> StoreResult<Vec<Topup>> {
    rows.into_iter().map(Topup::try_from).collect()
}

fn one(row: Option<entity::Model>) -> StoreResult<Option<Topup>> {
    row.map(Topup::try_from).transpose()
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: i64) -> StoreResult<Option<Topup>> {
    one(Entity::find_by_id(id).first_row(conn).await?)
}

/// A top-up of this user; another account's id is the same as none.
pub async fn find_owned<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    user_id: i64,
) -> StoreResult<Option<Topup>> {
    one(Entity::find_by_id(id)
        .filter(Column::UserId.eq(user_id))
        .first_row(conn)
        .await?)
}

/// The top-up as this transaction sees it, locked until the transaction ends (`FOR UPDATE` on
/// PostgreSQL; on SQLite the transaction already holds the single write lock), so that two
/// reports of payments or refunds on one top-up take their turns.
pub async fn lock(tx: &Tx<'_>, id: i64) -> StoreResult<Topup> {
    one(Entity::find_by_id(id)
        .lock_exclusive()
        .first_row(tx)
        .await?)?
    .ok_or_else(|| StoreError::Db(DbErr::RecordNotFound(format!("top-up {id}"))))
}

pub async fn find_by_order<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
) -> StoreResult<Option<Topup>> {
    one(Entity::find()
        .filter(Column::RazorpayOrderId.eq(order_id))
        .first_row(conn)
        .await?)
}

/// The top-up this payment credited, if it credited one.
pub async fn find_by_payment<C: ConnectionTrait>(
    conn: &C,
    payment_id: &str,
) -> StoreResult<Option<Topup>> {
    one(Entity::find()
        .filter(Column::RazorpayPaymentId.eq(payment_id))
        .first_row(conn)
        .await?)
}

/// The top-up flagged about this payment.
pub async fn find_by_flagged_payment<C: ConnectionTrait>(
    conn: &C,
    payment_id: &str,
) -> StoreResult<Option<Topup>> {
    one(Entity::find()
        .filter(Column::FlaggedPaymentId.eq(payment_id))
        .first_row(conn)
        .await?)
}

/// An account's paid top-ups, newest first: what a refund of unused credits draws on.
pub async fn paid_of_user<C: ConnectionTrait>(conn: &C, user_id: i64) -> StoreResult<Vec<Topup>> {
    all(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Status.eq(TopupStatus::Paid.as_str()))
        .order_by_desc(Column::Id)
        .all(conn)
        .await?)
}

/// An account's newest top-ups (those with an order).
pub async fn recent<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    limit: u64,
) -> StoreResult<Vec<Topup>> {
    all(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Status.ne(TopupStatus::Creating.as_str()))
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Top-ups flagged for an operator and not resolved yet.
pub async fn flagged<C: ConnectionTrait>(conn: &C) -> StoreResult<Vec<Topup>> {
    all(Entity::find()
        .filter(Column::Status.eq(TopupStatus::Flagged.as_str()))
        .filter(Column::Resolution.is_null())
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// Paid top-ups created in `[from, to)` (Unix microseconds).
pub async fn paid_between<C: ConnectionTrait>(
    conn: &C,
    from: i64,
    to: i64,
) -> StoreResult<Vec<Topup>> {
    all(Entity::find()
        .filter(Column::Status.eq(TopupStatus::Paid.as_str()))
        .filter(Column::CreatedAt.gte(from))
        .filter(Column::CreatedAt.lt(to))
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// An account's top-ups paid by these payments, for Credit History rows.
pub async fn by_payment_ids<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    payment_ids: &[String],
) -> StoreResult<Vec<Topup>> {
    if payment_ids.is_empty() {
        return Ok(Vec::new());
    }
    all(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RazorpayPaymentId.is_in(payment_ids.iter().cloned()))
        .all(conn)
        .await?)
}
