//! The app's background work, each until told to stop (a round under way is finished first):
//! the webhook inbox, reconciliation with Razorpay, the email sender, and housekeeping.

use std::time::Duration;

use crate::{
    emails::{expiry_reminders, outbox_sender},
    readiness::Worker,
    reconcile,
    state::AppState,
    webhooks::inbox,
};

/// Runs the worker until `stop`: on every stored event, and every few seconds for retries. A
/// round under way when `stop` comes is finished first.
pub fn spawn_webhook_worker(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    state.readiness.expect(Worker::Webhooks, 60);
    tokio::spawn(async move {
        while !*stop.borrow() {
            state.readiness.beat(Worker::Webhooks);
            if let Err(e) = inbox::process_pending(&state.services).await {
                tracing::error!(error = %e, "webhook worker");
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::timeout(Duration::from_secs(2), state.webhook_wakeup.notified()) => {}
            }
        }
    })
}

/// The reconciliation worker: one pass every `interval_secs` (0 turns it off), until `stop`.
pub fn spawn_reconciliation(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let settings = state.settings.reconcile.clone();
    if settings.interval_secs == 0 {
        state.readiness.not_wanted(Worker::Reconciliation);
        return None;
    }
    // A pass may take a while (Razorpay's lists, rate limits): three intervals and ten minutes.
    let allowance = i64::try_from(settings.interval_secs.saturating_mul(3)).unwrap_or(i64::MAX / 2);
    state
        .readiness
        .expect(Worker::Reconciliation, allowance.saturating_add(600));
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(settings.interval_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !next_tick(&mut ticker, &mut stop).await {
                break;
            }
            state.readiness.beat(Worker::Reconciliation);
            match reconcile::run_once(
                &state.services,
                Duration::from_secs(settings.min_age_secs),
                Duration::from_secs(settings.expire_after_secs),
            )
            .await
            {
                Ok(report) => {
                    report.count_in_metrics();
                    if report.checked > 0 {
                        tracing::info!(%report, "reconciliation");
                    }
                }
                Err(e) => tracing::error!(error = %e, "reconciliation failed"),
            }
        }
    }))
}

/// Sends the outbox every couple of seconds, until `stop`; not started without an SMTP server
/// (`email.smtp_url` empty: emails wait).
pub fn spawn_email_sender(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let Some(mailer) = state.mailer.clone() else {
        state.readiness.not_wanted(Worker::Emails);
        tracing::warn!("no SMTP server (KALP__EMAIL__SMTP_URL): emails wait in the outbox");
        return None;
    };
    // A round sends up to `batch` emails, each within the transport's 20 s timeout.
    let allowance = i64::try_from(state.settings.email.batch)
        .unwrap_or(1_000)
        .saturating_mul(25)
        .saturating_add(60);
    state.readiness.expect(Worker::Emails, allowance);
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(2));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !next_tick(&mut ticker, &mut stop).await {
                break;
            }
            state.readiness.beat(Worker::Emails);
            match outbox_sender::send_due(&state.services, &mailer).await {
                Ok(report) if report != outbox_sender::SendReport::default() => {
                    tracing::info!(%report, "outbox")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "sending the outbox failed"),
            }
        }
    }))
}

/// Every few seconds, until `stop`: write reminders of credits expiring within a week (every ten
/// minutes), lapse reservations whose time is up (their credits return),
/// move what is left of expired lots to the expiry account, draw the debits made since from
/// their lots (the ledger draws them after the fact; anything that needs the lots draws first
/// anyway), purge old operational rows (`retention`), and forget rate-limit state of clients
/// gone quiet.
pub fn spawn_housekeeping(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    state.readiness.expect(Worker::Housekeeping, 120);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        let mut round: u64 = 0;
        loop {
            if !next_tick(&mut ticker, &mut stop).await {
                break;
            }
            state.readiness.beat(Worker::Housekeeping);
            // Reminders of expiring credits: on start, then every ten minutes.
            if round.is_multiple_of(120)
                && let Err(e) = expiry_reminders::queue_due(&state.services).await
            {
                tracing::error!(error = %e, "writing reminders of expiring credits failed");
            }
            round = round.wrapping_add(1);
            let now = chrono::Utc::now();
            if let Err(e) = state.ledger.expire_reservations(now).await {
                tracing::error!(error = %e, "expiring reservations failed");
            }
            if let Err(e) = state.ledger.expire_lots(now).await {
                tracing::error!(error = %e, "expiring lots failed");
            }
            if let Err(e) = state.ledger.draw_pending().await {
                tracing::error!(error = %e, "drawing debits from their lots failed");
            }
            match crate::retention::purge_once(&state.services, &state.settings.retention).await {
                Ok(purged) if purged != crate::retention::Purged::default() => {
                    tracing::info!(?purged, "old operational rows purged")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "purging old rows failed"),
            }
            state.address_limits.forget_idle();
            state.api_limits.forget_idle();
            // Histograms keep samples until this runs: memory stays flat between scrapes.
            if let Some(metrics) = &state.metrics {
                metrics.run_upkeep();
            }
        }
    })
}

/// Waits for the next tick of a periodic task: false once `stop` changes (or its sender is
/// gone), so the task ends between rounds, never inside one.
async fn next_tick(
    ticker: &mut tokio::time::Interval,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        _ = stop.changed() => return false,
        _ = ticker.tick() => {}
    }
    !*stop.borrow()
}
