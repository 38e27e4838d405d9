//! Payments on our orders that never credit anything: a second captured payment on an order
//! another payment already paid (we refund it in full), and a payment Razorpay returned itself
//! before it was captured. Customers see both in Credit History, with 0 credits.

use razorpay::Paise;
use sea_orm::{ActiveValue::Set, sea_query::ExprTrait};
use sea_orm::{
    ConnectionTrait, JoinType, QueryOrder, QuerySelect, entity::prelude::*, sea_query::Expr,
};

use super::{FirstRow, StoreError, StoreResult, Writer, inserted, now_micros, topups};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub payment_id: String,
        pub topup_id: i64,
        pub amount_paise: i64,
        pub kind: String,
        pub refund_id: Option<String>,
        pub refund_attempts: i64,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::store::topups::entity::Entity",
            from = "Column::TopupId",
            to = "crate::store::topups::entity::Column::Id"
        )]
        Topup,
    }

    impl Related<crate::store::topups::entity::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Topup.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UncreditedKind {
    /// Captured on an order another payment had already paid: refunded by us, in full.
    Duplicate,
    /// Returned by Razorpay before it was ever captured (its order was paid meanwhile, or
    /// nobody captured it within the capture window).
    Returned,
}

impl UncreditedKind {
    fn as_str(self) -> &'static str {
        match self {
            UncreditedKind::Duplicate => "duplicate",
            UncreditedKind::Returned => "returned",
        }
    }

    fn parse(s: &str) -> Result<UncreditedKind, StoreError> {
        match s {
            "duplicate" => Ok(UncreditedKind::Duplicate),
            "returned" => Ok(UncreditedKind::Returned),
            other => Err(StoreError::Db(DbErr::Custom(format!(
                "an uncredited payment has the unknown kind {other:?}"
            )))),
        }
    }

    /// How Credit History names it.
    pub fn label(self) -> &'static str {
        match self {
            UncreditedKind::Duplicate => "Duplicate payment refunded",
            UncreditedKind::Returned => "Payment returned by Razorpay",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UncreditedPayment {
    pub payment_id: String,
    pub topup_id: i64,
    pub amount: Paise,
    pub kind: UncreditedKind,
    /// Our refund of a duplicate, once Razorpay accepted it.
    pub refund_id: Option<String>,
    pub refund_attempts: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<entity::Model> for UncreditedPayment {
    type Error = StoreError;

    fn try_from(m: entity::Model) -> Result<Self, StoreError> {
        Ok(UncreditedPayment {
            kind: UncreditedKind::parse(&m.kind)?,
            payment_id: m.payment_id,
            topup_id: m.topup_id,
            amount: Paise(m.amount_paise),
            refund_id: m.refund_id,
            refund_attempts: m.refund_attempts,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        })
    }
}

fn all(rows: Vec<entity::Model>) -> StoreResult<Vec<UncreditedPayment>> {
    rows.into_iter().map(UncreditedPayment::try_from).collect()
}

/// Records a payment that credits nothing, once; true when it was new.
pub async fn record(
    writer: &impl Writer,
    topup_id: i64,
    payment_id: &str,
    amount: Paise,
    kind: UncreditedKind,
) -> StoreResult<bool> {
    let now = now_micros();
    let done = Entity::insert(ActiveModel {
        payment_id: Set(payment_id.to_string()),
        topup_id: Set(topup_id),
        amount_paise: Set(amount.0),
        kind: Set(kind.as_str().to_string()),
        refund_id: Set(None),
        refund_attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([Column::PaymentId])
    .exec_without_returning(writer)
    .await?;
    Ok(inserted(done))
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    payment_id: &str,
) -> StoreResult<Option<UncreditedPayment>> {
    Entity::find_by_id(payment_id.to_string())
        .first_row(conn)
        .await?
        .map(UncreditedPayment::try_from)
        .transpose()
}

/// Razorpay accepted our refund of a duplicate.
pub async fn refunded(writer: &impl Writer, payment_id: &str, refund_id: &str) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::RefundId, Expr::value(refund_id))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::PaymentId.eq(payment_id))
        .exec(writer)
        .await?;
    Ok(())
}

/// Our refund of a duplicate did not go through this time; reconciliation tries again.
pub async fn refund_failed(writer: &impl Writer, payment_id: &str, error: &str) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(
            Column::RefundAttempts,
            Expr::col(Column::RefundAttempts).add(1),
        )
        .col_expr(Column::LastError, Expr::value(error))
        .col_expr(Column::UpdatedAt, Expr::value(now_micros()))
        .filter(Column::PaymentId.eq(payment_id))
        .exec(writer)
        .await?;
    Ok(())
}

/// Duplicates not refunded yet, oldest first.
pub async fn refunds_due<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> StoreResult<Vec<UncreditedPayment>> {
    all(Entity::find()
        .filter(Column::Kind.eq(UncreditedKind::Duplicate.as_str()))
        .filter(Column::RefundId.is_null())
        .order_by_asc(Column::CreatedAt)
        .limit(limit)
        .all(conn)
        .await?)
}

/// A customer's uncredited payments recorded in `[from, to)` (Unix microseconds), newest first.
pub async fn of_user_between<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    from: i64,
    to: i64,
) -> StoreResult<Vec<UncreditedPayment>> {
    all(Entity::find()
        .join(JoinType::InnerJoin, entity::Relation::Topup.def())
        .filter(topups::entity::Column::UserId.eq(user_id))
        .filter(Column::CreatedAt.gte(from))
        .filter(Column::CreatedAt.lt(to))
        .order_by_desc(Column::CreatedAt)
        .all(conn)
        .await?)
}

/// Every uncredited payment of a top-up.
pub async fn of_topup<C: ConnectionTrait>(
    conn: &C,
    topup_id: i64,
) -> StoreResult<Vec<UncreditedPayment>> {
    all(Entity::find()
        .filter(Column::TopupId.eq(topup_id))
        .order_by_asc(Column::CreatedAt)
        .all(conn)
        .await?)
}
