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
use razorpay::Secret;
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
        }
    }
}

pub(crate) struct State {
    pub settings: Settings,
    pub faults: Faults,
    pub ledger: engine::Ledger,
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
                    ledger: engine::Ledger::default(),
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
        state.ledger = engine::Ledger::default();
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
        let late = overrides
            .late_authorization
            .unwrap_or(faults.late_authorization);
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
                .ledger
                .pay(order_id, request, &identity, &prefill, late)?
        };
        let late_paid = late
            && attempt.payment.status == razorpay::wire::PaymentStatus::Failed
            && attempt.payment.error_reason.as_deref() == Some("payment_timed_out");
        self.dispatch(attempt.events).await;
        if late_paid && faults.late_authorization_delay_ms > 0 {
            let fake = self.clone();
            let payment_id = attempt.payment.id.clone();
            let delay = Duration::from_millis(faults.late_authorization_delay_ms);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(e) = fake.late_authorize(&payment_id).await {
                    tracing::warn!(payment_id, error = ?e, "late authorisation did not happen");
                }
            });
        }
        Ok(PayResult {
            callback: (!close_tab).then_some(attempt.callback),
            payment: attempt.payment,
        })
    }

    /// Moves a payment reported failed to authorised (and captured), with its webhooks.
    pub async fn late_authorize(
        &self,
        payment_id: &str,
    ) -> Result<razorpay::wire::Payment, engine::ApiError> {
        let identity = self.identity();
        let (payment, events) = self.lock().ledger.late_authorize(payment_id, &identity)?;
        self.dispatch(events).await;
        Ok(payment)
    }
}

/// Per-payment overrides of the faults.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PayOverrides {
    pub late_authorization: Option<bool>,
    pub close_tab: Option<bool>,
}

/// What a payment attempt produced: the fields the browser would post to `callback_url` (none
/// when the customer closed the tab) and the payment.
#[derive(Debug, Clone, Serialize)]
pub struct PayResult {
    pub callback: Option<CallbackFields>,
    pub payment: razorpay::wire::Payment,
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
