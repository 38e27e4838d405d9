//! Errors for people: one type, rendered as the app's error page. (The JSON API has its own,
//! `api::ApiError`, and webhooks theirs.) And [`shape_errors`], which gives every rejection the
//! framework makes by itself (a malformed path or form, a wrong method, a body too large, a
//! timeout) the shape of its audience: the error page for people, JSON under `/api/` and
//! `/webhooks/`.

use askama::Template;
use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
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

impl From<crate::passwords::HashingError> for AppError {
    fn from(e: crate::passwords::HashingError) -> Self {
        match e {
            crate::passwords::HashingError::Busy => AppError::Busy,
            other => AppError::Internal(other.into()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The error page, with its status.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
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
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much at once",
                "What was sent is larger than this form accepts.".to_string(),
            ),
            AppError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "Slow down", message.clone())
            }
            AppError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy right now",
                "We are checking a lot of passwords at this moment. Try again in a few seconds."
                    .to_string(),
            ),
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
        let mut response = error_page(status, title, &message);
        let retry_after = match &self {
            AppError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            AppError::Busy => Some(2),
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

pub type AppResult<T> = Result<T, AppError>;

/// Gives every error response the framework made by itself the shape of its audience. Those
/// are plain text or empty (axum's rejections, a 405, a 408 from the timeout layer); ours are
/// pages or JSON already and pass untouched, as do successes and redirects.
pub async fn shape_errors(request: Request, next: Next) -> Response {
    // Machines get JSON: the usage API, and Razorpay at the webhook endpoint.
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/webhooks/");
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let framework_made = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !framework_made {
        return response;
    }
    let kept: Vec<_> = [header::ALLOW, header::RETRY_AFTER]
        .into_iter()
        .filter_map(|name| response.headers().get(&name).map(|v| (name, v.clone())))
        .collect();
    let (code, message) = describe(status, &method);
    let mut shaped = if api {
        crate::api::ApiError::new(status, code, message).into_response()
    } else {
        let title = status
            .canonical_reason()
            .unwrap_or("Something is not right");
        error_page(status, title, &message)
    };
    for (name, value) in kept {
        shaped.headers_mut().insert(name, value);
    }
    shaped
}

/// A framework rejection in words, and the API's code for it.
fn describe(status: StatusCode, method: &axum::http::Method) -> (&'static str, String) {
    match status {
        StatusCode::BAD_REQUEST => (
            "bad_request",
            "The request could not be read: check the address and what was sent.".into(),
        ),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Sign in, or send a valid API key.".into()),
        StatusCode::NOT_FOUND => ("not_found", "There is nothing here.".into()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("This address does not accept {method}."),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "The request took too long and was stopped. Anything that changes money is safe to retry with the same Idempotency-Key."
                .into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "What was sent is larger than this address accepts.".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send the body as the documented type (JSON with Content-Type: application/json for the API, a form for pages).".into(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "invalid_request",
            "What was sent could not be understood: a field is missing or has the wrong type."
                .into(),
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "rate_limited",
            "Too many requests; retry after the delay in Retry-After.".into(),
        ),
        s if s.is_server_error() => (
            "internal",
            "Something went wrong on our side. Nothing was charged twice; please try again."
                .into(),
        ),
        _ => ("bad_request", "The request could not be handled.".into()),
    }
}
