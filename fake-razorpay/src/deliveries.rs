//! The log of webhook deliveries: every event sent, to where, and each attempt's answer (what
//! the control API and tests read).

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: u64,
    pub event_id: String,
    pub event: String,
    pub payment_id: Option<String>,
    pub order_id: Option<String>,
    pub refund_id: Option<String>,
    pub url: Option<String>,
    /// A deliberate extra delivery (the duplicates fault).
    pub duplicate: bool,
    pub status: DeliveryStatus,
    pub attempts: Vec<AttemptLog>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Gave up after the last attempt.
    Failed,
    /// No webhook URL was configured.
    NotSent,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptLog {
    pub at_ms: u64,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Failed on purpose (the fail-first fault); nothing was sent.
    pub simulated: bool,
}
