//! Retention: expired sessions, old log-in attempt counters and webhook events processed long
//! ago are deleted by housekeeping, a bounded batch per table per round, so no round holds the
//! writer for long. Ledger data and money records (top-ups, refunds, payments, operator actions)
//! are never purged.

use crate::{
    configuration::RetentionSettings,
    services::{ServiceResult, Services},
    store::{auth_attempts, now_micros, sessions, webhook_events},
};

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub auth_attempts: u64,
    pub webhook_events: u64,
}

const HOUR_MICROS: i64 = 3_600_000_000;

pub async fn purge_once(
    services: &Services,
    settings: &RetentionSettings,
) -> ServiceResult<Purged> {
    let now = now_micros();
    let limit = settings.batch.max(1);
    let sessions = services
        .ledger
        .autocommit(|w| Box::pin(async move { sessions::purge_expired(w, now, limit).await }))
        .await?;
    let attempts_before = now - settings.auth_attempt_hours.max(1) * HOUR_MICROS;
    let auth_attempts = services
        .ledger
        .autocommit(|w| {
            Box::pin(async move { auth_attempts::purge_before(w, attempts_before, limit).await })
        })
        .await?;
    let events_before = now - settings.webhook_event_days.max(1) * 24 * HOUR_MICROS;
    let webhook_events = services
        .ledger
        .autocommit(|w| {
            Box::pin(async move {
                webhook_events::purge_processed_before(w, events_before, limit).await
            })
        })
        .await?;
    Ok(Purged {
        sessions,
        auth_attempts,
        webhook_events,
    })
}
