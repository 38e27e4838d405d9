//! Sessions: only a SHA-256 of the cookie's token is stored, with its account and expiry.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, PaginatorTrait, entity::prelude::*};

use super::{FirstRow, StoreResult, Writer, users};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: i64,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::store::users::entity::Entity",
            from = "Column::UserId",
            to = "crate::store::users::entity::Column::Id"
        )]
        User,
    }

    impl Related<crate::store::users::entity::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::User.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

pub async fn create(
    writer: &impl Writer,
    token_hash: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        token_hash: Set(token_hash.to_string()),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// The account of a live session.
pub async fn user_of<C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
    now: i64,
) -> StoreResult<Option<users::User>> {
    Ok(Entity::find_by_id(token_hash.to_string())
        .filter(Column::ExpiresAt.gt(now))
        .find_also_related(users::entity::Entity)
        .first_row(conn)
        .await?
        .and_then(|(_, user)| user)
        .map(users::User::from))
}

pub async fn end(writer: &impl Writer, token_hash: &str) -> StoreResult<()> {
    Entity::delete_by_id(token_hash.to_string())
        .exec(writer)
        .await?;
    Ok(())
}

/// Ends every session of an account; how many there were.
pub async fn end_all(writer: &impl Writer, user_id: i64) -> StoreResult<u64> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .exec(writer)
        .await?
        .rows_affected)
}

pub async fn live_count<C: ConnectionTrait>(conn: &C, user_id: i64, now: i64) -> StoreResult<u64> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::ExpiresAt.gt(now))
        .count(conn)
        .await?)
}

/// Deletes up to `limit` sessions that expired before `now`; returns how many.
pub async fn purge_expired(writer: &impl Writer, now: i64, limit: u64) -> StoreResult<u64> {
    use sea_orm::{QuerySelect, QueryTrait};
    let due = Entity::find()
        .select_only()
        .column(Column::TokenHash)
        .filter(Column::ExpiresAt.lt(now))
        .limit(limit)
        .into_query();
    Ok(Entity::delete_many()
        .filter(Column::TokenHash.in_subquery(due))
        .exec(writer)
        .await?
        .rows_affected)
}
