//! Storing Razorpay's webhooks as they arrive, by group commit: events received while the
//! previous batch commits are stored together, in one transaction and one fsync. Razorpay sends
//! three events for every paid top-up (`payment.authorized`, `payment.captured`, `order.paid`),
//! and each answer waits for its event to be durable, so stored one by one they were three of
//! the five commits a top-up makes on SQLite's single writer (docs/benchmarks.md, session 13).
//! Each event still gets its own answer: stored, or a duplicate of one already stored.

use std::time::Duration;

use ledger::Ledger;

use crate::{
    group_commit::{BatchCommitter, GroupCommit, QueueStopped},
    store::{StoreResult, webhook_events},
};

/// A verified event, to be stored once per event id.
#[derive(Debug, Clone)]
pub struct ReceivedWebhook {
    pub event_id: String,
    pub kind: String,
    pub body: String,
    pub received_at: i64,
    /// Already handled (its payment is credited): stored as processed, with nothing to do.
    pub handled: bool,
}

/// A batch could not be stored: each of its events is answered 5xx, so Razorpay sends it again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("webhook events could not be stored: {0}")]
pub struct WebhookStoreFailed(String);

/// What a batch of webhooks commits: one insert per event, in one transaction.
pub struct WebhookEventBatches {
    ledger: Ledger,
}

impl WebhookEventBatches {
    pub fn new(ledger: Ledger) -> WebhookEventBatches {
        WebhookEventBatches { ledger }
    }
}

impl BatchCommitter for WebhookEventBatches {
    type Job = ReceivedWebhook;
    /// True when the event was new.
    type Answer = Result<bool, WebhookStoreFailed>;

    async fn commit(&self, events: Vec<ReceivedWebhook>) -> Vec<Self::Answer> {
        let stored = match events.as_slice() {
            // Alone, it needs no BEGIN and COMMIT round trips.
            [one] => self
                .ledger
                .autocommit(|writer| Box::pin(async move { record(writer, one).await }))
                .await
                .map(|new| vec![new]),
            many => {
                self.ledger
                    .transact(|tx| {
                        Box::pin(async move {
                            let mut new = Vec::with_capacity(many.len());
                            // One by one, so that an event id sent twice in the same batch is
                            // stored by the first and answered as a duplicate for the second.
                            for event in many {
                                new.push(record(tx, event).await?);
                            }
                            Ok(new)
                        })
                    })
                    .await
            }
        };
        match stored {
            Ok(new) => new.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "could not store webhooks");
                let failed = WebhookStoreFailed(e.to_string());
                vec![Err(failed); events.len()]
            }
        }
    }
}

async fn record(writer: &impl crate::store::Writer, event: &ReceivedWebhook) -> StoreResult<bool> {
    webhook_events::record(
        writer,
        &event.event_id,
        &event.kind,
        &event.body,
        event.received_at,
        event.handled,
    )
    .await
}

/// The queue every webhook's storing goes through.
#[derive(Clone)]
pub struct WebhookIntake {
    batches: GroupCommit<WebhookEventBatches>,
}

/// Events in one transaction at most: Razorpay's bursts are a few per payment.
const BATCH_MAX: usize = 64;
/// A batch takes what queued while the last one committed and waits for nothing more: a
/// webhook's answer is on Razorpay's clock, and the batches form by themselves under load.
const GATHER: Duration = Duration::ZERO;

impl WebhookIntake {
    pub fn start(ledger: Ledger) -> WebhookIntake {
        WebhookIntake {
            batches: GroupCommit::start(
                WebhookEventBatches::new(ledger),
                "webhook-intake",
                GATHER,
                BATCH_MAX,
            ),
        }
    }

    /// False once the batches' thread has stopped (it never stops while the app runs).
    pub fn is_running(&self) -> bool {
        self.batches.is_running()
    }

    /// Stores `event` with the next batch; true when it was new, false for a duplicate.
    pub async fn store(&self, event: ReceivedWebhook) -> Result<bool, WebhookStoreFailed> {
        self.batches
            .submit(event)
            .await
            .unwrap_or_else(|stopped: QueueStopped| Err(WebhookStoreFailed(stopped.to_string())))
    }
}
