//! Prometheus metrics (`/metrics`), through the `metrics` facade and its Prometheus recorder.
//! Counters and histograms are recorded where things happen (requests, top-ups, credits,
//! charges, webhooks, reconciliation, Razorpay calls in `crates/razorpay`); gauges of what is
//! waiting (webhook events, the outbox) and of the database pools are read when scraped.
//! `docs/operations.md` lists each metric and what to alert on.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets, in seconds: 1 ms to 10 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's recorder, installed on first use (one per process: tests start many apps in
/// one process, and they share it). `None` when another recorder was installed first.
pub fn recorder() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full("kalp_charge_batch_size".into()), BATCH_SIZES)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "kalp_http_requests_total",
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        "kalp_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route and method"
    );
    describe_counter!("kalp_topups_created_total", "Top-ups created (Add Credits)");
    describe_counter!(
        "kalp_topup_payments_total",
        "Payments applied to top-ups, by outcome (credited, already_credited, pending, failed, duplicate, returned, flagged)"
    );
    describe_counter!(
        "kalp_credits_total",
        "Credits moved, by direction (credited, debited, taken_back, returned, granted, adjusted_in, adjusted_out)"
    );
    describe_counter!(
        "kalp_charges_total",
        "API charges by result (charged, replayed, refused, failed)"
    );
    describe_histogram!("kalp_charge_batch_size", "Charges per group commit");
    describe_histogram!(
        "kalp_charge_commit_seconds",
        Unit::Seconds,
        "Time to commit one batch of charges"
    );
    describe_counter!(
        "kalp_webhook_events_total",
        "Razorpay webhooks by result (stored, duplicate, invalid, processed, failed)"
    );
    describe_gauge!(
        "kalp_webhook_oldest_unprocessed_age_seconds",
        Unit::Seconds,
        "Age of the oldest stored webhook event not processed yet (0: none)"
    );
    describe_counter!(
        "kalp_reconcile_finds_total",
        "What reconciliation found, by kind (credited, failed, expired, flagged, duplicates, refunds_seen, errors)"
    );
    describe_gauge!("kalp_outbox_depth", "Emails waiting in the outbox");
    describe_gauge!(
        "kalp_outbox_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest email waiting in the outbox (0: none)"
    );
    describe_gauge!(
        "kalp_outbox_parked",
        "Emails the sender gave up on, waiting for an operator (Needs attention)"
    );
    describe_counter!("kalp_emails_sent_total", "Emails sent, by kind");
    describe_counter!(
        "kalp_emails_parked_total",
        "Emails parked after failing for good or too often"
    );
    describe_counter!(
        "kalp_razorpay_requests_total",
        "Calls to Razorpay by endpoint and status (HTTP status, or timeout, connect, transport)"
    );
    describe_histogram!(
        "kalp_razorpay_request_duration_seconds",
        Unit::Seconds,
        "Latency of calls to Razorpay by endpoint"
    );
    describe_gauge!(
        "kalp_db_connections_open",
        "Database connections open, by pool"
    );
    describe_gauge!(
        "kalp_db_connections_idle",
        "Database connections open and idle, by pool"
    );
    describe_gauge!(
        "kalp_db_connections_max",
        "Most connections a pool may open"
    );
}

/// Counts credits moved (a no-op for zero).
pub fn credits(direction: &'static str, amount: i64) {
    if amount > 0 {
        metrics::counter!("kalp_credits_total", "direction" => direction)
            .increment(u64::try_from(amount).unwrap_or(0));
    }
}

/// The text Prometheus scrapes, with the gauges read now.
pub async fn render(
    handle: &PrometheusHandle,
    ledger: &ledger::Ledger,
    reads: &store::Reads,
) -> String {
    let now = store::now_micros();
    let age = |micros: Option<i64>| micros.map_or(0.0, |t| (now - t).max(0) as f64 / 1e6);
    match store::webhook_events::oldest_unprocessed(reads).await {
        Ok(oldest) => {
            metrics::gauge!("kalp_webhook_oldest_unprocessed_age_seconds").set(age(oldest))
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the webhook inbox"),
    }
    match store::outbox::backlog(reads).await {
        Ok((waiting, oldest)) => {
            metrics::gauge!("kalp_outbox_depth").set(waiting as f64);
            metrics::gauge!("kalp_outbox_oldest_age_seconds").set(age(oldest));
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox"),
    }
    match store::outbox::parked_count(reads).await {
        Ok(parked) => metrics::gauge!("kalp_outbox_parked").set(parked as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the parked emails"),
    }
    for pool in ledger.pool_use() {
        metrics::gauge!("kalp_db_connections_open", "pool" => pool.pool).set(f64::from(pool.open));
        metrics::gauge!("kalp_db_connections_idle", "pool" => pool.pool).set(f64::from(pool.idle));
        metrics::gauge!("kalp_db_connections_max", "pool" => pool.pool).set(f64::from(pool.max));
    }
    handle.render()
}
