//! The answers given to charges, keyed by the ledger transfer each answers for (found through
//! the ledger's unique key, which holds a hash of the caller's `Idempotency-Key`): a retry gets
//! the original answer.

use std::collections::HashMap;

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, entity::prelude::*};

use super::{StoreResult, Tx};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_charge_answers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub transfer_id: i64,
        pub user_id: i64,
        pub request_hash: String,
        pub status: i64,
        pub response: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// An answer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: i64,
    pub response: String,
}

/// A new answer to store.
pub struct NewAnswer {
    pub transfer_id: i64,
    pub user_id: i64,
    pub request_hash: String,
    pub response: String,
}

/// Rows per multi-row statement.
const CHUNK: usize = 500;

/// Stores a batch's answers (201s), a multi-row insert per 500.
pub async fn store(tx: &Tx<'_>, answers: Vec<NewAnswer>, now: i64) -> StoreResult<()> {
    let mut answers = answers.into_iter().peekable();
    while answers.peek().is_some() {
        let chunk: Vec<ActiveModel> = answers
            .by_ref()
            .take(CHUNK)
            .map(|a| ActiveModel {
                transfer_id: Set(a.transfer_id),
                user_id: Set(a.user_id),
                request_hash: Set(a.request_hash),
                status: Set(201),
                response: Set(a.response),
                created_at: Set(now),
            })
            .collect();
        Entity::insert_many(chunk)
            .on_conflict_do_nothing_on([Column::TransferId])
            .exec_without_returning(tx)
            .await?;
    }
    Ok(())
}

/// The answers stored for these transfers.
pub async fn for_transfers<C: ConnectionTrait>(
    conn: &C,
    transfers: &[i64],
) -> StoreResult<HashMap<i64, StoredAnswer>> {
    let mut found = HashMap::new();
    for chunk in transfers.chunks(CHUNK) {
        for row in Entity::find()
            .filter(Column::TransferId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
        {
            found.insert(
                row.transfer_id,
                StoredAnswer {
                    request_hash: row.request_hash,
                    status: row.status,
                    response: row.response,
                },
            );
        }
    }
    Ok(found)
}
