//! The one state every handler shares: the services (ledger, store reads, Razorpay, settings)
//! and what only the HTTP app needs (the charge batcher, the webhooks' intake, rate limits,
//! password hashing, the API key cache, the webhook worker's wake-up).

use std::sync::Arc;

use crate::{
    api::{
        batcher::Charger, durable_baseline::DurableBaseline, key_cache::KeyCache,
        rate_limits::ApiRateLimits,
    },
    limits::AddressLimits,
    passwords::PasswordHashing,
    services::Services,
    webhooks::intake::WebhookIntake,
};

/// Cloned by every extractor of every request, so it is one `Arc`: a clone is one atomic
/// increment, not a copy of the connections, the Razorpay client's strings and the rest.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub services: Services,
    /// Wakes the webhook worker when an event is stored.
    pub webhook_wakeup: Arc<tokio::sync::Notify>,
    /// Group commit for charges.
    pub charger: Charger,
    /// Group commit for storing webhooks.
    pub webhook_intake: WebhookIntake,
    /// The benchmark's durable baseline, when configured (`api::durable_baseline`).
    pub durable_baseline: Option<DurableBaseline>,
    /// The API's rate limits (per key, and per address for unknown keys).
    pub api_limits: ApiRateLimits,
    /// Password requests per client address.
    pub address_limits: AddressLimits,
    /// Bounded password hashing.
    pub passwords: PasswordHashing,
    /// API keys verified recently.
    pub api_keys: KeyCache,
    /// What `/readyz` knows of this instance: shutting down, workers' beats.
    pub readiness: std::sync::Arc<crate::readiness::Readiness>,
    /// The process's metrics recorder (`None` if another was installed first).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// SMTP, when configured (`None`: emails wait in the outbox).
    pub mailer: Option<crate::emails::mailer::Mailer>,
}

impl Shared {
    /// The group-commit queues whose thread has stopped (they never stop while the app runs), as
    /// `/readyz` names them.
    pub fn stopped_queues(&self) -> Vec<&'static str> {
        [
            ("charge batcher", self.charger.is_running()),
            ("webhooks' intake", self.webhook_intake.is_running()),
        ]
        .into_iter()
        .filter_map(|(name, running)| (!running).then_some(name))
        .collect()
    }
}

/// Handlers reach the services directly (`state.ledger`, `state.settings`).
impl std::ops::Deref for Shared {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}
