//! Test control under `/_fake/` (never under `/v1`): drive payments without a browser, switch
//! faults, read the webhook log, reset, and a small dashboard.

use askama::Template;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use razorpay::{Secret, wire::RefundState};
use serde::Deserialize;

use crate::{
    deliveries::Delivery,
    errors::GatewayError,
    fake::{Fake, PayOverrides},
    methods::PayRequest,
    settings::{Faults, PendingOutcome},
};

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/_fake/", get(dashboard))
        .route("/_fake", get(dashboard))
        .route("/_fake/healthz", get(|| async { "ok" }))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/_fake/orders/{id}/pay", post(pay))
        .route("/_fake/payments/{id}/authorize", post(authorize))
        .route("/_fake/payments/{id}/resolve", post(resolve))
        .route("/_fake/refunds/{id}/process", post(process_refund))
        .route("/_fake/faults", get(get_faults).post(set_faults))
        .route("/_fake/webhooks", get(webhooks))
        .route("/_fake/config", post(config))
        .route("/_fake/reset", post(reset))
}

#[derive(Deserialize)]
struct PayBody {
    #[serde(flatten)]
    request: PayRequest,
    #[serde(flatten)]
    overrides: PayOverrides,
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, GatewayError> {
    serde_json::from_slice(body)
        .map_err(|e| GatewayError::bad_request(format!("Invalid request: {e}")))
}

/// Makes a payment exactly as the checkout pages would (same state changes, same webhooks) and
/// answers the fields the browser would have posted to `callback_url`, and the payment.
async fn pay(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let body: PayBody = parse(&body)?;
    let result = fake.pay(&id, &body.request, body.overrides).await?;
    Ok(Json(result).into_response())
}

async fn authorize(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    Ok(Json(fake.late_authorize(&id).await?).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    #[serde(default)]
    outcome: PendingOutcome,
}

/// The bank answers a pending payment now: `{"outcome": "complete" | "timeout"}`.
async fn resolve(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let body: ResolveBody = if body.is_empty() {
        ResolveBody::default()
    } else {
        parse(&body)?
    };
    let timeout = body.outcome == PendingOutcome::Timeout;
    Ok(Json(fake.resolve_pending(&id, timeout).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessBody {
    outcome: RefundState,
}

/// A pending refund's outcome now: `{"outcome": "processed" | "failed"}`.
async fn process_refund(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let body: ProcessBody = parse(&body)?;
    if body.outcome == RefundState::Pending {
        return Err(GatewayError::bad_request(
            "The outcome is processed or failed.",
        ));
    }
    Ok(Json(fake.settle_refund(&id, body.outcome).await?).into_response())
}

async fn favicon() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

async fn get_faults(State(fake): State<Fake>) -> Json<Faults> {
    Json(fake.faults())
}

/// Replaces the faults; fields left out take their default (off).
async fn set_faults(State(fake): State<Fake>, body: Bytes) -> Result<Json<Faults>, GatewayError> {
    let faults: Faults = parse(&body)?;
    if faults.api_error_percent > 100 || faults.api_timeout_percent > 100 {
        return Err(GatewayError::bad_request("Percentages are 0 to 100."));
    }
    fake.set_faults(faults.clone());
    Ok(Json(faults))
}

async fn webhooks(State(fake): State<Fake>) -> Json<Vec<Delivery>> {
    Json(fake.deliveries())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
}

async fn config(State(fake): State<Fake>, body: Bytes) -> Result<StatusCode, GatewayError> {
    let body: ConfigBody = parse(&body)?;
    fake.set_webhook(body.webhook_url, body.webhook_secret.map(Secret::new));
    Ok(StatusCode::NO_CONTENT)
}

async fn reset(State(fake): State<Fake>) -> StatusCode {
    fake.reset();
    StatusCode::NO_CONTENT
}

struct OrderRow {
    id: String,
    amount: String,
    status: String,
    attempts: u32,
    receipt: String,
}

struct PaymentRow {
    id: String,
    order_id: String,
    amount: String,
    method: String,
    status: String,
    error: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    orders: Vec<OrderRow>,
    payments: Vec<PaymentRow>,
    deliveries: Vec<Delivery>,
    faults: String,
    webhook_url: String,
}

async fn dashboard(State(fake): State<Fake>) -> Response {
    let page = {
        let state = fake.lock();
        Dashboard {
            orders: state
                .gateway
                .orders()
                .rev()
                .map(|o| OrderRow {
                    id: o.id.clone(),
                    amount: o.amount.display_inr(),
                    status: format!("{:?}", o.status).to_lowercase(),
                    attempts: o.attempts,
                    receipt: o.receipt.clone().unwrap_or_default(),
                })
                .collect(),
            payments: state
                .gateway
                .payments()
                .rev()
                .map(|p| PaymentRow {
                    id: p.id.clone(),
                    order_id: p.order_id.clone().unwrap_or_default(),
                    amount: p.amount.display_inr(),
                    method: p.method.label().to_string(),
                    status: format!("{:?}", p.status).to_lowercase(),
                    error: p.error_reason.clone().unwrap_or_default(),
                })
                .collect(),
            deliveries: state.deliveries.iter().rev().cloned().collect(),
            faults: serde_json::to_string_pretty(&state.faults).unwrap_or_default(),
            webhook_url: state
                .settings
                .webhook_url
                .clone()
                .unwrap_or_else(|| "(none)".into()),
        }
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
