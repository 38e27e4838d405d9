//! `POST /webhooks/razorpay`: verify the signature over the raw bytes, store the event once (by
//! `X-Razorpay-Event-Id`) and answer 200 at once; a worker processes stored events. Processing
//! goes through the same idempotent crediting as the callback, so duplicates, reordering and
//! races with the browser never credit twice, and a top-up never moves backwards.

use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use razorpay::{
    WebhookSecrets,
    signature::verify_webhook_signature,
    wire::{EventType, Payment, PaymentStatus, WebhookEvent},
};
use serde_json::json;

use crate::{
    billing::{refunds, settle, topups},
    db::{col, now_micros},
    error::AppResult,
    state::AppState,
};

/// Razorpay's bodies are a few KB; anything near this is not a webhook.
pub const MAX_BODY: usize = 256 * 1024;
/// How long a worker holds an event before another may take it over.
const LEASE_SECS: i64 = 60;
/// Give up on an event after this many failed attempts (it stays stored for an operator).
const MAX_ATTEMPTS: i64 = 20;

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    tracing::warn!(code, message, "webhook refused");
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let signature = header("x-razorpay-signature");
    let event_id = header("x-razorpay-event-id");
    if signature.is_empty() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "missing_signature",
            "X-Razorpay-Signature is required.",
        );
    }
    let secrets = WebhookSecrets {
        current: state.settings.razorpay.webhook_secret.clone(),
        previous: Some(state.settings.razorpay.webhook_previous_secret.clone())
            .filter(|s| !s.is_empty()),
    };
    if verify_webhook_signature(&body, &signature, &secrets).is_err() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            "The signature does not match the body.",
        );
    }
    if event_id.is_empty()
        || event_id.len() > 64
        || !event_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_event_id",
            "X-Razorpay-Event-Id is missing or malformed.",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "The body is not UTF-8 JSON.",
        );
    };
    let event: WebhookEvent = match serde_json::from_str(text) {
        Ok(event) => event,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "The body is not a Razorpay event.",
            );
        }
    };
    let handled = handled_already(&state, &event).await;
    let now = now_micros();
    let stored = state
        .db
        .exec(
            "INSERT INTO web_webhook_events (event_id, event, body, received_at, attempts, processed_at) \
             VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (event_id) DO NOTHING",
            vec![
                event_id.clone().into(),
                event.event.as_str().to_string().into(),
                text.to_string().into(),
                now.into(),
                handled.then_some(now).into(),
            ],
        )
        .await;
    match stored {
        Ok(inserted) => {
            if inserted == 1 && !handled {
                state.webhook_wakeup.notify_one();
            }
            (
                StatusCode::OK,
                Json(json!({"status": if inserted == 1 { "stored" } else { "duplicate" }})),
            )
                .into_response()
        }
        Err(e) => {
            // Not stored: answer 5xx so Razorpay delivers it again.
            tracing::error!(error = %e, event_id, "could not store a webhook");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": {"code": "unavailable", "message": "Try again."}})),
            )
                .into_response()
        }
    }
}

/// Processes stored events until none are due; returns how many were handled.
pub async fn process_pending(state: &AppState) -> AppResult<usize> {
    let mut handled = 0;
    loop {
        let now = now_micros();
        let claimed = state
            .db
            .write_returning(
                "UPDATE web_webhook_events SET locked_until = ?, attempts = attempts + 1 \
                 WHERE event_id IN (SELECT event_id FROM web_webhook_events WHERE processed_at IS NULL \
                   AND attempts < ? AND (locked_until IS NULL OR locked_until < ?) ORDER BY received_at LIMIT 20) \
                 AND processed_at IS NULL AND (locked_until IS NULL OR locked_until < ?) \
                 RETURNING event_id, body",
                vec![(now + LEASE_SECS * 1_000_000).into(), MAX_ATTEMPTS.into(), now.into(), now.into()],
            )
            .await?;
        if claimed.is_empty() {
            return Ok(handled);
        }
        let mut done: Vec<sea_orm::Value> = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let event_id: String = col(row, "event_id")?;
            let body: String = col(row, "body")?;
            let result = match serde_json::from_str::<WebhookEvent>(&body) {
                Ok(event) => process(state, &event).await,
                Err(e) => Err(anyhow::anyhow!("stored body no longer parses: {e}").into()),
            };
            match result {
                Ok(()) => done.push(event_id.into()),
                Err(e) => {
                    tracing::warn!(event_id, error = %e, "webhook processing failed; will retry");
                    // Back off: the lease expires later for events that keep failing.
                    state
                        .db
                        .exec(
                            "UPDATE web_webhook_events SET last_error = ?, locked_until = ? WHERE event_id = ?",
                            vec![e.to_string().into(), (now_micros() + 5_000_000).into(), event_id.into()],
                        )
                        .await?;
                }
            }
        }
        // The events handled are marked in one write; were it lost, they would be handled again,
        // which changes nothing (every effect is idempotent).
        if !done.is_empty() {
            handled += done.len();
            let mut values = vec![now_micros().into()];
            let placeholders = vec!["?"; done.len()].join(", ");
            values.extend(done);
            state
                .db
                .exec(
                    &format!(
                        "UPDATE web_webhook_events SET processed_at = ?, locked_until = NULL, last_error = NULL \
                         WHERE event_id IN ({placeholders})"
                    ),
                    values,
                )
                .await?;
        }
    }
}

/// A payment event's payment and the top-up of its order, if the order is ours.
async fn payment_and_topup<'e>(
    state: &AppState,
    event: &'e WebhookEvent,
) -> AppResult<Option<(&'e Payment, topups::Topup)>> {
    let Some(snapshot) = event.payment() else {
        return Ok(None);
    };
    let order_id = snapshot
        .order_id
        .clone()
        .or_else(|| event.order().map(|o| o.id.clone()));
    let Some(order_id) = order_id else {
        return Ok(None);
    };
    let topup = topups::find_by_order(&state.db, &order_id).await?;
    if topup.is_none() {
        tracing::info!(order_id, "webhook for an order that is not ours; ignored");
    }
    Ok(topup.map(|t| (snapshot, t)))
}

/// True for a payment event about a payment already credited: it is stored as handled at once,
/// without a round through the worker (two fewer writes for each of a top-up's usual three
/// events, which mostly arrive after the callback credited it).
async fn handled_already(state: &AppState, event: &WebhookEvent) -> bool {
    let payment_event = matches!(
        event.event,
        EventType::PaymentAuthorized | EventType::PaymentCaptured | EventType::OrderPaid
    );
    payment_event
        && matches!(
            payment_and_topup(state, event).await,
            Ok(Some((payment, topup))) if topup.credited_by(&payment.id)
        )
}

/// What one event means for our top-ups.
async fn process(state: &AppState, event: &WebhookEvent) -> AppResult<()> {
    match &event.event {
        EventType::PaymentAuthorized
        | EventType::PaymentCaptured
        | EventType::PaymentFailed
        | EventType::OrderPaid => {
            let Some((snapshot, topup)) = payment_and_topup(state, event).await? else {
                return Ok(());
            };
            // Already credited for this very payment (the callback or an earlier event got there
            // first): nothing to fetch and nothing to write.
            if topup.credited_by(&snapshot.id) {
                return Ok(());
            }
            // A captured snapshot is final; any other may be stale (events come in any order), so
            // ask Razorpay for the payment as it is now.
            let payment = if snapshot.status == PaymentStatus::Captured {
                snapshot.clone()
            } else {
                state
                    .razorpay
                    .fetch_payment(&snapshot.id)
                    .await
                    .map_err(anyhow::Error::from)?
            };
            settle::apply_payment(state, &topup, &payment).await?;
            Ok(())
        }
        EventType::RefundCreated | EventType::RefundProcessed | EventType::RefundFailed => {
            let Some(snapshot) = event.refund() else {
                return Ok(());
            };
            // Refund events arrive in any order (refund.failed before refund.created): ask
            // Razorpay for the refund as it is now, and apply that.
            let refund = state
                .razorpay
                .fetch_refund(&snapshot.id)
                .await
                .map_err(anyhow::Error::from)?;
            refunds::apply_refund(state, &refund).await
        }
        EventType::RefundSpeedChanged | EventType::Other(_) => Ok(()),
    }
}

/// Runs the worker until `stop`: on every stored event, and every few seconds for retries. A
/// round under way when `stop` comes is finished first.
pub fn spawn_worker(
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !*stop.borrow() {
            if let Err(e) = process_pending(&state).await {
                tracing::error!(error = %e, "webhook worker");
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::timeout(Duration::from_secs(2), state.webhook_wakeup.notified()) => {}
            }
        }
    })
}
