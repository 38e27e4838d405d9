//! How far reconciliation has read Razorpay's lists, by name (Unix seconds).

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, entity::prelude::*, sea_query::OnConflict};

use super::{FirstRow, StoreResult, Writer};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub position: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

pub async fn get<C: ConnectionTrait>(conn: &C, name: &str) -> StoreResult<Option<i64>> {
    Ok(Entity::find_by_id(name.to_string())
        .first_row(conn)
        .await?
        .map(|c| c.position))
}

pub async fn set(writer: &impl Writer, name: &str, position: i64) -> StoreResult<()> {
    Entity::insert(ActiveModel {
        name: Set(name.to_string()),
        position: Set(position),
    })
    .on_conflict(
        OnConflict::column(Column::Name)
            .update_column(Column::Position)
            .to_owned(),
    )
    .exec_without_returning(writer)
    .await?;
    Ok(())
}
