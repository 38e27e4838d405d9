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
        crediting::{self, PaymentOutcome},
        refunds,
    },
    services::{ServiceResult, Services},
    store::{
        self, cursors, now_micros, payments, topup_moves,
        topups::{self, TopupStatus},
    },
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

impl ReconcileReport {
    /// Adds this pass's finds to `kalp_reconcile_finds_total`.
    pub fn count_in_metrics(&self) {
        for (kind, n) in [
            ("credited", self.credited),
            ("failed", self.failed),
            ("expired", self.expired),
            ("flagged", self.flagged),
            ("duplicates", self.duplicates),
            ("refunds_seen", self.refunds_seen),
            ("errors", self.errors),
        ] {
            if n > 0 {
                metrics::counter!("kalp_reconcile_finds_total", "kind" => kind).increment(n as u64);
            }
        }
    }
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
/// Top-ups claimed per round.
const CLAIM: u64 = 50;
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
    services: &Services,
    min_age: Duration,
    expire_after: Duration,
) -> ServiceResult<ReconcileReport> {
    let mut report = ReconcileReport::default();
    check_due_topups(services, min_age, expire_after, &mut report).await?;
    for (what, result) in [
        ("payments", sweep_payments(services, &mut report).await),
        ("refunds", sweep_refunds(services, &mut report).await),
        (
            "pending refunds",
            follow_pending_refunds(services, &mut report).await,
        ),
        ("duplicate refunds", refund_duplicates(services).await),
        (
            "refunds of unused credits",
            crate::operators::refund_sending::send_planned(services)
                .await
                .map(|_| ()),
        ),
    ] {
        if let Err(e) = result {
            tracing::warn!(error = %e, "reconciliation could not read Razorpay's {what}");
            report.errors += 1;
        }
    }
    Ok(report)
}

async fn check_due_topups(
    services: &Services,
    min_age: Duration,
    expire_after: Duration,
    report: &mut ReconcileReport,
) -> ServiceResult<()> {
    let now = now_micros();
    let older_than = now - min_age.as_micros() as i64;
    let recheck_since = now - RECHECK_FAILED_FOR_SECS * 1_000_000;
    loop {
        let lease_until = now + LEASE_SECS * 1_000_000;
        let claimed = services
            .ledger
            .autocommit(|writer| {
                Box::pin(async move {
                    topup_moves::claim_for_reconciliation(
                        writer,
                        now,
                        older_than,
                        recheck_since,
                        lease_until,
                        CLAIM,
                    )
                    .await
                })
            })
            .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        for id in claimed {
            report.checked += 1;
            let checked = check(services, id, expire_after).await;
            // Done: the lease ends at this pass's start, so the next pass (and not this one)
            // checks it again.
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(async move { topup_moves::release_check(writer, id, now).await })
                })
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
async fn check(services: &Services, id: i64, expire_after: Duration) -> ServiceResult<Checked> {
    let Some(topup) = topups::find(&services.reads, id).await? else {
        return Ok(Checked::Nothing);
    };
    let age = chrono::Utc::now() - topup.created_at;
    let dead = age.to_std().unwrap_or_default() >= expire_after;
    let Some(order_id) = topup.order_id.clone() else {
        // Recorded but its Razorpay order never came back: nobody could have paid it.
        if dead || topup.status == TopupStatus::Creating {
            expire(services, id).await?;
            return Ok(Checked::Expired);
        }
        return Ok(Checked::Nothing);
    };
    let mut payments = services.razorpay.order_payments(&order_id).await?.items;
    payments.sort_by_key(|p| p.created_at);
    let captured = |p: &&Payment| {
        p.status == PaymentStatus::Captured || (p.status == PaymentStatus::Refunded && p.captured)
    };
    // Every captured payment, oldest first: the first credits, any other is a duplicate.
    let mut outcome = None;
    for payment in payments.iter().filter(captured) {
        let result = crediting::apply_payment(services, &topup, payment).await?;
        outcome.get_or_insert(result);
    }
    // Payments Razorpay returned without capturing them.
    for payment in payments
        .iter()
        .filter(|p| p.status == PaymentStatus::Refunded && !p.captured)
    {
        crediting::apply_payment(services, &topup, payment).await?;
    }
    if let Some(outcome) = outcome {
        return Ok(Checked::Outcome(outcome));
    }
    let latest = |status: PaymentStatus| payments.iter().rev().find(|p| p.status == status);
    if let Some(payment) = latest(PaymentStatus::Authorized).or(latest(PaymentStatus::Created)) {
        return Ok(Checked::Outcome(
            crediting::apply_payment(services, &topup, payment).await?,
        ));
    }
    match latest(PaymentStatus::Failed) {
        Some(payment) if topup.status != TopupStatus::Failed => Ok(Checked::Outcome(
            crediting::apply_payment(services, &topup, payment).await?,
        )),
        _ if dead && topup.status != TopupStatus::Failed => {
            expire(services, id).await?;
            Ok(Checked::Expired)
        }
        _ => Ok(Checked::Nothing),
    }
}

/// Takes the top-up's check lease for `lease` if nobody holds it; true when taken.
pub async fn claim_check(services: &Services, id: i64, lease: Duration) -> ServiceResult<bool> {
    let now = now_micros();
    let until = now + lease.as_micros() as i64;
    Ok(services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { topup_moves::claim_check(writer, id, now, until).await })
        })
        .await?)
}

async fn expire(services: &Services, id: i64) -> ServiceResult<bool> {
    Ok(services
        .ledger
        .autocommit(|writer| Box::pin(async move { topup_moves::expired(writer, id).await }))
        .await?)
}

/// How often one top-up's page may ask Razorpay about it.
const PAGE_CHECK_LEASE: Duration = Duration::from_secs(5);

/// Checks one top-up now, in the background, unless it was checked in the last few seconds.
pub fn check_soon(services: &Services, id: i64) {
    let services = services.clone();
    tokio::spawn(async move {
        let expire_after = Duration::from_secs(services.settings.reconcile.expire_after_secs);
        let result = async {
            if claim_check(&services, id, PAGE_CHECK_LEASE).await? {
                check(&services, id, expire_after).await?;
            }
            ServiceResult::Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::info!(topup = id, error = %e, "could not check a top-up for its page");
        }
    });
}

/// Where a list was read up to (Unix seconds), and the time to read it from now.
async fn cursor(services: &Services, name: &str) -> ServiceResult<i64> {
    let now = chrono::Utc::now().timestamp();
    Ok(match cursors::get(&services.reads, name).await? {
        Some(position) => position - LIST_OVERLAP_SECS,
        None => now - FIRST_LIST_WINDOW_SECS,
    })
}

async fn advance(services: &Services, name: &str, position: i64) -> ServiceResult<()> {
    Ok(services
        .ledger
        .autocommit(|writer| Box::pin(async move { cursors::set(writer, name, position).await }))
        .await?)
}

/// Pages of a Razorpay list from `from` on; calls `each` for every item.
const PAGE: u32 = 100;
/// At most this many pages per list and pass, so a backlog can't hold up the other checks.
const MAX_PAGES: u32 = 50;

/// Captured payments on our orders that credited nothing and are not recorded (their webhooks
/// were lost): the first on a top-up credits it, any other is a duplicate to refund.
async fn sweep_payments(services: &Services, report: &mut ReconcileReport) -> ServiceResult<()> {
    let started = chrono::Utc::now().timestamp();
    let from = cursor(services, "payments").await?;
    for page in 0..MAX_PAGES {
        let items = services
            .razorpay
            .list_payments(&ListQuery {
                from: Some(from),
                to: None,
                count: Some(PAGE),
                skip: Some(page * PAGE),
            })
            .await?
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
            let Some(topup) = topups::find_by_order(&services.reads, order_id).await? else {
                continue;
            };
            if topup.credited_by(&payment.id)
                || payments::find(&services.reads, &payment.id)
                    .await?
                    .is_some()
            {
                continue;
            }
            match crediting::apply_payment(services, &topup, payment).await? {
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
    advance(services, "payments", started).await
}

/// Refunds of our payments that are not recorded, or whose status moved on.
async fn sweep_refunds(services: &Services, report: &mut ReconcileReport) -> ServiceResult<()> {
    let started = chrono::Utc::now().timestamp();
    let from = cursor(services, "refunds").await?;
    for page in 0..MAX_PAGES {
        let items = services
            .razorpay
            .list_refunds(&ListQuery {
                from: Some(from),
                to: None,
                count: Some(PAGE),
                skip: Some(page * PAGE),
            })
            .await?
            .items;
        for refund in &items {
            let known = store::refunds::find(&services.reads, &refund.id).await?;
            if known.is_some_and(|r| r.status == refund.status) {
                continue;
            }
            report.refunds_seen += 1;
            refunds::apply_refund(services, refund).await?;
        }
        if items.len() < PAGE as usize {
            break;
        }
    }
    advance(services, "refunds", started).await
}

/// Refunds still pending are asked after until they are processed or fail.
async fn follow_pending_refunds(
    services: &Services,
    report: &mut ReconcileReport,
) -> ServiceResult<()> {
    for record in store::refunds::pending(
        &services.reads,
        now_micros() - PENDING_REFUND_AFTER.as_micros() as i64,
        100,
    )
    .await?
    {
        let refund = services.razorpay.fetch_refund(&record.refund_id).await?;
        report.refunds_seen += 1;
        refunds::apply_refund(services, &refund).await?;
    }
    Ok(())
}

/// Duplicates whose refund did not go through yet.
async fn refund_duplicates(services: &Services) -> ServiceResult<()> {
    for payment in payments::refunds_due(&services.reads, 50).await? {
        crediting::refund_duplicate(services, &payment.payment_id).await?;
    }
    Ok(())
}
