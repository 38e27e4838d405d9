//! A running fake's state (its settings, faults, the gateway, checkout visits, webhook
//! deliveries) and what happens over time: the bank's late answers, late authorisation, the
//! capture window, refunds settling.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use razorpay::{
    Secret,
    wire::{Payment, PaymentStatus, Refund, RefundState},
};
use serde::{Deserialize, Serialize};

use crate::{
    callbacks::CallbackFields,
    deliveries::Delivery,
    errors::GatewayError,
    gateway::{Gateway, Identity, payments::PayOptions},
    methods,
    sessions::CheckoutSession,
    settings::{FakeSettings, Faults, PendingOutcome, RefundOutcome},
};

pub(crate) struct FakeState {
    pub settings: FakeSettings,
    pub faults: Faults,
    pub gateway: Gateway,
    /// Pending payments whose customer closed the tab: no callback once the bank answers.
    pub pending_without_callback: std::collections::HashSet<String>,
    pub checkouts: std::collections::HashMap<String, CheckoutSession>,
    pub deliveries: Vec<Delivery>,
}

struct FakeShared {
    state: Mutex<FakeState>,
    http: reqwest::Client,
    initial: (FakeSettings, Faults),
}

/// A running fake's state. Cheap to clone.
#[derive(Clone)]
pub struct Fake {
    shared: Arc<FakeShared>,
}

impl Fake {
    pub fn new(settings: FakeSettings, faults: Faults) -> anyhow::Result<Fake> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent("Razorpay-Webhook/v1")
            .build()?;
        Ok(Fake {
            shared: Arc::new(FakeShared {
                state: Mutex::new(FakeState {
                    settings: settings.clone(),
                    faults: faults.clone(),
                    gateway: Gateway::default(),
                    pending_without_callback: Default::default(),
                    checkouts: Default::default(),
                    deliveries: Vec::new(),
                }),
                http,
                initial: (settings, faults),
            }),
        })
    }

    /// The state lock. Never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panic while holding the lock would be a bug in the fake; keep serving regardless.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.shared.http
    }

    pub(crate) fn identity(&self) -> Identity {
        let state = self.lock();
        Identity {
            account_id: state.settings.account_id.clone(),
            key_secret: state.settings.key_secret.clone(),
        }
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Where webhooks go (e.g. once the app under test has its port).
    pub fn set_webhook(&self, url: Option<String>, secret: Option<Secret>) {
        let mut state = self.lock();
        state.settings.webhook_url = url;
        if let Some(secret) = secret {
            state.settings.webhook_secret = secret;
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Forgets every order, payment, refund, checkout and delivery; restores the start settings.
    pub fn reset(&self) {
        let (settings, faults) = self.shared.initial.clone();
        let mut state = self.lock();
        state.settings = settings;
        state.faults = faults;
        state.gateway = Gateway::default();
        state.pending_without_callback.clear();
        state.checkouts.clear();
        state.deliveries.clear();
    }

    /// Pays an order as checkout would, applying the faults; see `POST /_fake/orders/{id}/pay`.
    pub async fn pay(
        &self,
        order_id: &str,
        request: &methods::PayRequest,
        overrides: PayOverrides,
    ) -> Result<PayResult, GatewayError> {
        let faults = self.faults();
        let options = PayOptions {
            late: overrides
                .late_authorization
                .unwrap_or(faults.late_authorization),
            manual_capture: faults.manual_capture,
            pending: faults.pending_ms > 0 && !overrides.second_payment,
            second_payment: overrides.second_payment,
        };
        let close_tab = overrides.close_tab.unwrap_or(faults.close_tab);
        let identity = self.identity();
        let attempt = {
            let mut state = self.lock();
            let prefill = state
                .checkouts
                .values()
                .find(|s| s.order_id == order_id)
                .map(|s| s.prefill.clone())
                .unwrap_or_default();
            state
                .gateway
                .pay(order_id, request, &identity, &prefill, options)?
        };
        let pending = attempt.payment.status == PaymentStatus::Created;
        if pending {
            if close_tab {
                self.lock()
                    .pending_without_callback
                    .insert(attempt.payment.id.clone());
            }
            self.answer_later(
                attempt.payment.id.clone(),
                Duration::from_millis(faults.pending_ms),
                faults.pending_outcome,
            );
        } else {
            self.follow_up(&attempt.payment, options.late, &faults);
        }
        self.dispatch(attempt.events).await;
        let failed = attempt.payment.status == PaymentStatus::Failed;
        let callback = if close_tab || pending || (failed && !faults.failure_callback) {
            None
        } else {
            attempt.callback
        };
        Ok(PayResult {
            callback,
            pending,
            payment: attempt.payment,
        })
    }

    /// What happens to a payment after its attempt, on its own: a late authorisation, or the
    /// end of the capture window of an authorised payment nobody captures.
    fn follow_up(&self, payment: &Payment, late: bool, faults: &Faults) {
        let late_paid = late
            && payment.status == PaymentStatus::Failed
            && payment.error_reason.as_deref() == Some("payment_timed_out");
        if late_paid && faults.late_authorization_delay_ms > 0 {
            let fake = self.clone();
            let payment_id = payment.id.clone();
            let delay = Duration::from_millis(faults.late_authorization_delay_ms);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = fake.late_authorize(&payment_id).await {
                    tracing::warn!(payment_id, error = ?e, "late authorisation did not happen");
                }
            });
        }
        if payment.status == PaymentStatus::Authorized && faults.capture_window_ms > 0 {
            let fake = self.clone();
            let payment_id = payment.id.clone();
            let window = Duration::from_millis(faults.capture_window_ms);
            tokio::spawn(async move {
                tokio::time::sleep(window).await;
                let identity = fake.identity();
                let events = fake
                    .lock()
                    .gateway
                    .expire_capture_window(&payment_id, &identity);
                match events {
                    Ok(events) => fake.dispatch(events).await,
                    Err(e) => tracing::warn!(payment_id, error = ?e, "capture window"),
                }
            });
        }
    }

    /// The bank answers a pending payment after `delay`.
    fn answer_later(&self, payment_id: String, delay: Duration, outcome: PendingOutcome) {
        let fake = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Already answered by hand (`POST /_fake/payments/{id}/resolve`) is fine.
            let _ = fake
                .resolve_pending(&payment_id, outcome == PendingOutcome::Timeout)
                .await;
        });
    }

    /// The bank answers a payment left `created`; the checkout page waiting for it shows the
    /// result (and posts it back to the merchant, unless the customer closed the tab).
    pub async fn resolve_pending(
        &self,
        payment_id: &str,
        timeout: bool,
    ) -> Result<Payment, GatewayError> {
        let identity = self.identity();
        let faults = self.faults();
        let attempt = {
            let mut state = self.lock();
            let attempt = state
                .gateway
                .resolve_pending(payment_id, timeout, &identity)?;
            let close_tab = state.pending_without_callback.remove(payment_id);
            let failed = attempt.payment.status == PaymentStatus::Failed;
            let callback = (!close_tab && (!failed || faults.failure_callback))
                .then(|| attempt.callback.clone())
                .flatten();
            for session in state.checkouts.values_mut() {
                if session.pending_payment.as_deref() == Some(payment_id) {
                    session.pending_payment = None;
                    session.result = Some(callback.clone());
                }
            }
            attempt
        };
        self.follow_up(&attempt.payment, false, &faults);
        self.dispatch(attempt.events).await;
        Ok(attempt.payment)
    }

    /// Moves a payment reported failed to authorised (and captured, or refunded at once when its
    /// order was paid meanwhile), with its webhooks.
    pub async fn late_authorize(&self, payment_id: &str) -> Result<Payment, GatewayError> {
        let identity = self.identity();
        let (payment, events) = self.lock().gateway.late_authorize(payment_id, &identity)?;
        let faults = self.faults();
        self.follow_up(&payment, false, &faults);
        self.dispatch(events).await;
        Ok(payment)
    }

    /// `POST /v1/payments/{id}/refund`: the refund is answered `pending`; `refund_outcome`
    /// decides what it becomes.
    pub(crate) async fn refund(
        &self,
        payment_id: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Refund, GatewayError> {
        let identity = self.identity();
        let faults = self.faults();
        let attempt =
            self.lock()
                .gateway
                .refund_payment(payment_id, body, idempotency_key, &identity)?;
        self.dispatch(attempt.events).await;
        if !attempt.replayed {
            let outcome = match faults.refund_outcome {
                RefundOutcome::Processed => Some(RefundState::Processed),
                RefundOutcome::Failed => Some(RefundState::Failed),
                RefundOutcome::Pending => None,
            };
            if let Some(outcome) = outcome {
                let fake = self.clone();
                let refund_id = attempt.refund.id.clone();
                let delay = Duration::from_millis(faults.refund_delay_ms);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = fake.settle_refund(&refund_id, outcome).await {
                        tracing::warn!(refund_id, error = ?e, "refund outcome");
                    }
                });
            }
        }
        Ok(attempt.refund)
    }

    /// A pending refund is processed or fails, with its webhook.
    pub async fn settle_refund(
        &self,
        refund_id: &str,
        outcome: RefundState,
    ) -> Result<Refund, GatewayError> {
        let identity = self.identity();
        let (refund, events) = self
            .lock()
            .gateway
            .settle_refund(refund_id, outcome, &identity)?;
        self.dispatch(events).await;
        Ok(refund)
    }
}

/// Per-payment overrides of the faults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PayOverrides {
    pub late_authorization: Option<bool>,
    pub close_tab: Option<bool>,
    /// Pay and capture even on an order already paid: two attempts that both succeeded at the
    /// bank, leaving two captured payments on one order.
    #[serde(default)]
    pub second_payment: bool,
}

/// What a payment attempt produced: the fields the browser would post to `callback_url` (none
/// when the customer closed the tab, when the bank has not answered yet, or for a failure with
/// `failure_callback` off) and the payment.
#[derive(Debug, Clone, Serialize)]
pub struct PayResult {
    pub callback: Option<CallbackFields>,
    /// The bank has not answered: the payment is `created` until it does.
    pub pending: bool,
    pub payment: Payment,
}
