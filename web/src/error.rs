//! One error type for the web app. People get a page; the JSON API (later) gets JSON.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// Not signed in: send the person to log in.
    #[error("sign-in required")]
    SignInRequired,
    /// Razorpay could not be reached or refused us; nothing was charged.
    #[error("{0}")]
    Upstream(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        // Through the ledger's error, which knows a deadlock or BUSY when it sees one.
        AppError::Internal(ledger::LedgerError::from(e).into())
    }
}

/// Lets [`ledger::Ledger::transact`] retry a transaction whose body failed with a transient
/// database error (in a ledger operation or in one of our own statements).
impl ledger::Retryable for AppError {
    fn is_transient(&self) -> bool {
        match self {
            AppError::Internal(e) => e
                .downcast_ref::<ledger::LedgerError>()
                .is_some_and(ledger::LedgerError::is_transient),
            _ => false,
        }
    }
}

impl From<ledger::LedgerError> for AppError {
    fn from(e: ledger::LedgerError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            AppError::SignInRequired => return Redirect::to("/login").into_response(),
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here. It may belong to another account, or never existed."
                    .to_string(),
            ),
            AppError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, "Something is not right", m.clone())
            }
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m.clone()),
            AppError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, "Slow down", m.clone()),
            AppError::Upstream(m) => (
                StatusCode::BAD_GATEWAY,
                "Payment service unavailable",
                m.clone(),
            ),
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Nothing was charged twice; please try again.".to_string(),
                )
            }
        };
        let page = ErrorPage {
            title,
            message: &message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
