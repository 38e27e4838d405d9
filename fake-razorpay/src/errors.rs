//! Razorpay's error envelope, as the fake answers it: `{"error": {"code", "description",
//! "source", "step", "reason", "metadata", "field"}}` with its HTTP status.

use serde_json::Value;

/// An error in Razorpay's envelope, with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub field: Option<String>,
    pub source: &'static str,
    pub step: &'static str,
    pub reason: &'static str,
}

impl GatewayError {
    pub fn bad_request(description: impl Into<String>) -> Self {
        GatewayError {
            status: 400,
            code: "BAD_REQUEST_ERROR",
            description: description.into(),
            field: None,
            source: "business",
            step: "payment_initiation",
            reason: "input_validation_failed",
        }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn not_found() -> Self {
        GatewayError::bad_request("The id provided does not exist")
    }

    pub fn server_error() -> Self {
        GatewayError {
            status: 500,
            code: "SERVER_ERROR",
            description:
                "The server encountered an error. The incident has been reported to admins.".into(),
            field: None,
            source: "internal",
            step: "NA",
            reason: "server_error",
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"error": {
            "code": self.code,
            "description": self.description,
            "source": self.source,
            "step": self.step,
            "reason": self.reason,
            "metadata": {},
            "field": self.field,
        }})
    }
}

impl GatewayError {
    pub(crate) fn with_step(mut self, step: &'static str) -> Self {
        self.step = step;
        self
    }
}
