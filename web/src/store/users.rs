//! Accounts: an email, a password hash, and the account's wallet in the ledger.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, entity::prelude::*};

use sea_orm::sea_query::Expr;

use super::{FirstRow, StoreResult, Tx, Writer, inserted, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_users")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub email: String,
        pub password_hash: String,
        pub wallet_account_id: i64,
        pub created_at: i64,
        pub is_operator: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub wallet: ledger::AccountId,
    /// May use the operator pages under `/admin`.
    pub is_operator: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<entity::Model> for User {
    fn from(m: entity::Model) -> User {
        User {
            id: m.id,
            email: m.email,
            password_hash: m.password_hash,
            wallet: ledger::AccountId(m.wallet_account_id),
            is_operator: m.is_operator == 1,
            created_at: chrono::DateTime::from_timestamp_micros(m.created_at).unwrap_or_default(),
        }
    }
}

/// A new account; `None` when the email is taken (the unique email settles races).
pub async fn create(
    tx: &Tx<'_>,
    email: &str,
    password_hash: &str,
    wallet: ledger::AccountId,
) -> StoreResult<Option<i64>> {
    let row = ActiveModel {
        email: Set(email.to_string()),
        password_hash: Set(password_hash.to_string()),
        wallet_account_id: Set(wallet.0),
        created_at: Set(now_micros()),
        is_operator: Set(0),
        ..Default::default()
    };
    let done = Entity::insert(row)
        .on_conflict_do_nothing_on([Column::Email])
        .exec_without_returning(tx)
        .await?;
    if !inserted(done) {
        return Ok(None);
    }
    Ok(by_email(tx, email).await?.map(|u| u.id))
}

pub async fn by_email<C: ConnectionTrait>(conn: &C, email: &str) -> StoreResult<Option<User>> {
    Ok(Entity::find()
        .filter(Column::Email.eq(email))
        .first_row(conn)
        .await?
        .map(User::from))
}

pub async fn by_id<C: ConnectionTrait>(conn: &C, id: i64) -> StoreResult<Option<User>> {
    Ok(Entity::find_by_id(id)
        .first_row(conn)
        .await?
        .map(User::from))
}

/// The account whose wallet this is.
pub async fn by_wallet<C: ConnectionTrait>(
    conn: &C,
    wallet: ledger::AccountId,
) -> StoreResult<Option<User>> {
    Ok(Entity::find()
        .filter(Column::WalletAccountId.eq(wallet.0))
        .first_row(conn)
        .await?
        .map(User::from))
}

/// A new password hash for the account.
pub async fn set_password_hash(writer: &impl Writer, user_id: i64, hash: &str) -> StoreResult<()> {
    Entity::update_many()
        .col_expr(Column::PasswordHash, Expr::value(hash))
        .filter(Column::Id.eq(user_id))
        .exec(writer)
        .await?;
    Ok(())
}

/// Grants or takes away the operator role; false when no account has this email.
pub async fn set_operator(writer: &impl Writer, email: &str, operator: bool) -> StoreResult<bool> {
    Ok(Entity::update_many()
        .col_expr(Column::IsOperator, Expr::value(i64::from(operator)))
        .filter(Column::Email.eq(email))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}
