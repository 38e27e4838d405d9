//! Webhook delivery: at least once, signed over the exact bytes sent, retried with exponential
//! backoff on any non-2xx, with the faults tests ask for (duplicates, delay, reordering, early
//! delivery, failed first attempts). Every attempt is logged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::{
    deliveries::{AttemptLog, Delivery, DeliveryStatus},
    fake::Fake,
    gateway::PendingEvent,
};

/// Razorpay waits 5 s for an answer; a slower one counts as a failure.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Fake {
    /// Sends events as webhooks, applying the current faults. Returns once every delivery has
    /// made its first attempt when `webhooks_before_callback` is on (so the webhooks land before
    /// the browser's callback), at once otherwise.
    pub(crate) async fn dispatch(&self, mut events: Vec<PendingEvent>) {
        if events.is_empty() {
            return;
        }
        let (faults, url, secret) = {
            let state = self.lock();
            (
                state.faults.clone(),
                state.settings.webhook_url.clone(),
                state.settings.webhook_secret.clone(),
            )
        };
        if faults.webhook_reorder {
            events.reverse();
        }
        let mut first_attempts = Vec::new();
        for pending in events {
            let body = match serde_json::to_vec(&pending.event) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "could not serialise a webhook event");
                    continue;
                }
            };
            let signature = razorpay::signature::webhook_signature(&body, &secret);
            for copy in 0..=faults.webhook_duplicates {
                let id = self.record_delivery(&pending, url.clone(), copy > 0);
                let Some(url) = url.clone() else { continue };
                let (tx, rx) = oneshot::channel();
                first_attempts.push(rx);
                let job = DeliveryJob {
                    fake: self.clone(),
                    delivery: id,
                    url,
                    body: body.clone(),
                    signature: signature.clone(),
                    event_id: pending.id.clone(),
                    delay: Duration::from_millis(faults.webhook_delay_ms),
                    fail_first: faults.webhook_fail_first,
                };
                tokio::spawn(job.run(tx));
            }
        }
        if faults.webhooks_before_callback {
            for rx in first_attempts {
                let _ = rx.await;
            }
        }
    }

    fn record_delivery(&self, pending: &PendingEvent, url: Option<String>, duplicate: bool) -> u64 {
        let mut state = self.lock();
        let id = state.deliveries.len() as u64 + 1;
        let event = &pending.event;
        state.deliveries.push(Delivery {
            id,
            event_id: pending.id.clone(),
            event: event.event.as_str().to_string(),
            payment_id: event.payment().map(|p| p.id.clone()),
            order_id: event
                .order()
                .map(|o| o.id.clone())
                .or_else(|| event.payment().and_then(|p| p.order_id.clone())),
            refund_id: event.refund().map(|r| r.id.clone()),
            status: if url.is_some() {
                DeliveryStatus::Pending
            } else {
                DeliveryStatus::NotSent
            },
            url,
            duplicate,
            attempts: Vec::new(),
        });
        id
    }

    fn log_attempt(&self, delivery: u64, attempt: AttemptLog, status: Option<DeliveryStatus>) {
        let mut state = self.lock();
        if let Some(d) = state.deliveries.iter_mut().find(|d| d.id == delivery) {
            d.attempts.push(attempt);
            if let Some(status) = status {
                d.status = status;
            }
        }
    }
}

struct DeliveryJob {
    fake: Fake,
    delivery: u64,
    url: String,
    body: Vec<u8>,
    signature: String,
    event_id: String,
    delay: Duration,
    fail_first: u32,
}

impl DeliveryJob {
    async fn run(self, first_attempt_done: oneshot::Sender<()>) {
        let mut first_attempt_done = Some(first_attempt_done);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let (backoff, max_attempts) = {
            let state = self.fake.lock();
            (
                state.settings.webhook_backoff,
                state.settings.webhook_max_attempts.max(1),
            )
        };
        for attempt in 1..=max_attempts {
            let log = if attempt <= self.fail_first {
                AttemptLog {
                    at_ms: now_ms(),
                    status: None,
                    error: Some("failed on purpose (fail-first fault)".into()),
                    simulated: true,
                }
            } else {
                self.send().await
            };
            let delivered = log.status.is_some_and(|s| (200..300).contains(&s));
            let status = if delivered {
                Some(DeliveryStatus::Delivered)
            } else if attempt == max_attempts {
                Some(DeliveryStatus::Failed)
            } else {
                None
            };
            self.fake.log_attempt(self.delivery, log, status);
            if let Some(done) = first_attempt_done.take() {
                let _ = done.send(());
            }
            if delivered {
                return;
            }
            if attempt < max_attempts {
                let factor = 2u32.saturating_pow(attempt - 1);
                tokio::time::sleep(backoff.saturating_mul(factor)).await;
            }
        }
    }

    async fn send(&self) -> AttemptLog {
        let result = self
            .fake
            .http()
            .post(&self.url)
            .timeout(DELIVERY_TIMEOUT)
            .header("content-type", "application/json")
            .header("user-agent", "Razorpay-Webhook/v1")
            .header("x-razorpay-signature", &self.signature)
            .header("x-razorpay-event-id", &self.event_id)
            .header("request-id", &self.event_id)
            .body(self.body.clone())
            .send()
            .await;
        match result {
            Ok(response) => AttemptLog {
                at_ms: now_ms(),
                status: Some(response.status().as_u16()),
                error: None,
                simulated: false,
            },
            Err(e) => AttemptLog {
                at_ms: now_ms(),
                status: None,
                error: Some(if e.is_timeout() {
                    "no answer within 5 s".into()
                } else {
                    e.to_string()
                }),
                simulated: false,
            },
        }
    }
}
