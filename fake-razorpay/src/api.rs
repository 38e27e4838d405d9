//! The REST API under `/v1`, with Razorpay's Basic auth, rules, messages and error envelope.

use std::collections::HashMap;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use razorpay::wire::Collection;
use serde::Serialize;
use serde_json::Value;

use crate::{errors::GatewayError, fake::Fake, ids};

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.to_json())).into_response()
    }
}

pub(crate) fn routes(fake: Fake) -> Router<Fake> {
    Router::new()
        .route("/v1/orders", post(create_order).get(list_orders))
        .route("/v1/orders/{id}", get(fetch_order))
        .route("/v1/orders/{id}/payments", get(order_payments))
        .route("/v1/payments", get(list_payments))
        .route("/v1/payments/{id}", get(fetch_payment))
        .route("/v1/payments/{id}/capture", post(capture))
        .route("/v1/payments/{id}/refund", post(refund))
        .route("/v1/payments/{id}/refunds", get(payment_refunds))
        .route("/v1/refunds/{id}", get(fetch_refund))
        .route("/v1/refunds", get(list_refunds))
        .route("/v1/{*rest}", get(not_found).post(not_found))
        .layer(middleware::from_fn_with_state(fake.clone(), api_faults))
        .layer(middleware::from_fn_with_state(fake, basic_auth))
}

async fn not_found() -> GatewayError {
    GatewayError::bad_request("The requested URL was not found on the server.").with_status(400)
}

/// `Authorization: Basic base64(key_id:key_secret)`, exactly; 401 otherwise.
async fn basic_auth(State(fake): State<Fake>, request: Request, next: Next) -> Response {
    let (key_id, key_secret) = {
        let state = fake.lock();
        (
            state.settings.key_id.clone(),
            state.settings.key_secret.clone(),
        )
    };
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
        return GatewayError::bad_request(
            "Please provide your api key for authentication purposes.",
        )
        .with_status(401)
        .into_response();
    };
    let decoded = decode_base64(encoded.trim()).and_then(|b| String::from_utf8(b).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return GatewayError::bad_request("The api key provided is invalid")
            .with_status(401)
            .into_response();
    };
    if id != key_id {
        return GatewayError::bad_request("The api key provided is invalid")
            .with_status(401)
            .into_response();
    }
    if !constant_time_eq(secret.as_bytes(), key_secret.expose().as_bytes()) {
        return GatewayError::bad_request("The api secret provided is invalid")
            .with_status(401)
            .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let trimmed = input.trim_end_matches('=');
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in trimmed.bytes() {
        buffer = (buffer << 6) | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The API faults: a share of calls answered 500, a share that hang first.
async fn api_faults(State(fake): State<Fake>, request: Request, next: Next) -> Response {
    let faults = fake.faults();
    if faults.api_error_percent > 0 && ids::below(100) < u64::from(faults.api_error_percent) {
        return GatewayError::server_error().into_response();
    }
    if faults.api_timeout_percent > 0 && ids::below(100) < u64::from(faults.api_timeout_percent) {
        tokio::time::sleep(std::time::Duration::from_millis(faults.api_timeout_ms)).await;
    }
    next.run(request).await
}

fn ok<T: Serialize>(value: T) -> Response {
    Json(value).into_response()
}

fn parse_json(body: &Bytes) -> Result<Value, GatewayError> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|_| GatewayError::bad_request("The request body must be valid JSON."))
}

async fn create_order(State(fake): State<Fake>, body: Bytes) -> Result<Response, GatewayError> {
    let body = parse_json(&body)?;
    let order = fake.lock().gateway.create_order(&body)?;
    Ok(ok(order))
}

async fn fetch_order(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    Ok(ok(fake.lock().gateway.order(&id)?.clone()))
}

async fn order_payments(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    let items = fake.lock().gateway.order_payments(&id)?;
    Ok(ok(Collection {
        entity: "collection".into(),
        count: items.len() as u64,
        items,
    }))
}

async fn fetch_payment(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    Ok(ok(fake.lock().gateway.payment(&id)?.clone()))
}

async fn fetch_refund(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    Ok(ok(fake.lock().gateway.refund(&id)?.clone()))
}

/// `from`, `to` (Unix seconds, inclusive), `count` (1–100, default 10), `skip`; newest first.
struct Page {
    from: i64,
    to: i64,
    count: usize,
    skip: usize,
}

fn page(query: &HashMap<String, String>) -> Result<Page, GatewayError> {
    let number = |name: &str| -> Result<Option<i64>, GatewayError> {
        query
            .get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    GatewayError::bad_request(format!("The {name} must be an integer.")).field(name)
                })
            })
            .transpose()
    };
    if let Some(extra) = query
        .keys()
        .find(|k| !["from", "to", "count", "skip"].contains(&k.as_str()))
    {
        return Err(GatewayError::bad_request(format!(
            "{extra} is/are not required and should not be sent"
        ))
        .field(extra));
    }
    let count = number("count")?.unwrap_or(10);
    if !(1..=100).contains(&count) {
        return Err(
            GatewayError::bad_request("The count must be between 1 and 100.").field("count"),
        );
    }
    let skip = number("skip")?.unwrap_or(0);
    if skip < 0 {
        return Err(GatewayError::bad_request("The skip must be at least 0.").field("skip"));
    }
    Ok(Page {
        from: number("from")?.unwrap_or(0),
        to: number("to")?.unwrap_or(i64::MAX),
        count: count as usize,
        skip: skip as usize,
    })
}

fn paginate<T: Clone + Serialize>(
    items: impl DoubleEndedIterator<Item = T>,
    created_at: impl Fn(&T) -> i64,
    page: &Page,
) -> Response {
    let items: Vec<T> = items
        .rev()
        .filter(|i| (page.from..=page.to).contains(&created_at(i)))
        .skip(page.skip)
        .take(page.count)
        .collect();
    ok(Collection {
        entity: "collection".into(),
        count: items.len() as u64,
        items,
    })
}

async fn list_orders(
    State(fake): State<Fake>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, GatewayError> {
    let page = page(&query)?;
    let state = fake.lock();
    Ok(paginate(
        state.gateway.orders().cloned(),
        |o| o.created_at,
        &page,
    ))
}

async fn list_payments(
    State(fake): State<Fake>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, GatewayError> {
    let page = page(&query)?;
    let state = fake.lock();
    Ok(paginate(
        state.gateway.payments().cloned(),
        |p| p.created_at,
        &page,
    ))
}

async fn list_refunds(
    State(fake): State<Fake>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, GatewayError> {
    let page = page(&query)?;
    let state = fake.lock();
    Ok(paginate(
        state.gateway.refunds().cloned(),
        |r| r.created_at,
        &page,
    ))
}

async fn payment_refunds(
    State(fake): State<Fake>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    let state = fake.lock();
    state.gateway.payment(&id)?;
    let items: Vec<_> = state
        .gateway
        .refunds()
        .filter(|r| r.payment_id == id)
        .cloned()
        .collect();
    Ok(ok(Collection {
        entity: "collection".into(),
        count: items.len() as u64,
        items,
    }))
}

async fn capture(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let body = parse_json(&body)?;
    let identity = fake.identity();
    let (payment, events) = fake.lock().gateway.capture(&id, &body, &identity)?;
    fake.dispatch(events).await;
    Ok(ok(payment))
}

async fn refund(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let body = parse_json(&body)?;
    let key = headers
        .get("x-refund-idempotency")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| GatewayError::bad_request("The idempotency key must be ASCII."))?;
    let refund = fake.refund(&id, &body, key.as_deref()).await?;
    Ok(ok(refund))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_basic_credentials() {
        assert_eq!(decode_base64("YTpi").as_deref(), Some(&b"a:b"[..]));
        assert_eq!(decode_base64("YTpiYw==").as_deref(), Some(&b"a:bc"[..]));
        assert_eq!(decode_base64("!!!"), None);
    }
}
