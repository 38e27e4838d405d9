//! Reservations made through the API: the ledger's reservation, its service and messages.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, entity::prelude::*};

use super::{FirstRow, StoreResult, Writer, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ledger_reservation_id: i64,
        pub user_id: i64,
        pub service: String,
        pub unit_credits: i64,
        pub quantity: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// What a reservation is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationTerms {
    pub service: String,
    pub unit_credits: i64,
    pub quantity: i64,
}

impl From<entity::Model> for ReservationTerms {
    fn from(m: entity::Model) -> ReservationTerms {
        ReservationTerms {
            service: m.service,
            unit_credits: m.unit_credits,
            quantity: m.quantity,
        }
    }
}

pub async fn record(
    writer: &impl Writer,
    reservation: ledger::ReservationId,
    user_id: i64,
    terms: &ReservationTerms,
) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        ledger_reservation_id: Set(reservation.0),
        user_id: Set(user_id),
        service: Set(terms.service.clone()),
        unit_credits: Set(terms.unit_credits),
        quantity: Set(terms.quantity),
        created_at: Set(now_micros()),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

pub async fn terms<C: ConnectionTrait>(
    conn: &C,
    reservation: ledger::ReservationId,
) -> StoreResult<Option<ReservationTerms>> {
    Ok(Entity::find_by_id(reservation.0)
        .first_row(conn)
        .await?
        .map(ReservationTerms::from))
}

/// The terms of an account's reservation; another account's is the same as none.
pub async fn terms_of_user<C: ConnectionTrait>(
    conn: &C,
    reservation: ledger::ReservationId,
    user_id: i64,
) -> StoreResult<Option<ReservationTerms>> {
    Ok(Entity::find_by_id(reservation.0)
        .filter(Column::UserId.eq(user_id))
        .first_row(conn)
        .await?
        .map(ReservationTerms::from))
}
