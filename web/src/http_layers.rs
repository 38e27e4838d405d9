//! What wraps every request on its way in and out: the security headers every answer carries,
//! and the request log line with its id (`X-Request-Id`) and the request metrics.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use metrics::SharedString;
use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU32, Ordering},
};
use tracing::Instrument;

use crate::configuration::Settings;

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

/// The security headers' settings, rendered once when the router is built rather than on every
/// answer.
#[derive(Clone)]
pub struct SecurityHeaderValues {
    content_security_policy: Option<HeaderValue>,
    https: bool,
}

impl SecurityHeaderValues {
    pub fn from_settings(settings: &Settings) -> Self {
        SecurityHeaderValues {
            content_security_policy: HeaderValue::from_str(&content_security_policy(settings)).ok(),
            https: settings.served_over_https(),
        }
    }
}

pub async fn security_headers(
    State(values): State<SecurityHeaderValues>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // The `http` crate's constants: a name given as a string is parsed and hashed on every answer.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(csp) = values.content_security_policy {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    if values.https {
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
/// Every request passes here, so it allocates little: the id is made without a system call, the
/// path is kept as the request's own `Uri` (shared bytes) and formatted only if logged, and the
/// metrics' labels are borrowed or shared where they can be.
pub async fn log_request(mut request: Request, next: Next) -> Response {
    let id = request_id(request.headers());
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let method = request.method().clone();
    let uri = request.uri().clone();
    // The route's pattern, not the path: ids in paths would make a series per id.
    let route: SharedString = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or(SharedString::const_str("unmatched"), |m| {
            SharedString::from_shared(Arc::<str>::from(m.as_str()))
        });
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or("?"));
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            %method,
            path = uri.path(),
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
        "status" => status_label(response.status())
    )
    .increment(1);
    metrics::histogram!(
        "kalp_http_request_duration_seconds",
        "route" => route,
        "method" => method_label
    )
    .record(started.elapsed().as_secs_f64());
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The status as a metric label: borrowed for the answers this app gives, so the common ones
/// allocate nothing (`StatusCode::as_str` is not `'static`).
fn status_label(status: axum::http::StatusCode) -> SharedString {
    let known = match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        _ => return SharedString::from_owned(status.as_u16().to_string()),
    };
    SharedString::const_str(known)
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The caller's `X-Request-Id` when it is a plain token (1 to 64 of `A-Za-z0-9._-`, so it can't
/// forge log lines or grow them), else a new one: this process's random prefix and a count, 16
/// hex digits. An id only ties log lines together, so it need not be unpredictable, and making
/// it costs no `getrandom` call per request.
fn request_id(headers: &axum::http::HeaderMap) -> HeaderValue {
    let given = headers.get(REQUEST_ID).filter(|v| {
        (1..=64).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    });
    if let Some(id) = given {
        return id.clone();
    }
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness, instances share a prefix and their ids differ only by count.
        let _ = getrandom::fill(&mut bytes);
        u32::from_le_bytes(bytes)
    });
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{prefix:08x}{count:08x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
