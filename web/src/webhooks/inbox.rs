//! The webhook inbox: stored events are claimed (a lease, so several workers never take the
//! same one), processed, and marked done; a failure is kept and retried later. What each event
//! means for our top-ups goes through `billing`, like every other report of a payment.

use razorpay::wire::{EventType, Payment, PaymentStatus, WebhookEvent};

use crate::{
    billing::{crediting, refunds},
    services::{ServiceError, ServiceResult, Services},
    store::{now_micros, topups, webhook_events},
};

/// How long a worker holds an event before another may take it over.
const LEASE_SECS: i64 = 60;
/// Give up on an event after this many failed attempts (it stays stored for an operator).
const MAX_ATTEMPTS: i64 = 20;
/// Events claimed per round.
const CLAIM: u64 = 20;
/// How long an event that failed waits before it is tried again.
const RETRY_AFTER_MICROS: i64 = 5_000_000;

/// Processes stored events until none are due; returns how many were handled.
pub async fn process_pending(services: &Services) -> ServiceResult<usize> {
    let mut handled = 0;
    loop {
        let now = now_micros();
        let lease_until = now + LEASE_SECS * 1_000_000;
        let claimed = services
            .ledger
            .autocommit(|writer| {
                Box::pin(async move {
                    webhook_events::claim_due(writer, now, lease_until, MAX_ATTEMPTS, CLAIM).await
                })
            })
            .await?;
        if claimed.is_empty() {
            return Ok(handled);
        }
        let mut done: Vec<String> = Vec::with_capacity(claimed.len());
        for event in claimed {
            let result = match serde_json::from_str::<WebhookEvent>(&event.body) {
                Ok(parsed) => process(services, &parsed).await,
                Err(e) => Err(ServiceError::Invariant(format!(
                    "stored body no longer parses: {e}"
                ))),
            };
            metrics::counter!(
                "kalp_webhook_events_total",
                "result" => if result.is_ok() { "processed" } else { "failed" }
            )
            .increment(1);
            match result {
                Ok(()) => done.push(event.event_id),
                Err(e) => {
                    tracing::warn!(event_id = event.event_id, error = %e, "webhook processing failed; will retry");
                    // Back off: the lease expires later for events that keep failing.
                    let (id, error) = (event.event_id.as_str(), &e.to_string());
                    let retry_at = now_micros() + RETRY_AFTER_MICROS;
                    services
                        .ledger
                        .autocommit(|writer| {
                            Box::pin(async move {
                                webhook_events::failed(writer, id, error, retry_at).await
                            })
                        })
                        .await?;
                }
            }
        }
        // The events handled are marked in one write; were it lost, they would be handled again,
        // which changes nothing (every effect is idempotent).
        if !done.is_empty() {
            handled += done.len();
            let done = &done;
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(
                        async move { webhook_events::processed(writer, done, now_micros()).await },
                    )
                })
                .await?;
        }
    }
}

/// A payment event's payment and the top-up of its order, if the order is ours.
async fn payment_and_topup<'e>(
    services: &Services,
    event: &'e WebhookEvent,
) -> ServiceResult<Option<(&'e Payment, topups::Topup)>> {
    let Some(snapshot) = event.payment() else {
        return Ok(None);
    };
    let order_id = snapshot
        .order_id
        .clone()
        .or_else(|| event.order().map(|o| o.id.clone()));
    let Some(order_id) = order_id else {
        return Ok(None);
    };
    let topup = topups::find_by_order(&services.reads, &order_id).await?;
    if topup.is_none() {
        tracing::info!(order_id, "webhook for an order that is not ours; ignored");
    }
    Ok(topup.map(|t| (snapshot, t)))
}

/// True for a payment event about a payment already credited: it is stored as handled at once,
/// without a round through the worker (two fewer writes for each of a top-up's usual three
/// events, which mostly arrive after the callback credited it).
pub async fn handled_already(services: &Services, event: &WebhookEvent) -> bool {
    let payment_event = matches!(
        event.event,
        EventType::PaymentAuthorized | EventType::PaymentCaptured | EventType::OrderPaid
    );
    payment_event
        && matches!(
            payment_and_topup(services, event).await,
            Ok(Some((payment, topup))) if topup.credited_by(&payment.id)
        )
}

/// What one event means for our top-ups.
async fn process(services: &Services, event: &WebhookEvent) -> ServiceResult<()> {
    match &event.event {
        EventType::PaymentAuthorized
        | EventType::PaymentCaptured
        | EventType::PaymentFailed
        | EventType::OrderPaid => {
            let Some((snapshot, topup)) = payment_and_topup(services, event).await? else {
                return Ok(());
            };
            // Already credited for this very payment (the callback or an earlier event got there
            // first): nothing to fetch and nothing to write.
            if topup.credited_by(&snapshot.id) {
                return Ok(());
            }
            // A captured snapshot is final; any other may be stale (events come in any order), so
            // ask Razorpay for the payment as it is now.
            let payment = if snapshot.status == PaymentStatus::Captured {
                snapshot.clone()
            } else {
                services.razorpay.fetch_payment(&snapshot.id).await?
            };
            crediting::apply_payment(services, &topup, &payment).await?;
            Ok(())
        }
        EventType::RefundCreated | EventType::RefundProcessed | EventType::RefundFailed => {
            let Some(snapshot) = event.refund() else {
                return Ok(());
            };
            // Refund events arrive in any order (refund.failed before refund.created): ask
            // Razorpay for the refund as it is now, and apply that.
            let refund = services.razorpay.fetch_refund(&snapshot.id).await?;
            refunds::apply_refund(services, &refund).await
        }
        EventType::RefundSpeedChanged | EventType::Other(_) => Ok(()),
    }
}
