//! API keys: only a SHA-256 of a key is stored; the key itself is shown once.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, QueryOrder, entity::prelude::*, sea_query::Expr};

use super::{FirstRow, StoreResult, Writer, now_micros, users};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_api_keys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub name: String,
        pub prefix: String,
        pub key_hash: String,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
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

/// A key as its page lists it (never the key).
#[derive(Debug, Clone)]
pub struct ApiKeyListing {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// The account a live key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: i64,
    pub user: users::User,
}

pub async fn of_user<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> StoreResult<Vec<ApiKeyListing>> {
    Ok(Entity::find()
        .filter(Column::UserId.eq(user_id))
        .order_by_desc(Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|k| ApiKeyListing {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
        .collect())
}

pub async fn create(
    writer: &impl Writer,
    user_id: i64,
    name: &str,
    prefix: &str,
    key_hash: &str,
) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        user_id: Set(user_id),
        name: Set(name.to_string()),
        prefix: Set(prefix.to_string()),
        key_hash: Set(key_hash.to_string()),
        created_at: Set(now_micros()),
        revoked_at: Set(None),
        ..Default::default()
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// Revokes an account's live key; false when it has no such key, or it was revoked already.
pub async fn revoke(writer: &impl Writer, id: i64, user_id: i64) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now_micros()))
        .filter(Column::Id.eq(id))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::RevokedAt.is_null())
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

pub async fn belongs_to<C: ConnectionTrait>(conn: &C, id: i64, user_id: i64) -> StoreResult<bool> {
    Ok(Entity::find_by_id(id)
        .filter(Column::UserId.eq(user_id))
        .first_row(conn)
        .await?
        .is_some())
}

/// The owner of a live key, by the key's hash.
pub async fn owner<C: ConnectionTrait>(conn: &C, key_hash: &str) -> StoreResult<Option<KeyOwner>> {
    Ok(Entity::find()
        .filter(Column::KeyHash.eq(key_hash))
        .filter(Column::RevokedAt.is_null())
        .find_also_related(users::entity::Entity)
        .first_row(conn)
        .await?
        .and_then(|(key, user)| {
            user.map(|user| KeyOwner {
                key_id: key.id,
                user: users::User::from(user),
            })
        }))
}
