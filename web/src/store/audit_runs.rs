//! Runs of the audit and what they found, newest last; Needs attention shows the latest.

use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, QueryOrder, entity::prelude::*};

use super::{FirstRow, StoreResult, Writer};

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_audit_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub ran_at: i64,
        pub days: i64,
        pub clean: i64,
        pub differences: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

#[derive(Debug, Clone)]
pub struct AuditRun {
    pub ran_at: chrono::DateTime<chrono::Utc>,
    pub days: i64,
    pub clean: bool,
    pub differences: Vec<String>,
}

pub async fn record(
    writer: &impl Writer,
    ran_at: i64,
    days: i64,
    clean: bool,
    differences: &[String],
) -> StoreResult<()> {
    // A difference never spans lines; one per line keeps the column plain text.
    let text = differences
        .iter()
        .map(|d| d.replace('\n', " "))
        .collect::<Vec<_>>()
        .join("\n");
    Entity::insert(ActiveModel {
        ran_at: Set(ran_at),
        days: Set(days),
        clean: Set(i64::from(clean)),
        differences: Set(text),
        ..Default::default()
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

pub async fn latest<C: ConnectionTrait>(conn: &C) -> StoreResult<Option<AuditRun>> {
    Ok(Entity::find()
        .order_by_desc(Column::Id)
        .first_row(conn)
        .await?
        .map(|m| AuditRun {
            ran_at: chrono::DateTime::from_timestamp_micros(m.ran_at).unwrap_or_default(),
            days: m.days,
            clean: m.clean == 1,
            differences: m
                .differences
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        }))
}
