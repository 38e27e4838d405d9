//! Errors for people: one type, rendered as the app's error page (the JSON API has
//! `api::error::ApiError`, and the webhook endpoint `webhooks::WebhookRejection`).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use crate::{pages::views::error_page, services::ServiceError, store::StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// A form larger than its route accepts.
    #[error("too large")]
    TooLarge,
    #[error("{0}")]
    Forbidden(String),
    /// Over a limit; `retry_after` seconds until it resets.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Too much work at once (password hashing): try again in a moment.
    #[error("busy")]
    Busy,
    /// Not signed in: send the person to log in.
    #[error("sign-in required")]
    SignInRequired,
    /// Razorpay could not be reached or refused us; nothing was charged.
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type PageResult<T> = Result<T, PageError>;

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<ledger::LedgerError> for PageError {
    fn from(e: ledger::LedgerError) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<crate::crypto::NoRandomness> for PageError {
    fn from(e: crate::crypto::NoRandomness) -> Self {
        PageError::Internal(e.into())
    }
}

impl From<crate::passwords::HashingError> for PageError {
    fn from(e: crate::passwords::HashingError) -> Self {
        match e {
            crate::passwords::HashingError::Busy => PageError::Busy,
            other => PageError::Internal(other.into()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::SignInRequired => return Redirect::to("/login").into_response(),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here. It may belong to another account, or never existed."
                    .to_string(),
            ),
            PageError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, "Something is not right", m.clone())
            }
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much at once",
                "What was sent is larger than this form accepts.".to_string(),
            ),
            PageError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "Slow down", message.clone())
            }
            PageError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "We are checking a lot of passwords at this moment. Try again in a few seconds."
                    .to_string(),
            ),
            PageError::Upstream(m) => (
                StatusCode::BAD_GATEWAY,
                "Payment service unavailable",
                m.clone(),
            ),
            PageError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Nothing was charged twice; please try again.".to_string(),
                )
            }
        };
        let mut response = error_page(status, title, &message);
        let retry_after = match &self {
            PageError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            PageError::Busy => Some(2),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
