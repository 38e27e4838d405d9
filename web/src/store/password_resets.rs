//! Password-reset tokens: only their SHA-256 is stored, with the account, an expiry, and when it
//! was used. Using one is one statement, so a link works once however many tabs submit it.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ConnectionTrait, PaginatorTrait, entity::prelude::*};

use super::{FirstRow, StoreResult, Writer};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_password_resets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub user_id: i64,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

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
        used_at: Set(None),
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// The account of a token that is unused and unexpired at `now`.
pub async fn valid_user<C: ConnectionTrait>(
    conn: &C,
    token_hash: &str,
    now: i64,
) -> StoreResult<Option<i64>> {
    Ok(Entity::find_by_id(token_hash.to_string())
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .first_row(conn)
        .await?
        .map(|m| m.user_id))
}

/// Uses the token if it is still valid: true for the one caller that did.
pub async fn consume(
    writer: &impl Writer,
    token_hash: &str,
    user_id: i64,
    now: i64,
) -> StoreResult<bool> {
    let result = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::TokenHash.eq(token_hash))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .exec(writer)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Every other outstanding link of the account stops working (a password was just chosen).
pub async fn retire_all(writer: &impl Writer, user_id: i64, now: i64) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::UsedAt.is_null())
        .exec(writer)
        .await?;
    Ok(())
}

/// Links asked for the account since `since` (to bound how many emails one can trigger).
pub async fn asked_since<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    since: i64,
) -> StoreResult<u64> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::CreatedAt.gt(since))
        .count(conn)
        .await?)
}
