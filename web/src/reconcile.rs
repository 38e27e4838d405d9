//! Reconciliation: top-ups still unsettled after a while are checked with Razorpay (the order's
//! payments). Captured payments are credited, authorised ones captured and credited, late
//! authorisations found, and long-dead top-ups expired. Several instances may run it at once:
//! a lease on each top-up keeps them apart, and the ledger's keys keep it correct regardless.

use std::time::Duration;

use razorpay::wire::PaymentStatus;

use crate::{
    billing::{
        settle::{self, Outcome},
        topups,
    },
    db::{col, now_micros},
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub checked: usize,
    pub credited: usize,
    pub failed: usize,
    pub expired: usize,
    pub flagged: usize,
    pub errors: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checked {}, credited {}, failed {}, expired {}, flagged {}, errors {}",
            self.checked, self.credited, self.failed, self.expired, self.flagged, self.errors
        )
    }
}

/// Late authorisation can come days after a failure; failed top-ups are rechecked this long.
const RECHECK_FAILED_FOR_SECS: i64 = 5 * 24 * 3600;
const LEASE_SECS: i64 = 120;

/// One pass over every top-up due for a check.
pub async fn run_once(
    state: &AppState,
    min_age: Duration,
    expire_after: Duration,
) -> AppResult<Report> {
    let mut report = Report::default();
    let now = now_micros();
    let older_than = now - min_age.as_micros() as i64;
    let recheck_since = now - RECHECK_FAILED_FOR_SECS * 1_000_000;
    loop {
        let claimed = state
            .db
            .write_returning(
                "UPDATE web_topups SET reconcile_locked_until = ? WHERE id IN ( \
                   SELECT id FROM web_topups WHERE created_at <= ? AND \
                   (status IN ('creating', 'pending', 'cancelled') OR (status = 'failed' AND created_at > ?)) \
                   AND (reconcile_locked_until IS NULL OR reconcile_locked_until < ?) ORDER BY id LIMIT 50) \
                 AND (reconcile_locked_until IS NULL OR reconcile_locked_until < ?) RETURNING id",
                vec![(now + LEASE_SECS * 1_000_000).into(), older_than.into(), recheck_since.into(), now.into(), now.into()],
            )
            .await?;
        if claimed.is_empty() {
            return Ok(report);
        }
        for row in &claimed {
            let id: i64 = col(row, "id")?;
            report.checked += 1;
            match check(state, id, expire_after).await {
                Ok(Some(Outcome::Credited {
                    replayed: false, ..
                })) => report.credited += 1,
                Ok(Some(Outcome::Failed { .. })) => report.failed += 1,
                Ok(Some(Outcome::Flagged { .. })) => report.flagged += 1,
                Ok(None) => report.expired += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(topup = id, error = %e, "reconciliation could not check a top-up");
                    report.errors += 1;
                }
            }
        }
    }
}

/// Checks one top-up; `Ok(None)` when it was marked expired.
async fn check(state: &AppState, id: i64, expire_after: Duration) -> AppResult<Option<Outcome>> {
    let Some(topup) = topups::find(&state.db, id).await? else {
        return Ok(Some(Outcome::Pending));
    };
    let age = chrono::Utc::now() - topup.created_at;
    let dead = age.to_std().unwrap_or_default() >= expire_after;
    let Some(order_id) = topup.order_id.clone() else {
        // Recorded but its Razorpay order never came back: nobody could have paid it.
        if dead || topup.status == topups::Status::Creating {
            expire(state, id).await?;
            return Ok(None);
        }
        return Ok(Some(Outcome::Pending));
    };
    let payments = state
        .razorpay
        .order_payments(&order_id)
        .await
        .map_err(anyhow::Error::from)?
        .items;
    let best = payments
        .iter()
        .find(|p| matches!(p.status, PaymentStatus::Captured | PaymentStatus::Refunded))
        .or_else(|| {
            payments
                .iter()
                .find(|p| p.status == PaymentStatus::Authorized)
        })
        .or_else(|| {
            payments
                .iter()
                .rev()
                .find(|p| p.status == PaymentStatus::Failed)
        });
    match best {
        Some(payment)
            if payment.status != PaymentStatus::Failed
                || topup.status != topups::Status::Failed =>
        {
            Ok(Some(settle::apply_payment(state, &topup, payment).await?))
        }
        _ if dead && topup.status != topups::Status::Failed => {
            expire(state, id).await?;
            Ok(None)
        }
        _ => Ok(Some(Outcome::Pending)),
    }
}

async fn expire(state: &AppState, id: i64) -> AppResult<()> {
    state
        .db
        .exec(
            "UPDATE web_topups SET status = 'expired', updated_at = ? WHERE id = ? AND status IN ('creating', 'pending', 'cancelled')",
            vec![now_micros().into(), id.into()],
        )
        .await?;
    Ok(())
}

/// The reconciliation worker: one pass every `interval_secs` (0 turns it off).
pub fn spawn_worker(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let settings = state.settings.reconcile.clone();
    if settings.interval_secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(settings.interval_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run_once(
                &state,
                Duration::from_secs(settings.min_age_secs),
                Duration::from_secs(settings.expire_after_secs),
            )
            .await
            {
                Ok(report) if report.checked > 0 => tracing::info!(%report, "reconciliation"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "reconciliation failed"),
            }
        }
    }))
}

/// Every few seconds: lapse reservations whose time is up (their credits return), move what is
/// left of expired lots to the expiry account, and draw the debits made since from their lots
/// (the ledger draws them after the fact; anything that needs the lots draws first anyway).
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
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
        }
    })
}
