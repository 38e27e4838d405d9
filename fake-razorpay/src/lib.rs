//! fake-razorpay: a server that behaves like Razorpay for everything Kalp Credits touches — the
//! REST API under `/v1`, the hosted checkout with UPI, card + OTP, netbanking and wallet, signed
//! webhooks — plus a control API under `/_fake/` to drive payments and switch faults on.
//!
//! Run it with `cargo run -p fake-razorpay`, or start it inside a test with [`spawn`].

mod api;
mod checkout;
mod control;
mod engine;
mod ids;
pub mod methods;
mod webhooks;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::Router;
use razorpay::{
    Secret,
    wire::{Payment, PaymentStatus, Refund, RefundState},
};
use serde::{Deserialize, Serialize};

pub use engine::CallbackFields;
pub use webhooks::{AttemptLog, Delivery, DeliveryStatus};

/// How the fake starts. The defaults match the web app's development configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub key_id: String,
    pub key_secret: Secret,
    pub webhook_url: Option<String>,
    pub webhook_secret: Secret,
    /// The first retry waits this long; each later one twice the one before.
    pub webhook_backoff: Duration,
    /// Attempts per delivery before giving up (Razorpay keeps trying for 24 hours).
    pub webhook_max_attempts: u32,
    pub account_id: String,
    /// The merchant name shown when checkout gets none.
    pub merchant_name: String,
}

pub const DEV_KEY_ID: &str = "rzp_test_KalpDevKey0001";
pub const DEV_KEY_SECRET: &str = "kalp_dev_key_secret_not_for_production";
pub const DEV_WEBHOOK_SECRET: &str = "kalp_dev_webhook_secret";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            key_id: DEV_KEY_ID.into(),
            key_secret: Secret::new(DEV_KEY_SECRET),
            webhook_url: None,
            webhook_secret: Secret::new(DEV_WEBHOOK_SECRET),
            webhook_backoff: Duration::from_secs(2),
            webhook_max_attempts: 16,
            account_id: "acc_KalpFake000001".into(),
            merchant_name: "Kalp Studio".into(),
        }
    }
}

/// Failures to inject, switchable while running (`POST /_fake/faults`) and at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra deliveries of every webhook (same event id).
    pub webhook_duplicates: u32,
    /// Wait this long before the first delivery attempt.
    pub webhook_delay_ms: u64,
    /// Deliver a payment's events in reverse order (order.paid before payment.captured…).
    pub webhook_reorder: bool,
    /// Deliver webhooks before answering the browser (the callback comes after them).
    pub webhooks_before_callback: bool,
    /// The first N attempts of every delivery fail without reaching the receiver.
    pub webhook_fail_first: u32,
    /// Share (0–100) of `/v1` API calls answered with a 500.
    pub api_error_percent: u8,
    /// Share (0–100) of `/v1` API calls that hang for `api_timeout_ms` first.
    pub api_timeout_percent: u8,
    pub api_timeout_ms: u64,
    /// Successful payments are reported failed, then authorised later (late authorisation).
    pub late_authorization: bool,
    /// When late authorisation happens on its own; 0 waits for
    /// `POST /_fake/payments/{id}/authorize`.
    pub late_authorization_delay_ms: u64,
    /// The customer closes the tab: payments go through but the callback never comes.
    pub close_tab: bool,
    /// Payments stop at `authorized`; the fake never captures them itself.
    pub manual_capture: bool,
    /// An authorised payment nobody captured within this long is refunded, as Razorpay does
    /// after its capture window (0: never, within the fake's lifetime).
    pub capture_window_ms: u64,
    /// Payments stay `created` this long before the bank answers (UPI collect waiting for
    /// approval, a bank that has not answered); 0: answered at once.
    pub pending_ms: u64,
    /// What the bank says once `pending_ms` is over.
    pub pending_outcome: PendingOutcome,
    /// What becomes of refunds, which are always answered `pending` first.
    pub refund_outcome: RefundOutcome,
    /// How long a refund stays pending before `refund_outcome` (processed or failed).
    pub refund_delay_ms: u64,
    /// A failed attempt posts its `error[...]` fields to `callback_url`; when false the customer
    /// stays on the checkout, which offers to try again.
    pub failure_callback: bool,
}

/// The bank's answer to a payment left pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingOutcome {
    /// What the attempt would have given at once (success or the method's failure).
    #[default]
    Complete,
    /// No answer: the payment fails with `payment_timed_out`.
    Timeout,
}

/// What a refund becomes after `refund_delay_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOutcome {
    #[default]
    Processed,
    /// Stays pending until `POST /_fake/refunds/{id}/process`.
    Pending,
    /// Fails, with a `refund.failed` webhook.
    Failed,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            webhook_duplicates: 0,
            webhook_delay_ms: 0,
            webhook_reorder: false,
            webhooks_before_callback: false,
            webhook_fail_first: 0,
            api_error_percent: 0,
            api_timeout_percent: 0,
            api_timeout_ms: 30_000,
            late_authorization: false,
            late_authorization_delay_ms: 0,
            close_tab: false,
            manual_capture: false,
            capture_window_ms: 0,
            pending_ms: 0,
            pending_outcome: PendingOutcome::Complete,
            refund_outcome: RefundOutcome::Processed,
            refund_delay_ms: 0,
            failure_callback: true,
        }
    }
}

pub(crate) struct State {
    pub settings: Settings,
    pub faults: Faults,
    pub gateway: engine::Gateway,
    /// Pending payments whose customer closed the tab: no callback once the bank answers.
    pub pending_without_callback: std::collections::HashSet<String>,
    pub checkouts: std::collections::HashMap<String, checkout::Session>,
    pub deliveries: Vec<Delivery>,
}

struct Shared {
    state: Mutex<State>,
    http: reqwest::Client,
    initial: (Settings, Faults),
}

/// A running fake's state. Cheap to clone.
#[derive(Clone)]
pub struct Fake {
    shared: Arc<Shared>,
}

impl Fake {
    pub fn new(settings: Settings, faults: Faults) -> anyhow::Result<Fake> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent("Razorpay-Webhook/v1")
            .build()?;
        Ok(Fake {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    settings: settings.clone(),
                    faults: faults.clone(),
                    gateway: engine::Gateway::default(),
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug in the fake; keep serving regardless.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.shared.http
    }

    pub(crate) fn identity(&self) -> engine::Identity {
        let state = self.lock();
        engine::Identity {
            account_id: state.settings.account_id.clone(),
            key_secret: state.settings.key_secret.clone(),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .merge(api::routes(self.clone()))
            .merge(checkout::routes())
            .merge(control::routes())
            .with_state(self.clone())
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
        state.gateway = engine::Gateway::default();
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
    ) -> Result<PayResult, engine::ApiError> {
        let faults = self.faults();
        let options = engine::PayOptions {
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
    ) -> Result<Payment, engine::ApiError> {
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
    pub async fn late_authorize(&self, payment_id: &str) -> Result<Payment, engine::ApiError> {
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
    ) -> Result<Refund, engine::ApiError> {
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
    ) -> Result<Refund, engine::ApiError> {
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

/// A fake running on a local port, for tests. Stops when dropped.
pub struct RunningFake {
    pub fake: Fake,
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningFake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningFake {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a fake on `127.0.0.1` and a free port.
pub async fn spawn(settings: Settings, faults: Faults) -> anyhow::Result<RunningFake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    serve_on(listener, settings, faults).await
}

pub async fn serve_on(
    listener: tokio::net::TcpListener,
    settings: Settings,
    faults: Faults,
) -> anyhow::Result<RunningFake> {
    let addr = listener.local_addr()?;
    let fake = Fake::new(settings, faults)?;
    let app = fake.router();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "fake-razorpay stopped");
        }
    });
    Ok(RunningFake {
        fake,
        addr,
        shutdown: Some(tx),
    })
}
