//! What every API request shares: its JSON body, its `Idempotency-Key`, a `reference`, and the
//! answer to a retry.

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::api::error::ApiError;

/// The request's JSON body. A body sent as another type (a form, text) is refused with 415; no
/// Content-Type at all is taken as JSON (curl and many clients leave it out).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON, with Content-Type: application/json.",
            ));
        }
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "malformed_json",
            "The body must be a JSON object.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("malformed_json", format!("The body could not be read: {e}"))
        } else {
            ApiError::invalid(format!("The body could not be read: {e}"))
        }
    })
}

/// A caller's `reference`: 1 to 200 characters without control characters.
pub fn check_reference(reference: &Option<String>) -> Result<(), ApiError> {
    if let Some(r) = reference
        && (r.is_empty() || r.len() > 200 || r.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "`reference` is 1 to 200 characters without control characters.",
        ));
    }
    Ok(())
}

/// The caller's `Idempotency-Key`: required, 1 to 100 printable ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::trim).unwrap_or(""))
        .ok_or_else(|| ApiError::bad_request("missing_idempotency_key", "Send an `Idempotency-Key` header: a retry with the same key returns the original result."))?;
    if key.is_empty() || key.len() > 100 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "`Idempotency-Key` is 1 to 100 printable ASCII characters.",
        ));
    }
    Ok(key.to_string())
}

/// Marks an answer as the replay of an earlier one for the same `Idempotency-Key`.
pub fn mark_replayed(response: &mut Response) {
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
}

/// A stored JSON answer, as it was first given.
pub fn json_answer(status: u16, body: String, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        mark_replayed(&mut response);
    }
    response
}
