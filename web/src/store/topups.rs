//! Top-ups, and the top-up state machine: every status a top-up can have and every move between
//! them, each a typed function with one guarded `UPDATE`. No other code writes a top-up's status.
//!
//! ```text
//!  (Add Credits) ──► creating ──order created──► pending ──cancel──► cancelled
//!  creating, pending, cancelled, failed ──payment failed, order refused──► failed
//!  creating, pending, cancelled ──never paid, too old──► expired
//!  any status but paid ──a payment credited it──► paid     (late authorisation included)
//!  any status but paid ──Razorpay reported something that does not fit──► flagged
//! ```
//!
//! `paid` is final: the one payment that credited the top-up is on it. Every move is guarded by
//! the statuses it may leave, so a report that comes late, twice or out of order moves nothing.

use razorpay::Paise;
use sea_orm::{ActiveValue::Set, sea_query::ExprTrait};
use sea_orm::{
    Condition, ConnectionTrait, QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, Query},
};

use super::{StoreError, StoreResult, Tx, now_micros};

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
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

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
    pub created_at: chrono::DateTime<chrono::Utc>,
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
    one(Entity::find_by_id(id).one(conn).await?)
}

/// A top-up of this user; another account's id is the same as none.
pub async fn find_owned<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    user_id: i64,
) -> StoreResult<Option<Topup>> {
    one(Entity::find_by_id(id)
        .filter(Column::UserId.eq(user_id))
        .one(conn)
        .await?)
}

/// The top-up as this transaction sees it, locked until the transaction ends (`FOR UPDATE` on
/// PostgreSQL; on SQLite the transaction already holds the single write lock), so that two
/// reports of payments or refunds on one top-up take their turns.
pub async fn lock(tx: &Tx<'_>, id: i64) -> StoreResult<Topup> {
    one(Entity::find_by_id(id).lock_exclusive().one(tx).await?)?
        .ok_or_else(|| StoreError::Db(DbErr::RecordNotFound(format!("top-up {id}"))))
}

pub async fn find_by_order<C: ConnectionTrait>(
    conn: &C,
    order_id: &str,
) -> StoreResult<Option<Topup>> {
    one(Entity::find()
        .filter(Column::RazorpayOrderId.eq(order_id))
        .one(conn)
        .await?)
}

/// The top-up this payment credited, if it credited one.
pub async fn find_by_payment<C: ConnectionTrait>(
    conn: &C,
    payment_id: &str,
) -> StoreResult<Option<Topup>> {
    one(Entity::find()
        .filter(Column::RazorpayPaymentId.eq(payment_id))
        .one(conn)
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

/// Top-ups still flagged for an operator.
pub async fn flagged<C: ConnectionTrait>(conn: &C) -> StoreResult<Vec<Topup>> {
    all(Entity::find()
        .filter(Column::Status.eq(TopupStatus::Flagged.as_str()))
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

/// Records a new top-up, `creating`, at the rate it was shown at. Returns its id.
pub async fn create(
    tx: &Tx<'_>,
    user_id: i64,
    amount: Paise,
    credits: i64,
    paise_per_credit: i64,
) -> StoreResult<i64> {
    let now = now_micros();
    let created = Entity::insert(ActiveModel {
        user_id: Set(user_id),
        amount_paise: Set(amount.0),
        credits: Set(credits),
        paise_per_credit: Set(paise_per_credit),
        status: Set(TopupStatus::Creating.as_str().to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        refunded_paise: Set(0),
        refund_taken: Set(0),
        refund_shortfall: Set(0),
        ..Default::default()
    })
    .exec_with_returning(tx)
    .await?;
    Ok(created.id)
}

/// A guarded move: sets `changes` on the top-up if its status is one of `from`.
async fn transition(
    tx: &Tx<'_>,
    id: i64,
    from: &[TopupStatus],
    changes: Vec<(Column, Expr)>,
) -> StoreResult<bool> {
    let mut update = Entity::update_many()
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in(from.iter().map(|s| s.as_str())));
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    Ok(update.exec(tx).await?.rows_affected == 1)
}

/// Every status but paid.
const NOT_PAID: &[TopupStatus] = &[
    TopupStatus::Creating,
    TopupStatus::Pending,
    TopupStatus::Failed,
    TopupStatus::Cancelled,
    TopupStatus::Expired,
    TopupStatus::Flagged,
];

/// creating → pending: Razorpay created the order.
pub async fn order_created(tx: &Tx<'_>, id: i64, order_id: &str) -> StoreResult<bool> {
    transition(
        tx,
        id,
        &[TopupStatus::Creating],
        vec![
            (Column::RazorpayOrderId, Expr::value(order_id)),
            (Column::Status, Expr::value(TopupStatus::Pending.as_str())),
        ],
    )
    .await
}

/// creating, pending, cancelled, failed → failed, with Razorpay's reason code (or ours, such as
/// `order_refused`). Never from paid.
pub async fn failed(tx: &Tx<'_>, id: i64, code: &str, method: Option<&str>) -> StoreResult<bool> {
    let mut changes = vec![
        (Column::Status, Expr::value(TopupStatus::Failed.as_str())),
        (Column::FailureCode, Expr::value(code)),
        (Column::BankPendingAt, Expr::value(Option::<i64>::None)),
    ];
    if let Some(method) = method {
        changes.push((Column::Method, Expr::value(method)));
    }
    transition(
        tx,
        id,
        &[
            TopupStatus::Creating,
            TopupStatus::Pending,
            TopupStatus::Failed,
            TopupStatus::Cancelled,
        ],
        changes,
    )
    .await
}

/// pending → cancelled: the customer cancelled it.
pub async fn cancelled(tx: &Tx<'_>, id: i64) -> StoreResult<bool> {
    transition(
        tx,
        id,
        &[TopupStatus::Pending],
        vec![(Column::Status, Expr::value(TopupStatus::Cancelled.as_str()))],
    )
    .await
}

/// creating, pending, cancelled → expired: nobody paid it, and it is too old to be paid now.
pub async fn expired(tx: &Tx<'_>, id: i64) -> StoreResult<bool> {
    transition(
        tx,
        id,
        &[
            TopupStatus::Creating,
            TopupStatus::Pending,
            TopupStatus::Cancelled,
        ],
        vec![(Column::Status, Expr::value(TopupStatus::Expired.as_str()))],
    )
    .await
}

/// Any status but paid → flagged, with the reason for the operator.
pub async fn flag(tx: &Tx<'_>, id: i64, reason: &str) -> StoreResult<bool> {
    tracing::warn!(topup = id, reason, "top-up flagged for an operator");
    transition(
        tx,
        id,
        NOT_PAID,
        vec![
            (Column::Status, Expr::value(TopupStatus::Flagged.as_str())),
            (Column::FlagReason, Expr::value(reason)),
        ],
    )
    .await
}

/// Any status but paid → paid, by this payment and this ledger credit. Only inside the
/// transaction that credits.
pub async fn paid(
    tx: &Tx<'_>,
    id: i64,
    payment_id: &str,
    method: &str,
    transfer_id: ledger::TransferId,
) -> StoreResult<bool> {
    transition(
        tx,
        id,
        NOT_PAID,
        vec![
            (Column::Status, Expr::value(TopupStatus::Paid.as_str())),
            (Column::RazorpayPaymentId, Expr::value(payment_id)),
            (Column::Method, Expr::value(method)),
            (Column::CreditedTransferId, Expr::value(transfer_id.0)),
            (Column::FailureCode, Expr::value(Option::<String>::None)),
            (Column::BankPendingAt, Expr::value(Option::<i64>::None)),
        ],
    )
    .await
}

/// Not a move: a check found the payment still `created` (the bank has not answered), which
/// the top-up's page says.
pub async fn bank_pending(tx: &Tx<'_>, id: i64) -> StoreResult<bool> {
    transition(
        tx,
        id,
        &[
            TopupStatus::Creating,
            TopupStatus::Pending,
            TopupStatus::Cancelled,
        ],
        vec![(
            Column::BankPendingAt,
            Expr::col(Column::BankPendingAt).if_null(now_micros()),
        )],
    )
    .await
}

/// Adds what a refund of the crediting payment changed to the top-up's refund totals.
pub async fn add_refund_totals(
    tx: &Tx<'_>,
    id: i64,
    refunded_paise: i64,
    taken: i64,
    shortfall: i64,
) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(
            Column::RefundedPaise,
            Expr::col(Column::RefundedPaise).add(refunded_paise),
        )
        .col_expr(
            Column::RefundTaken,
            Expr::col(Column::RefundTaken).add(taken),
        )
        .col_expr(
            Column::RefundShortfall,
            Expr::col(Column::RefundShortfall).add(shortfall),
        )
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::Id.eq(id))
        .exec(tx)
        .await?;
    Ok(())
}

fn check_free(now: i64) -> Condition {
    Condition::any()
        .add(Column::ReconcileLockedUntil.is_null())
        .add(Column::ReconcileLockedUntil.lt(now))
}

/// Claims up to `limit` top-ups due for reconciliation (created at or before `older_than`;
/// open, cancelled, or failed since `failed_since`), leasing them until `lease_until`: one
/// statement, so two instances never claim the same top-up.
pub async fn claim_for_reconciliation(
    tx: &Tx<'_>,
    now: i64,
    older_than: i64,
    failed_since: i64,
    lease_until: i64,
    limit: u64,
) -> StoreResult<Vec<i64>> {
    let due = Query::select()
        .column(Column::Id)
        .from(Entity)
        .and_where(Column::CreatedAt.lte(older_than))
        .cond_where(
            Condition::any()
                .add(Column::Status.is_in([
                    TopupStatus::Creating.as_str(),
                    TopupStatus::Pending.as_str(),
                    TopupStatus::Cancelled.as_str(),
                ]))
                .add(
                    Condition::all()
                        .add(Column::Status.eq(TopupStatus::Failed.as_str()))
                        .add(Column::CreatedAt.gt(failed_since)),
                ),
        )
        .cond_where(check_free(now))
        .order_by(Column::Id, sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    Ok(Entity::update_many()
        .col_expr(Column::ReconcileLockedUntil, Expr::value(lease_until))
        .filter(Column::Id.in_subquery(due))
        .filter(check_free(now))
        .exec_with_returning(tx)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// Takes one top-up's check lease until `lease_until` if nobody holds it; true when taken.
pub async fn claim_check(tx: &Tx<'_>, id: i64, now: i64, lease_until: i64) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::ReconcileLockedUntil, Expr::value(lease_until))
        .filter(Column::Id.eq(id))
        .filter(check_free(now))
        .exec(tx)
        .await?
        .rows_affected
        == 1)
}

/// Ends a check lease at `until`.
pub async fn release_check(tx: &Tx<'_>, id: i64, until: i64) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::ReconcileLockedUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        .exec(tx)
        .await?;
    Ok(())
}
