//! The account's side of the API: the balance and what it covers, who a key belongs to, the
//! OpenAPI description, and the JSON 404.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::{
    api::{error::ApiError, key_cache::ApiCaller},
    state::AppState,
};

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
