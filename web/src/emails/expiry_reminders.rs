//! "Credits expiring within 7 days": one email per lot that still has credits a week or less
//! before it expires, written once (its outbox key is the lot's).

use chrono::{Duration, Utc};

use crate::{
    emails::content,
    india::IST,
    services::{ServiceError, ServiceResult, Services},
    store::{outbox, users},
};

/// How far ahead customers are told.
pub const REMIND_WITHIN_DAYS: i64 = 7;

/// Writes the reminders due now; returns how many lots were looked at.
pub async fn queue_due(services: &Services) -> ServiceResult<usize> {
    let now = Utc::now();
    let lots = services
        .ledger
        .lots_expiring(now, now + Duration::days(REMIND_WITHIN_DAYS), 1_000)
        .await?;
    for lot in &lots {
        let Some(expires_at) = lot.expires_at else {
            continue;
        };
        let Some(user) = users::by_wallet(&services.reads, lot.wallet).await? else {
            continue;
        };
        let expires_on = expires_at
            .with_timezone(&IST)
            .format("%d %b %Y")
            .to_string();
        let email = content::credits_expiring(
            services.settings.public_url(),
            lot.remaining,
            &expires_on,
        )
        .map_err(|e| ServiceError::Invariant(format!("an email could not be written: {e}")))?;
        let (email, recipient, key) = (&email, &user.email, format!("expiring:{}", lot.id.0));
        let key = &key;
        services
            .ledger
            .autocommit(|writer| {
                Box::pin(async move {
                    outbox::enqueue(writer, email.to(recipient, None, Some(key.clone()))).await
                })
            })
            .await?;
    }
    Ok(lots.len())
}
