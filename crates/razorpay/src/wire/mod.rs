//! What Razorpay sends and accepts, as serde types.
//!
//! Responses are parsed tolerantly, as Razorpay really sends them: unknown fields are ignored,
//! nearly every field may be missing or null, `notes` may be `[]`, `error_code` may be `""`, and a
//! few documented strings arrive as numbers. Requests serialise only the fields Razorpay accepts,
//! because Razorpay rejects unknown ones.

mod event;
mod lenient;
mod notes;
mod order;
mod payment;
mod refund;
mod requests;

pub use event::{EventPayload, EventType, WebhookEvent, Wrapped};
pub use notes::Notes;
pub use order::{Order, OrderStatus};
pub use payment::{AcquirerData, Card, Payment, PaymentMethod, PaymentStatus, RefundStatus, Upi};
pub use refund::{Refund, RefundState};
pub use requests::{
    CaptureRequest, CaptureSettings, CreateOrder, CreateRefund, ListQuery, OrderPaymentSettings,
    RefundSpeed,
};

use serde::{Deserialize, Serialize};

/// A page of a list endpoint: `{"entity":"collection","count":N,"items":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection<T> {
    #[serde(default = "collection_entity")]
    pub entity: String,
    #[serde(default)]
    pub count: u64,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

fn collection_entity() -> String {
    "collection".into()
}

/// Razorpay's error envelope: `{"error":{"code":…,"description":…,…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub source: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub step: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub field: Option<String>,
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}
