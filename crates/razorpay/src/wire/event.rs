use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{order::Order, payment::Payment, refund::Refund};

/// A webhook delivery's body. Parse it only after the signature over the raw bytes checked out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    #[serde(default = "event_entity")]
    pub entity: String,
    #[serde(default)]
    pub account_id: Option<String>,
    pub event: EventType,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub payload: EventPayload,
    pub created_at: i64,
}

fn event_entity() -> String {
    "event".into()
}

/// The entities an event carries, each a snapshot taken when the event happened (a
/// `payment.authorized` may arrive after the payment was captured and still show it authorized).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Wrapped<Payment>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Wrapped<Order>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Wrapped<Refund>>,
}

/// `{"entity": {…}}`, as each payload item is wrapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wrapped<T> {
    pub entity: T,
}

/// The events the top-up flow handles; any other event is kept by name and can be ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType {
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    OrderPaid,
    RefundCreated,
    RefundProcessed,
    RefundFailed,
    RefundSpeedChanged,
    Other(String),
}

impl EventType {
    pub fn as_str(&self) -> &str {
        match self {
            EventType::PaymentAuthorized => "payment.authorized",
            EventType::PaymentCaptured => "payment.captured",
            EventType::PaymentFailed => "payment.failed",
            EventType::OrderPaid => "order.paid",
            EventType::RefundCreated => "refund.created",
            EventType::RefundProcessed => "refund.processed",
            EventType::RefundFailed => "refund.failed",
            EventType::RefundSpeedChanged => "refund.speed_changed",
            EventType::Other(name) => name,
        }
    }

    pub fn parse(s: &str) -> EventType {
        match s {
            "payment.authorized" => EventType::PaymentAuthorized,
            "payment.captured" => EventType::PaymentCaptured,
            "payment.failed" => EventType::PaymentFailed,
            "order.paid" => EventType::OrderPaid,
            "refund.created" => EventType::RefundCreated,
            "refund.processed" => EventType::RefundProcessed,
            "refund.failed" => EventType::RefundFailed,
            "refund.speed_changed" => EventType::RefundSpeedChanged,
            other => EventType::Other(other.to_string()),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(EventType::parse(&String::deserialize(deserializer)?))
    }
}

impl WebhookEvent {
    pub fn payment(&self) -> Option<&Payment> {
        self.payload.payment.as_ref().map(|w| &w.entity)
    }

    pub fn order(&self) -> Option<&Order> {
        self.payload.order.as_ref().map(|w| &w.entity)
    }

    pub fn refund(&self) -> Option<&Refund> {
        self.payload.refund.as_ref().map(|w| &w.entity)
    }
}
