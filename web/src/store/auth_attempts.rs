//! Log-in attempts per key (an account, or an account and an address), one row per key.

use sea_orm::{ActiveValue::Set, sea_query::ExprTrait};
use sea_orm::{
    entity::prelude::*,
    sea_query::{Expr, OnConflict},
};

use super::{StoreError, StoreResult, Writer};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_auth_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub window_start: i64,
        pub attempts: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// Adds one attempt to `key`'s window (a fresh window once the old one is over) and returns the
/// count: one statement, so concurrent attempts are each counted, none missed.
pub async fn count(
    writer: &impl Writer,
    key: &str,
    now: i64,
    window_micros: i64,
) -> StoreResult<i64> {
    let expired = now - window_micros;
    let window_over = Expr::col((Entity, Column::WindowStart)).lte(expired);
    let model = Entity::insert(ActiveModel {
        key: Set(key.to_string()),
        window_start: Set(now),
        attempts: Set(1),
    })
    .on_conflict(
        OnConflict::column(Column::Key)
            .value(
                Column::Attempts,
                Expr::case(window_over.clone(), 1)
                    .finally(Expr::col((Entity, Column::Attempts)).add(1)),
            )
            .value(
                Column::WindowStart,
                Expr::case(window_over, now).finally(Expr::col((Entity, Column::WindowStart))),
            )
            .to_owned(),
    )
    .exec_with_returning(writer)
    .await
    .map_err(StoreError::from)?;
    Ok(model.attempts)
}

/// Forgets a key's attempts (a successful log-in from that address).
pub async fn clear(writer: &impl Writer, key: &str) -> StoreResult<()> {
    Entity::delete_by_id(key.to_string()).exec(writer).await?;
    Ok(())
}

/// Deletes up to `limit` counters whose window began before `before` (long over); returns how
/// many.
pub async fn purge_before(writer: &impl Writer, before: i64, limit: u64) -> StoreResult<u64> {
    use sea_orm::{QuerySelect, QueryTrait};
    let due = Entity::find()
        .select_only()
        .column(Column::Key)
        .filter(Column::WindowStart.lt(before))
        .limit(limit)
        .into_query();
    Ok(Entity::delete_many()
        .filter(Column::Key.in_subquery(due))
        .exec(writer)
        .await?
        .rows_affected)
}
