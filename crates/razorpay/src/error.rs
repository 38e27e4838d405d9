//! One error type for every way a call to Razorpay can fail.

use std::{fmt, time::Duration};

use crate::wire::ErrorBody;

/// Razorpay's description of a refused request, from its error envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    /// `BAD_REQUEST_ERROR`, `GATEWAY_ERROR` or `SERVER_ERROR`.
    pub code: String,
    pub description: String,
    pub field: Option<String>,
    pub source: Option<String>,
    pub step: Option<String>,
    pub reason: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

impl Refusal {
    pub(crate) fn from_body(status: u16, body: ErrorBody) -> Self {
        Refusal {
            status,
            code: body.code,
            description: body.description,
            field: body.field,
            source: body.source,
            step: body.step,
            reason: body.reason,
            metadata: body.metadata,
        }
    }

    /// For a response without Razorpay's envelope (a proxy's HTML page, an empty body).
    pub(crate) fn bare(status: u16, code: &str, description: String) -> Self {
        Refusal {
            status,
            code: code.into(),
            description,
            field: None,
            source: None,
            step: None,
            reason: None,
            metadata: None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HTTP {}): {}",
            self.code, self.status, self.description
        )?;
        if let Some(field) = &self.field {
            write!(f, " [field {field}]")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Razorpay refused the request as invalid (HTTP 400, or another 4xx).
    #[error("Razorpay refused the request: {0}")]
    BadRequest(Box<Refusal>),
    /// Wrong key id or secret, or none (HTTP 401).
    #[error("Razorpay authentication failed: {0}")]
    Authentication(Box<Refusal>),
    /// The id is not known to this account and mode (Razorpay answers HTTP 400
    /// "The id provided does not exist").
    #[error("Razorpay does not know that id: {0}")]
    NotFound(Box<Refusal>),
    /// An idempotent request with the same key is still being processed (HTTP 409).
    #[error("Razorpay is still processing a request with this idempotency key: {0}")]
    Conflict(Box<Refusal>),
    /// HTTP 429.
    #[error("Razorpay is rate limiting us")]
    RateLimited {
        retry_after: Option<Duration>,
        error: Option<Box<Refusal>>,
    },
    /// A fault inside Razorpay (HTTP 5xx, `SERVER_ERROR`).
    #[error("Razorpay server error: {0}")]
    Server(Box<Refusal>),
    /// A fault at the bank or gateway behind Razorpay (`GATEWAY_ERROR`, HTTP 502/504).
    #[error("payment gateway error: {0}")]
    Gateway(Box<Refusal>),
    /// No answer within the request timeout; the request may or may not have been processed.
    #[error("Razorpay did not answer in time")]
    Timeout,
    /// The connection could not be made: the request never reached Razorpay.
    #[error("could not connect to Razorpay: {0}")]
    Connect(String),
    /// The connection failed after the request may have been sent.
    #[error("transport error talking to Razorpay: {0}")]
    Transport(String),
    /// An answer that is not what Razorpay documents.
    #[error("unexpected answer from Razorpay (HTTP {status}): {detail}")]
    UnexpectedBody { status: u16, detail: String },
    /// Refused before sending: an id or parameter that can't be right.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The client's own settings are wrong.
    #[error("invalid Razorpay client settings: {0}")]
    Config(String),
}

impl Error {
    /// Razorpay's error details, when it sent them.
    pub fn api_error(&self) -> Option<&Refusal> {
        match self {
            Error::BadRequest(e)
            | Error::Authentication(e)
            | Error::NotFound(e)
            | Error::Conflict(e)
            | Error::Server(e)
            | Error::Gateway(e) => Some(e),
            Error::RateLimited { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// True for failures that may pass if the same request is tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. }
                | Error::Server(_)
                | Error::Gateway(_)
                | Error::Timeout
                | Error::Connect(_)
                | Error::Transport(_)
        )
    }
}
