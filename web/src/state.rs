//! The one state every handler shares.

use std::sync::Arc;

use crate::{configuration::Settings, db::Db};

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
    pub ledger: ledger::Ledger,
    pub db: Db,
    pub razorpay: razorpay::Client,
    pub settings: Arc<Settings>,
    /// Wakes the webhook worker when an event is stored.
    pub webhook_wakeup: Arc<tokio::sync::Notify>,
    /// Group commit for charges.
    pub charger: crate::api::batcher::Charger,
    /// The API's rate limits (per key, and per address for unknown keys).
    pub api_limits: crate::api::rate_limits::ApiRateLimits,
    /// Password requests per client address.
    pub address_limits: crate::limits::AddressLimits,
    /// Bounded password hashing.
    pub passwords: crate::passwords::PasswordHashing,
    /// API keys verified recently.
    pub api_keys: Arc<crate::api::KeyCache>,
}
