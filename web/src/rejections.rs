//! Every rejection the framework makes by itself (a malformed path or form, a wrong method, a
//! body too large, a timeout) gets the shape of its audience: the error page for people, JSON
//! under `/api/` and `/webhooks/`.

use axum::{
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{api::error::ApiError, pages::views::error_page};

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
        ApiError::new(status, code, message).into_response()
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
