//! Reconciliation: what no callback or webhook told us, Razorpay's API does.
//!
//! - Top-ups still unsettled after a while are checked against their order's payments: captured
//!   ones credited (the first; any other is a duplicate, refunded), authorised ones captured,
//!   ones the bank has not answered shown as pending, failures recorded, late authorisations
//!   found, and long-dead top-ups expired.
//! - Razorpay's lists of recent payments and refunds are read from where the last pass stopped,
//!   so a refund or a second payment whose webhooks were lost is still applied.
//! - Pending refunds are asked after until they end; duplicates not yet refunded are refunded.
//!
//! Several instances may run it at once: a lease on each top-up keeps them apart, and the
//! ledger's keys and the top-up's lock keep it correct regardless.

use std::time::Duration;

use razorpay::wire::{ListQuery, Payment, PaymentStatus};

use crate::{
    billing::{
        lifecycle, refunds,
        settle::{self, PaymentOutcome},
        topups::{self, TopupStatus},
        uncredited,
    },
    db::{col, now_micros},
    error::AppResult,
    state::AppState,
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub checked: usize,
    pub credited: usize,
    pub failed: usize,
    pub expired: usize,
    pub flagged: usize,
    /// Second captured payments found on paid top-ups (refunded).
    pub duplicates: usize,
    /// Refunds read from Razorpay's list or followed up while pending.
    pub refunds_seen: usize,
    pub errors: usize,
}

impl std::fmt::Display for ReconcileReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checked {}, credited {}, failed {}, expired {}, flagged {}, duplicates {}, refunds seen {}, errors {}",
            self.checked,
            self.credited,
            self.failed,
            self.expired,
            self.flagged,
            self.duplicates,
            self.refunds_seen,
            self.errors
        )
    }
}

/// Late authorisation can come days after a failure; failed top-ups are rechecked this long.
const RECHECK_FAILED_FOR_SECS: i64 = 5 * 24 * 3600;
const LEASE_SECS: i64 = 120;
/// Razorpay's lists are read again from this long before where the last pass stopped: they can
/// lag by minutes.
const LIST_OVERLAP_SECS: i64 = 3600;
/// How far back the first pass of a new deployment reads Razorpay's lists.
const FIRST_LIST_WINDOW_SECS: i64 = 3 * 24 * 3600;
/// A pending refund is asked after once it has not changed for this long.
const PENDING_REFUND_AFTER: Duration = Duration::from_secs(60);

/// One pass: every top-up due for a check, then Razorpay's recent payments and refunds, pending
/// refunds and unrefunded duplicates.
pub async fn run_once(
    state: &AppState,
    min_age: Duration,
    expire_after: Duration,
) -> AppResult<ReconcileReport> {
    let mut report = ReconcileReport::default();
    check_due_topups(state, min_age, expire_after, &mut report).await?;
    for (what, result) in [
        ("payments", sweep_payments(state, &mut report).await),
        ("refunds", sweep_refunds(state, &mut report).await),
        (
            "pending refunds",
            follow_pending_refunds(state, &mut report).await,
        ),
        ("duplicate refunds", refund_duplicates(state).await),
    ] {
        if let Err(e) = result {
            tracing::warn!(error = %e, "reconciliation could not read Razorpay's {what}");
            report.errors += 1;
        }
    }
    Ok(report)
}

async fn check_due_topups(
    state: &AppState,
    min_age: Duration,
    expire_after: Duration,
    report: &mut ReconcileReport,
) -> AppResult<()> {
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
            return Ok(());
        }
        for row in &claimed {
            let id: i64 = col(row, "id")?;
            report.checked += 1;
            let checked = check(state, id, expire_after).await;
            // Done: the lease ends at this pass's start, so the next pass (and not this one)
            // checks it again.
            state
                .db
                .exec(
                    "UPDATE web_topups SET reconcile_locked_until = ? WHERE id = ?",
                    vec![now.into(), id.into()],
                )
                .await?;
            match checked {
                Ok(Checked::Outcome(PaymentOutcome::Credited {
                    replayed: false, ..
                })) => report.credited += 1,
                Ok(Checked::Outcome(PaymentOutcome::Failed { .. })) => report.failed += 1,
                Ok(Checked::Outcome(PaymentOutcome::Flagged { .. })) => report.flagged += 1,
                Ok(Checked::Expired) => report.expired += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(topup = id, error = %e, "reconciliation could not check a top-up");
                    report.errors += 1;
                }
            }
        }
    }
}

/// What checking one top-up came to.
#[derive(Debug)]
enum Checked {
    Outcome(PaymentOutcome),
    Expired,
    Nothing,
}

/// Checks one top-up against its order's payments at Razorpay.
async fn check(state: &AppState, id: i64, expire_after: Duration) -> AppResult<Checked> {
    let Some(topup) = topups::find(&state.db, id).await? else {
        return Ok(Checked::Nothing);
    };
    let age = chrono::Utc::now() - topup.created_at;
    let dead = age.to_std().unwrap_or_default() >= expire_after;
    let Some(order_id) = topup.order_id.clone() else {
        // Recorded but its Razorpay order never came back: nobody could have paid it.
        if dead || topup.status == TopupStatus::Creating {
            lifecycle::expired(&state.db.write, id).await?;
            return Ok(Checked::Expired);
        }
        return Ok(Checked::Nothing);
    };
    let mut payments = state
        .razorpay
        .order_payments(&order_id)
        .await
        .map_err(anyhow::Error::from)?
        .items;
    payments.sort_by_key(|p| p.created_at);
    let captured = |p: &&Payment| {
        p.status == PaymentStatus::Captured || (p.status == PaymentStatus::Refunded && p.captured)
    };
    // Every captured payment, oldest first: the first credits, any other is a duplicate.
    let mut outcome = None;
    for payment in payments.iter().filter(captured) {
        let result = settle::apply_payment(state, &topup, payment).await?;
        outcome.get_or_insert(result);
    }
    // Payments Razorpay returned without capturing them.
    for payment in payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Refunded && !p.captured)
    {
        settle::apply_payment(state, &topup, payment).await?;
    }
    if let Some(outcome) = outcome {
        return Ok(Checked::Outcome(outcome));
    }
    let latest = |status: PaymentStatus| payments.iter().rev().find(|p| p.status == status);
    if let Some(payment) = latest(PaymentStatus::Authorized).or(latest(PaymentStatus::Created)) {
        return Ok(Checked::Outcome(
            settle::apply_payment(state, &topup, payment).await?,
        ));
    }
    match latest(PaymentStatus::Failed) {
        Some(payment) if topup.status != TopupStatus::Failed => Ok(Checked::Outcome(
            settle::apply_payment(state, &topup, payment).await?,
        )),
        _ if dead && topup.status != TopupStatus::Failed => {
            lifecycle::expired(&state.db.write, id).await?;
            Ok(Checked::Expired)
        }
        _ => Ok(Checked::Nothing),
    }
}

/// Takes the top-up's check lease for `lease` if nobody holds it; true when taken.
pub async fn claim_check(state: &AppState, id: i64, lease: Duration) -> AppResult<bool> {
    let now = now_micros();
    Ok(state
        .db
        .exec(
            "UPDATE web_topups SET reconcile_locked_until = ? WHERE id = ? \
             AND (reconcile_locked_until IS NULL OR reconcile_locked_until < ?)",
            vec![
                (now + lease.as_micros() as i64).into(),
                id.into(),
                now.into(),
            ],
        )
        .await?
        == 1)
}

/// How often one top-up's page may ask Razorpay about it.
const PAGE_CHECK_LEASE: Duration = Duration::from_secs(5);

/// Checks one top-up now, in the background, unless it was checked in the last few seconds.
pub fn check_soon(state: &AppState, id: i64) {
    let state = state.clone();
    tokio::spawn(async move {
        let expire_after = Duration::from_secs(state.settings.reconcile.expire_after_secs);
        let result = async {
            if claim_check(&state, id, PAGE_CHECK_LEASE).await? {
                check(&state, id, expire_after).await?;
            }
            AppResult::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::info!(topup = id, error = %e, "could not check a top-up for its page");
        }
    });
}

/// Where a list was read up to (Unix seconds), and the time to read it from now.
async fn cursor(state: &AppState, name: &str) -> AppResult<i64> {
    let row = state
        .db
        .one(
            "SELECT position FROM web_cursors WHERE name = ?",
            vec![name.into()],
        )
        .await?;
    let now = chrono::Utc::now().timestamp();
    Ok(match row {
        Some(row) => col::<i64>(&row, "position")? - LIST_OVERLAP_SECS,
        None => now - FIRST_LIST_WINDOW_SECS,
    })
}

async fn advance(state: &AppState, name: &str, position: i64) -> AppResult<()> {
    state
        .db
        .exec(
            "INSERT INTO web_cursors (name, position) VALUES (?, ?) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            vec![name.into(), position.into()],
        )
        .await?;
    Ok(())
}

/// Pages of a Razorpay list from `from` on; calls `each` for every item.
const PAGE: u32 = 100;
/// At most this many pages per list and pass, so a backlog can't hold up the other checks.
const MAX_PAGES: u32 = 50;

/// Captured payments on our orders that credited nothing and are not recorded (their webhooks
/// were lost): the first on a top-up credits it, any other is a duplicate to refund.
async fn sweep_payments(state: &AppState, report: &mut ReconcileReport) -> AppResult<()> {
    let started = chrono::Utc::now().timestamp();
    let from = cursor(state, "payments").await?;
    for page in 0..MAX_PAGES {
        let items = state
            .razorpay
            .list_payments(&ListQuery {
                from: Some(from),
                to: None,
                count: Some(PAGE),
                skip: Some(page * PAGE),
            })
            .await
            .map_err(anyhow::Error::from)?
            .items;
        for payment in &items {
            let captured = payment.status == PaymentStatus::Captured
                || (payment.status == PaymentStatus::Refunded && payment.captured);
            if !captured {
                continue;
            }
            let Some(order_id) = payment.order_id.as_deref() else {
                continue;
            };
            let Some(topup) = topups::find_by_order(&state.db, order_id).await? else {
                continue;
            };
            if topup.credited_by(&payment.id)
                || uncredited::find(&state.db, &payment.id).await?.is_some()
            {
                continue;
            }
            match settle::apply_payment(state, &topup, payment).await? {
                PaymentOutcome::Duplicate => report.duplicates += 1,
                PaymentOutcome::Credited {
                    replayed: false, ..
                } => report.credited += 1,
                _ => {}
            }
        }
        if items.len() < PAGE as usize {
            break;
        }
    }
    advance(state, "payments", started).await
}

/// Refunds of our payments that are not recorded, or whose status moved on.
async fn sweep_refunds(state: &AppState, report: &mut ReconcileReport) -> AppResult<()> {
    let started = chrono::Utc::now().timestamp();
    let from = cursor(state, "refunds").await?;
    for page in 0..MAX_PAGES {
        let items = state
            .razorpay
            .list_refunds(&ListQuery {
                from: Some(from),
                to: None,
                count: Some(PAGE),
                skip: Some(page * PAGE),
            })
            .await
            .map_err(anyhow::Error::from)?
            .items;
        for refund in &items {
            let known = refunds::find(&state.db, &refund.id).await?;
            if known.is_some_and(|r| r.status == refund.status) {
                continue;
            }
            report.refunds_seen += 1;
            refunds::apply_refund(state, refund).await?;
        }
        if items.len() < PAGE as usize {
            break;
        }
    }
    advance(state, "refunds", started).await
}

/// Refunds still pending are asked after until they are processed or fail.
async fn follow_pending_refunds(state: &AppState, report: &mut ReconcileReport) -> AppResult<()> {
    for record in refunds::pending(&state.db, PENDING_REFUND_AFTER.as_micros() as i64, 100).await? {
        let refund = state
            .razorpay
            .fetch_refund(&record.refund_id)
            .await
            .map_err(anyhow::Error::from)?;
        report.refunds_seen += 1;
        refunds::apply_refund(state, &refund).await?;
    }
    Ok(())
}

/// Duplicates whose refund did not go through yet.
async fn refund_duplicates(state: &AppState) -> AppResult<()> {
    for payment in uncredited::refunds_due(&state.db, 50).await? {
        settle::refund_duplicate(state, &payment.payment_id).await?;
    }
    Ok(())
}

/// The reconciliation worker: one pass every `interval_secs` (0 turns it off), until `stop`.
pub fn spawn_worker(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let settings = state.settings.reconcile.clone();
    if settings.interval_secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(settings.interval_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            if *stop.borrow() {
                break;
            }
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

/// Every few seconds, until `stop`: lapse reservations whose time is up (their credits return),
/// move what is left of expired lots to the expiry account, draw the debits made since from
/// their lots (the ledger draws them after the fact; anything that needs the lots draws first
/// anyway), and forget rate-limit state of clients gone quiet.
pub fn spawn_housekeeping(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => {}
            }
            if *stop.borrow() {
                break;
            }
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
            state.address_limits.forget_idle();
            state.api_limits.forget_idle();
        }
    })
}
