//! The top-up state machine: every move between the statuses of `topups::TopupStatus`, each a
//! typed function with one guarded `UPDATE`, and the check leases reconciliation takes. No other
//! code writes a top-up's status.
//!
//! ```text
//!  (Add Credits) ──► creating ──order created──► pending ──cancel──► cancelled
//!  creating, pending, cancelled, failed ──payment failed, order refused──► failed
//!  creating, pending, cancelled ──never paid, too old──► expired
//!  any status but paid ──a payment credited it──► paid     (late authorisation included)
//!  any status but paid ──Razorpay reported something that does not fit──► flagged
//!  flagged ──an operator credits it as promised──► paid        (resolution `credited`)
//!  flagged ──an operator refunds its payment, or dismisses it──► flagged, resolved
//! ```
//!
//! `paid` is final: the one payment that credited the top-up is on it. Every move is guarded by
//! the statuses it may leave, so a report that comes late, twice or out of order moves nothing.

use razorpay::Paise;
use sea_orm::{
    ActiveValue::Set,
    Condition,
    entity::prelude::*,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    StoreResult, Writer, now_micros,
    topups::{
        FlagResolution, TopupStatus,
        entity::{ActiveModel, Column, Entity},
    },
};

/// Records a new top-up, `creating`, at the rate it was shown at. Returns its id.
pub async fn create(
    writer: &impl Writer,
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
    .exec_with_returning(writer)
    .await?;
    Ok(created.id)
}

/// A guarded move: sets `changes` on the top-up if its status is one of `from`.
async fn transition(
    writer: &impl Writer,
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
    Ok(update.exec(writer).await?.rows_affected == 1)
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
pub async fn order_created(writer: &impl Writer, id: i64, order_id: &str) -> StoreResult<bool> {
    transition(
        writer,
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
pub async fn failed(
    writer: &impl Writer,
    id: i64,
    code: &str,
    method: Option<&str>,
) -> StoreResult<bool> {
    let mut changes = vec![
        (Column::Status, Expr::value(TopupStatus::Failed.as_str())),
        (Column::FailureCode, Expr::value(code)),
        (Column::BankPendingAt, Expr::value(Option::<i64>::None)),
    ];
    if let Some(method) = method {
        changes.push((Column::Method, Expr::value(method)));
    }
    transition(
        writer,
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
pub async fn cancelled(writer: &impl Writer, id: i64) -> StoreResult<bool> {
    transition(
        writer,
        id,
        &[TopupStatus::Pending],
        vec![(Column::Status, Expr::value(TopupStatus::Cancelled.as_str()))],
    )
    .await
}

/// creating, pending, cancelled → expired: nobody paid it, and it is too old to be paid now.
pub async fn expired(writer: &impl Writer, id: i64) -> StoreResult<bool> {
    transition(
        writer,
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

/// Any status but paid → flagged, with the reason and the payment, for the operator.
pub async fn flag(
    writer: &impl Writer,
    id: i64,
    reason: &str,
    payment_id: Option<&str>,
) -> StoreResult<bool> {
    tracing::warn!(topup = id, reason, "top-up flagged for an operator");
    transition(
        writer,
        id,
        NOT_PAID,
        vec![
            (Column::Status, Expr::value(TopupStatus::Flagged.as_str())),
            (Column::FlagReason, Expr::value(reason)),
            (Column::FlaggedPaymentId, Expr::value(payment_id)),
        ],
    )
    .await
}

/// Flagged and unresolved → paid, credited as promised by an operator with this payment and
/// ledger credit. Only inside the transaction that credits.
pub async fn resolve_credited(
    writer: &impl Writer,
    id: i64,
    payment_id: &str,
    method: &str,
    transfer_id: ledger::TransferId,
) -> StoreResult<bool> {
    resolve_open_flag(
        writer,
        id,
        FlagResolution::Credited,
        vec![
            (Column::Status, Expr::value(TopupStatus::Paid.as_str())),
            (Column::RazorpayPaymentId, Expr::value(payment_id)),
            (Column::Method, Expr::value(method)),
            (Column::CreditedTransferId, Expr::value(transfer_id.0)),
        ],
    )
    .await
}

/// Flagged and unresolved → flagged, resolved (its payment refunded, or dismissed).
pub async fn resolve_flag(
    writer: &impl Writer,
    id: i64,
    resolution: FlagResolution,
) -> StoreResult<bool> {
    resolve_open_flag(writer, id, resolution, Vec::new()).await
}

/// The one guarded `UPDATE` of a flagged top-up's resolution: only while it is flagged and
/// unresolved, so two operators resolve it once.
async fn resolve_open_flag(
    writer: &impl Writer,
    id: i64,
    resolution: FlagResolution,
    changes: Vec<(Column, Expr)>,
) -> StoreResult<bool> {
    let mut update = Entity::update_many()
        .col_expr(Column::Resolution, Expr::value(resolution.as_str()))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(TopupStatus::Flagged.as_str()))
        .filter(Column::Resolution.is_null());
    for (column, value) in changes {
        update = update.col_expr(column, value);
    }
    Ok(update.exec(writer).await?.rows_affected == 1)
}

/// Any status but paid → paid, by this payment and this ledger credit. Only inside the
/// transaction that credits.
pub async fn paid(
    writer: &impl Writer,
    id: i64,
    payment_id: &str,
    method: &str,
    transfer_id: ledger::TransferId,
) -> StoreResult<bool> {
    transition(
        writer,
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
pub async fn bank_pending(writer: &impl Writer, id: i64) -> StoreResult<bool> {
    transition(
        writer,
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
    writer: &impl Writer,
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
        .exec(writer)
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
    writer: &impl Writer,
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
        .exec_with_returning(writer)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect())
}

/// Takes one top-up's check lease until `lease_until` if nobody holds it; true when taken.
pub async fn claim_check(
    writer: &impl Writer,
    id: i64,
    now: i64,
    lease_until: i64,
) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::ReconcileLockedUntil, Expr::value(lease_until))
        .filter(Column::Id.eq(id))
        .filter(check_free(now))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

/// Ends a check lease at `until`.
pub async fn release_check(writer: &impl Writer, id: i64, until: i64) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::ReconcileLockedUntil, Expr::value(until))
        .filter(Column::Id.eq(id))
        .exec(writer)
        .await?;
    Ok(())
}
