//! `POST /webhooks/razorpay`: verify the signature over the raw bytes, store the event once (by
//! `X-Razorpay-Event-Id`) and answer 200 at once; the inbox worker (`inbox`) processes stored
//! events through the same idempotent crediting as the callback, so duplicates, reordering and
//! races with the browser never credit twice, and a top-up never moves backwards.

pub mod inbox;
pub mod intake;

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use razorpay::{WebhookSecrets, signature::verify_webhook_signature, wire::WebhookEvent};
use serde_json::json;

use crate::{state::AppState, store::now_micros};

/// Razorpay's bodies are a few KB; anything near this is not a webhook.
pub const MAX_BODY: usize = 256 * 1024;
/// Why a webhook was not accepted: Razorpay (or whoever posted it) gets the reason as JSON, and
/// a 5xx makes Razorpay deliver it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        tracing::warn!(code = self.code, message = self.message, "webhook refused");
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

fn refuse(status: StatusCode, code: &'static str, message: &'static str) -> WebhookRejection {
    if status == StatusCode::BAD_REQUEST {
        metrics::counter!("kalp_webhook_events_total", "result" => "invalid").increment(1);
    }
    WebhookRejection {
        status,
        code,
        message,
    }
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebhookRejection> {
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
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "missing_signature",
            "X-Razorpay-Signature is required.",
        ));
    }
    let secrets = WebhookSecrets {
        current: state.settings.razorpay.webhook_secret.clone(),
        previous: Some(state.settings.razorpay.webhook_previous_secret.clone())
            .filter(|s| !s.is_empty()),
    };
    if verify_webhook_signature(&body, &signature, &secrets).is_err() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            "The signature does not match the body.",
        ));
    }
    if event_id.is_empty()
        || event_id.len() > 64
        || !event_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_event_id",
            "X-Razorpay-Event-Id is missing or malformed.",
        ));
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "malformed_body",
            "The body is not UTF-8 JSON.",
        ));
    };
    let event: WebhookEvent = match serde_json::from_str(text) {
        Ok(event) => event,
        Err(_) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                "The body is not a Razorpay event.",
            ));
        }
    };
    let handled = inbox::handled_already(&state.services, &event).await;
    let stored = state
        .webhook_intake
        .store(intake::ReceivedWebhook {
            event_id: event_id.clone(),
            kind: event.event.as_str().to_string(),
            body: text.to_string(),
            received_at: now_micros(),
            handled,
        })
        .await;
    match stored {
        Ok(inserted) => {
            metrics::counter!(
                "kalp_webhook_events_total",
                "result" => if inserted { "stored" } else { "duplicate" }
            )
            .increment(1);
            if inserted && !handled {
                state.webhook_wakeup.notify_one();
            }
            Ok((
                StatusCode::OK,
                Json(json!({"status": if inserted { "stored" } else { "duplicate" }})),
            )
                .into_response())
        }
        Err(e) => {
            // Not stored: answer 5xx so Razorpay delivers it again.
            tracing::error!(error = %e, event_id, "could not store a webhook");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Try again.",
            ))
        }
    }
}
