//! Customers' requests to refund their unused paid credits: at most one open per account (a
//! partial unique index), decided once by an operator.

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ConnectionTrait, QueryOrder, QuerySelect,
    entity::prelude::*,
    sea_query::{Expr, OnConflict},
};

use super::{FirstRow, StoreError, StoreResult, Writer, inserted, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_refund_requests")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub status: String,
        pub created_at: i64,
        pub decided_at: Option<i64>,
        pub decided_by: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRequestStatus {
    Requested,
    Approved,
    Declined,
}

impl RefundRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundRequestStatus::Requested => "requested",
            RefundRequestStatus::Approved => "approved",
            RefundRequestStatus::Declined => "declined",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "requested" => RefundRequestStatus::Requested,
            "approved" => RefundRequestStatus::Approved,
            "declined" => RefundRequestStatus::Declined,
            other => {
                return Err(StoreError::Db(DbErr::Custom(format!(
                    "a refund request has the unknown status {other:?}"
                ))));
            }
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            RefundRequestStatus::Requested => "Waiting for review",
            RefundRequestStatus::Approved => "Approved",
            RefundRequestStatus::Declined => "Declined",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub id: i64,
    pub user_id: i64,
    pub status: RefundRequestStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<entity::Model> for RefundRequest {
    type Error = StoreError;
    fn try_from(m: entity::Model) -> StoreResult<Self> {
        Ok(RefundRequest {
            id: m.id,
            user_id: m.user_id,
            status: RefundRequestStatus::parse(&m.status)?,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
            decided_at: m
                .decided_at
                .and_then(chrono::DateTime::from_timestamp_micros),
        })
    }
}

fn all(rows: Vec<entity::Model>) -> StoreResult<Vec<RefundRequest>> {
    rows.into_iter().map(RefundRequest::try_from).collect()
}

/// Opens a request; false when the account already has one open.
pub async fn open(writer: &impl Writer, user_id: i64) -> StoreResult<bool> {
    let done = Entity::insert(ActiveModel {
        user_id: Set(user_id),
        status: Set(RefundRequestStatus::Requested.as_str().to_string()),
        created_at: Set(now_micros()),
        decided_at: Set(None),
        decided_by: Set(None),
        ..Default::default()
    })
    // No target: the conflict that matters is the partial unique index (one open request).
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .try_insert()
    .exec_without_returning(writer)
    .await?;
    Ok(inserted(done))
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: i64) -> StoreResult<Option<RefundRequest>> {
    Entity::find_by_id(id)
        .first_row(conn)
        .await?
        .map(RefundRequest::try_from)
        .transpose()
}

/// The account's open request, if any.
pub async fn open_of<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> StoreResult<Option<RefundRequest>> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Status.eq(RefundRequestStatus::Requested.as_str()))
        .first_row(conn)
        .await?
        .map(RefundRequest::try_from)
        .transpose()
}

/// Every open request, oldest first.
pub async fn all_open<C: ConnectionTrait>(conn: &C) -> StoreResult<Vec<RefundRequest>> {
    all(Entity::find()
        .filter(Column::Status.eq(RefundRequestStatus::Requested.as_str()))
        .order_by_asc(Column::Id)
        .all(conn)
        .await?)
}

/// An account's requests, newest first.
pub async fn of_user<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    limit: u64,
) -> StoreResult<Vec<RefundRequest>> {
    all(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Requested → approved or declined, once; false when it was already decided.
pub async fn decide(
    writer: &impl Writer,
    id: i64,
    status: RefundRequestStatus,
    operator_id: i64,
) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::DecidedAt, Expr::value(now_micros()))
        .col_expr(Column::DecidedBy, Expr::value(operator_id))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(RefundRequestStatus::Requested.as_str()))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

/// A request an operator starts is decided as it is made: returns its id.
pub async fn approved_by_operator(
    tx: &super::Tx<'_>,
    user_id: i64,
    operator_id: i64,
) -> StoreResult<i64> {
    let now = now_micros();
    let row = Entity::insert(ActiveModel {
        user_id: Set(user_id),
        status: Set(RefundRequestStatus::Approved.as_str().to_string()),
        created_at: Set(now),
        decided_at: Set(Some(now)),
        decided_by: Set(Some(operator_id)),
        ..Default::default()
    })
    .exec(tx)
    .await?;
    Ok(row.last_insert_id)
}
