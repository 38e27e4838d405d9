//! Emails to send, written in the transaction that causes them. Nothing sends them yet: the
//! sender comes with the email work (the issue "GST receipts for every top-up, and the emails
//! customers expect"); until then they wait here.

use sea_orm::ActiveValue::Set;
use sea_orm::entity::prelude::*;

use super::{FirstRow, StoreResult, Writer, now_micros};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub kind: String,
        pub recipient: String,
        pub subject: String,
        pub body: String,
        pub created_at: i64,
        pub sent_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Entity};

pub async fn enqueue(
    writer: &impl Writer,
    kind: &str,
    recipient: &str,
    subject: &str,
    body: &str,
) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        kind: Set(kind.to_string()),
        recipient: Set(recipient.to_string()),
        subject: Set(subject.to_string()),
        body: Set(body.to_string()),
        created_at: Set(now_micros()),
        sent_at: Set(None),
        ..Default::default()
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// An email waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    pub id: i64,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Emails not sent yet, oldest first.
pub async fn unsent<C: sea_orm::ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> StoreResult<Vec<QueuedEmail>> {
    use sea_orm::{QueryOrder, QuerySelect};
    Ok(Entity::find()
        .filter(entity::Column::SentAt.is_null())
        .order_by_asc(entity::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| QueuedEmail {
            id: m.id,
            kind: m.kind,
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
        })
        .collect())
}

/// Emails waiting to be sent, and when the oldest was written (Unix microseconds).
pub async fn backlog<C: sea_orm::ConnectionTrait>(conn: &C) -> StoreResult<(u64, Option<i64>)> {
    use sea_orm::{PaginatorTrait, QueryOrder};
    let waiting = Entity::find()
        .filter(entity::Column::SentAt.is_null())
        .count(conn)
        .await?;
    let oldest = Entity::find()
        .filter(entity::Column::SentAt.is_null())
        .order_by_asc(entity::Column::Id)
        .first_row(conn)
        .await?
        .map(|m| m.created_at);
    Ok((waiting, oldest))
}
