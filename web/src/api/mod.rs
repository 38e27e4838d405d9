//! The usage API for Kalp Studio's sending services: `Authorization: Bearer <key>`, JSON in and
//! out, one error shape with a stable `code`.

pub mod batcher;
pub mod charges;
pub mod keys;
pub mod pricing;
pub mod rate_limits;
pub mod reservations;

use std::{collections::HashMap, sync::Mutex, time::Instant};

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{auth::sha256_hex, db::col, state::AppState};

/// `{"error": {"code": "...", "message": "...", ...details}}`
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Map<String, Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// The same `Idempotency-Key` with a different request.
    pub fn key_reused() -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
        )
    }

    pub fn not_found() -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such resource for this account.",
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; nothing was charged twice. Retry with the same Idempotency-Key.",
        )
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::error::AppError> for ApiError {
    fn from(e: crate::error::AppError) -> Self {
        ApiError::internal(e)
    }
}

impl From<ledger::LedgerError> for ApiError {
    fn from(e: ledger::LedgerError) -> Self {
        match e {
            ledger::LedgerError::InsufficientCredits {
                available,
                required,
            } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credits",
                format!(
                    "This needs {required} credits; {available} are available. Nothing was charged."
                ),
            )
            .with("available", available)
            .with("required", required),
            ledger::LedgerError::IdempotencyConflict { .. } => ApiError::key_reused(),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = self.details;
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The account an API key belongs to.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub user_id: i64,
    pub key_id: i64,
    pub email: String,
    pub wallet: ledger::AccountId,
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send a valid API key as `Authorization: Bearer <key>`.",
            )
        };
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 200)
            .ok_or_else(unauthorized)?;
        let slot = parts.extensions.get::<rate_limits::RateSlot>().cloned();
        let rate_limited =
            |state: rate_limits::RateState, wait: std::time::Duration, what: &str| {
                if let Some(slot) = &slot {
                    slot.set(state);
                }
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("Too many requests {what}; retry after the delay in Retry-After."),
                );
                e.retry_after = Some(wait.as_secs().max(1));
                e
            };
        let hash = sha256_hex(key);
        let caller = match state.api_keys.get(&hash) {
            Some(caller) => caller,
            None => {
                // A key this instance has not verified lately costs a database lookup: bounded
                // per address, so a flood of made-up keys can't turn into a flood of lookups.
                let ip = crate::limits::ClientIp::of(parts, &state.settings).0;
                match state.api_limits.unknown_key(ip) {
                    Ok(rate) => {
                        if let Some(slot) = &slot {
                            slot.set(rate);
                        }
                    }
                    Err((rate, wait)) => {
                        return Err(rate_limited(
                            rate,
                            wait,
                            "with unknown API keys from your address",
                        ));
                    }
                }
                let row = state
                    .db
                    .one(
                        "SELECT k.id AS key_id, u.id AS user_id, u.email, u.wallet_account_id FROM web_api_keys k \
                         JOIN web_users u ON u.id = k.user_id WHERE k.key_hash = ? AND k.revoked_at IS NULL",
                        vec![hash.clone().into()],
                    )
                    .await?
                    .ok_or_else(unauthorized)?;
                let caller = ApiCaller {
                    user_id: col(&row, "user_id")?,
                    key_id: col(&row, "key_id")?,
                    email: col(&row, "email")?,
                    wallet: ledger::AccountId(col(&row, "wallet_account_id")?),
                };
                state.api_keys.put(hash, caller.clone());
                caller
            }
        };
        match state.api_limits.key(caller.key_id) {
            Ok(rate) => {
                if let Some(slot) = &slot {
                    slot.set(rate);
                }
                Ok(caller)
            }
            Err((rate, wait)) => Err(rate_limited(rate, wait, "for this API key")),
        }
    }
}

/// API keys verified in the last few seconds (by hash), so a busy key is not looked up on every
/// request. Revoking a key forgets it here at once; another instance of the app notices within
/// `ttl`. Only hits of verified keys are kept: an unknown key is looked up every time.
pub struct KeyCache {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<String, (ApiCaller, Instant)>>,
}

/// Beyond this many cached keys, expired entries are dropped (and all, if none had expired).
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: std::time::Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<ApiCaller> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(caller, _)| caller.clone())
    }

    fn put(&self, hash: String, caller: ApiCaller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEY_CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    /// Forgets a key (when it is revoked).
    pub fn forget(&self, key_id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (caller, _)| caller.key_id != key_id);
    }
}

pub async fn balance(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Json<Value>, ApiError> {
    let balance = state.ledger.balance(caller.wallet).await?;
    let prices = &state.settings.prices;
    Ok(Json(json!({
        "available": balance.available,
        "reserved": balance.reserved,
        "covers": {
            "emails": balance.available / prices.email_credits,
            "sms_segments": balance.available / prices.sms_segment_credits,
        },
        "prices": {
            "email": prices.email_credits,
            "sms_segment": prices.sms_segment_credits,
            "sms_segment_by_country": prices.sms_countries,
        },
    })))
}

/// A trivial authenticated endpoint (benchmark baseline, liveness of a key).
pub async fn whoami(caller: ApiCaller) -> Json<Value> {
    Json(json!({"account": caller.email}))
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no such API endpoint.",
    )
}
