//! What checkout posts back to the merchant's `callback_url` after an attempt: the signed success
//! fields, or the failure's `error[...]` fields.

use razorpay::{Secret, wire::Payment};
use serde_json::Value;

use crate::methods::Failure;

/// What a payment attempt reports back to the browser (the fields checkout POSTs to the
/// merchant's `callback_url`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum CallbackFields {
    Success {
        razorpay_payment_id: String,
        razorpay_order_id: String,
        razorpay_signature: String,
    },
    Failure {
        #[serde(rename = "error[code]")]
        code: String,
        #[serde(rename = "error[description]")]
        description: String,
        #[serde(rename = "error[source]")]
        source: String,
        #[serde(rename = "error[step]")]
        step: String,
        #[serde(rename = "error[reason]")]
        reason: String,
        /// A JSON string, as Razorpay sends it.
        #[serde(rename = "error[metadata]")]
        metadata: String,
    },
}

impl CallbackFields {
    pub fn pairs(&self) -> Vec<(String, String)> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

pub(crate) fn success_callback(
    payment: &Payment,
    order_id: &str,
    key_secret: &Secret,
) -> CallbackFields {
    CallbackFields::Success {
        razorpay_payment_id: payment.id.clone(),
        razorpay_order_id: order_id.to_string(),
        razorpay_signature: razorpay::signature::payment_signature(
            order_id,
            &payment.id,
            key_secret,
        ),
    }
}

pub(crate) fn failure_callback(
    failure: &Failure,
    payment: &Payment,
    order_id: &str,
) -> CallbackFields {
    CallbackFields::Failure {
        code: failure.code.into(),
        description: failure.description.into(),
        source: failure.source.into(),
        step: failure.step.into(),
        reason: failure.reason.into(),
        metadata: serde_json::json!({"payment_id": payment.id, "order_id": order_id}).to_string(),
    }
}
