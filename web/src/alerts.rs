//! Low-balance alerts: when a balance falls below the account's threshold, one alert is recorded
//! (shown on the Dashboard) and one email queued in the outbox, in one transaction; no more until
//! the balance has been back at or above the threshold.

use crate::{
    services::Services,
    store::{
        StoreResult,
        alerts::{self as stored, AlertSetting},
        outbox,
    },
};

/// The account's threshold (created with the configured default on first use).
pub async fn threshold(services: &Services, user_id: i64) -> StoreResult<i64> {
    let default = services.settings.usage.default_alert_threshold;
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { stored::ensure(writer, user_id, default).await })
        })
        .await?;
    Ok(stored::setting(&services.reads, user_id)
        .await?
        .map_or(0, |s| s.threshold))
}

/// A new threshold; armed unless the balance is already below it.
pub async fn set_threshold(
    services: &Services,
    user_id: i64,
    value: i64,
    available: i64,
) -> StoreResult<()> {
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { stored::set(writer, user_id, value, available >= value).await })
        })
        .await
}

/// Call after anything that changed a balance, with the balance now available. Reads only,
/// unless the threshold is crossed (the hot path of charging stays free of extra writes).
pub async fn after_balance_change(
    services: &Services,
    user_id: i64,
    email: &str,
    available: i64,
) -> StoreResult<()> {
    let setting = stored::setting(&services.reads, user_id).await?;
    after_balance_change_with(services, user_id, email, available, setting).await
}

/// [`after_balance_change`] with the setting already read (`None`: the account has none yet).
pub async fn after_balance_change_with(
    services: &Services,
    user_id: i64,
    email: &str,
    available: i64,
    setting: Option<AlertSetting>,
) -> StoreResult<()> {
    let (threshold, armed) = match setting {
        Some(s) => (s.threshold, s.armed),
        None => (threshold(services, user_id).await?, true),
    };
    if threshold == 0 {
        return Ok(());
    }
    if available >= threshold {
        if !armed {
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(
                        async move { stored::rearm_at_or_above(writer, user_id, available).await },
                    )
                })
                .await?;
        }
        return Ok(());
    }
    if !armed {
        return Ok(());
    }
    let content =
        crate::emails::content::low_balance(services.settings.public_url(), available, threshold)
            .map_err(|e| {
            crate::store::StoreError::Db(sea_orm::DbErr::Custom(format!(
                "the low-balance email could not be written: {e}"
            )))
        })?;
    let content = &content;
    // Disarming is the claim: of concurrent requests that cross the threshold, one fires. The
    // claim, the alert and its email commit together (retried whole on a transient failure).
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                if stored::disarm_below(tx, user_id, available).await? {
                    stored::record_fired(tx, user_id, threshold, available).await?;
                    outbox::enqueue(tx, content.to(email, None, None)).await?;
                }
                StoreResult::Ok(())
            })
        })
        .await
}

/// The newest alert (its level and the balance then), while the balance is still below it.
pub async fn active(services: &Services, user_id: i64) -> StoreResult<Option<(i64, i64)>> {
    stored::active(&services.reads, user_id).await
}
