//! The one state every handler shares.

use std::sync::Arc;

use crate::{configuration::Settings, db::Db};

#[derive(Clone)]
pub struct AppState {
    pub ledger: ledger::Ledger,
    pub db: Db,
    pub razorpay: razorpay::Client,
    pub settings: Arc<Settings>,
    /// Wakes the webhook worker when an event is stored.
    pub webhook_wakeup: Arc<tokio::sync::Notify>,
    /// Group commit for charges.
    pub charger: crate::api::batcher::Charger,
    pub rate_limiter: Arc<crate::api::RateLimiter>,
    /// API keys verified recently.
    pub api_keys: Arc<crate::api::KeyCache>,
}
