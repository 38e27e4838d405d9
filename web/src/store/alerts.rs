//! Low-balance alerts: each account's threshold and whether it is armed, and the alerts fired.

use std::collections::HashMap;

use sea_orm::ActiveValue::Set;
use sea_orm::{
    ConnectionTrait, QueryOrder,
    entity::prelude::*,
    sea_query::{Expr, OnConflict},
};

use super::{FirstRow, StoreResult, Writer, now_micros};

pub(crate) mod settings {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_alert_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub threshold: i64,
        pub armed: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod fired {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "web_alerts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: i64,
        pub threshold: i64,
        pub balance: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An account's low-balance alert level, and whether crossing it would fire (an alert fires once
/// per crossing, then waits until the balance is back at or above the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSetting {
    pub threshold: i64,
    pub armed: bool,
}

impl From<settings::Model> for AlertSetting {
    fn from(m: settings::Model) -> AlertSetting {
        AlertSetting {
            threshold: m.threshold,
            armed: m.armed == 1,
        }
    }
}

pub async fn setting<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
) -> StoreResult<Option<AlertSetting>> {
    Ok(settings::Entity::find_by_id(user_id)
        .first_row(conn)
        .await?
        .map(AlertSetting::from))
}

/// The settings of many accounts, in one query per 500.
pub async fn settings_of<C: ConnectionTrait>(
    conn: &C,
    users: &[i64],
) -> StoreResult<HashMap<i64, AlertSetting>> {
    let mut found = HashMap::new();
    for chunk in users.chunks(500) {
        for row in settings::Entity::find()
            .filter(settings::Column::UserId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?
        {
            found.insert(row.user_id, AlertSetting::from(row));
        }
    }
    Ok(found)
}

/// Gives an account its setting (the default threshold, armed) unless it has one.
pub async fn ensure(writer: &impl Writer, user_id: i64, default_threshold: i64) -> StoreResult<()> {
    settings::Entity::insert(settings::ActiveModel {
        user_id: Set(user_id),
        threshold: Set(default_threshold),
        armed: Set(1),
    })
    .on_conflict_do_nothing_on([settings::Column::UserId])
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

pub async fn set(
    writer: &impl Writer,
    user_id: i64,
    threshold: i64,
    armed: bool,
) -> StoreResult<()> {
    settings::Entity::insert(settings::ActiveModel {
        user_id: Set(user_id),
        threshold: Set(threshold),
        armed: Set(i64::from(armed)),
    })
    .on_conflict(
        OnConflict::column(settings::Column::UserId)
            .update_columns([settings::Column::Threshold, settings::Column::Armed])
            .to_owned(),
    )
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// Disarms the alert if it is armed and the balance is below its level: the claim that lets one
/// of concurrent crossings fire. True when this call fired it.
pub async fn disarm_below(writer: &impl Writer, user_id: i64, available: i64) -> StoreResult<bool> {
    Ok(settings::Entity::update_many()
        .col_expr(settings::Column::Armed, Expr::value(0))
        .filter(settings::Column::UserId.eq(user_id))
        .filter(settings::Column::Armed.eq(1))
        .filter(settings::Column::Threshold.gt(available))
        .exec(writer)
        .await?
        .rows_affected
        == 1)
}

/// Re-arms the alert once the balance is back at or above its level.
pub async fn rearm_at_or_above(
    writer: &impl Writer,
    user_id: i64,
    available: i64,
) -> StoreResult<()> {
    settings::Entity::update_many()
        .col_expr(settings::Column::Armed, Expr::value(1))
        .filter(settings::Column::UserId.eq(user_id))
        .filter(settings::Column::Armed.eq(0))
        .filter(settings::Column::Threshold.lte(available))
        .exec(writer)
        .await?;
    Ok(())
}

pub async fn record_fired(
    writer: &impl Writer,
    user_id: i64,
    threshold: i64,
    balance: i64,
) -> StoreResult<()> {
    fired::Entity::insert(fired::ActiveModel {
        user_id: Set(user_id),
        threshold: Set(threshold),
        balance: Set(balance),
        created_at: Set(now_micros()),
        ..Default::default()
    })
    .exec_without_returning(writer)
    .await?;
    Ok(())
}

/// The newest alert (its level and the balance then), while the alert is disarmed.
pub async fn active<C: ConnectionTrait>(conn: &C, user_id: i64) -> StoreResult<Option<(i64, i64)>> {
    if setting(conn, user_id).await?.is_none_or(|s| s.armed) {
        return Ok(None);
    }
    Ok(fired::Entity::find()
        .filter(fired::Column::UserId.eq(user_id))
        .order_by_desc(fired::Column::Id)
        .first_row(conn)
        .await?
        .map(|a| (a.threshold, a.balance)))
}

/// How many alerts an account has had.
pub async fn fired_count<C: ConnectionTrait>(conn: &C, user_id: i64) -> StoreResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(fired::Entity::find()
        .filter(fired::Column::UserId.eq(user_id))
        .count(conn)
        .await?)
}
