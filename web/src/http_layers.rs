//! What wraps every request on its way in and out: the security headers every answer carries,
//! and the request log line with its id (`X-Request-Id`) and the request metrics.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use crate::{configuration::Settings, state::AppState};

/// What the browser may do with our pages. No inline script anywhere: every script is a file
/// under /static. Forms may post here and to Razorpay's checkout (Add Credits hands the browser
/// over with a form).
fn content_security_policy(settings: &Settings) -> String {
    let razorpay = settings.razorpay.base_url.trim_end_matches('/');
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {razorpay}; frame-ancestors 'none'; base-uri 'none'"
    )
}

pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let https = state.settings.served_over_https();
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&state.settings)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    // Pages show balances, payments and keys: never kept by a browser or a proxy. Static
    // files say otherwise for themselves.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One line per request: method, path (never the query, which may carry ids), status, time.
pub async fn log_request(mut request: Request, next: Next) -> Response {
    let id = request_id(request.headers());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The route's pattern, not the path: ids in paths would make a series per id.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let span = tracing::info_span!("request", request_id = %id);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    // Only the standard methods by name: a flood of invented ones must not grow the series.
    let method_label = match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    metrics::counter!(
        "kalp_http_requests_total",
        "route" => route.clone(),
        "method" => method_label,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!(
        "kalp_http_request_duration_seconds",
        "route" => route,
        "method" => method_label
    )
    .record(started.elapsed().as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The caller's `X-Request-Id` when it is a plain token (1 to 64 of `A-Za-z0-9._-`, so it can't
/// forge log lines or grow them), else a new random one.
fn request_id(headers: &axum::http::HeaderMap) -> String {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    match given {
        Some(id) => id.to_string(),
        None => crate::crypto::random_token()
            .map(|t| t.chars().take(16).collect())
            .unwrap_or_else(|_| "unknown".into()),
    }
}
