//! Who is calling the API: `Authorization: Bearer <key>`, checked against the keys' hashes (a
//! recently verified key from the cache), and the caller's rate limits.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, header, request::Parts},
};

use crate::{
    api::{
        error::ApiError,
        key_cache::ApiCaller,
        rate_limits::{RateSlot, RateState},
    },
    client_ip::ClientIp,
    crypto::sha256_hex,
    state::AppState,
    store::api_keys,
};

/// Keys longer than this are not ours.
const MAX_KEY_LEN: usize = 200;

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Send a valid API key as `Authorization: Bearer <key>`.",
    )
}

fn rate_limited(
    slot: Option<&RateSlot>,
    rate: RateState,
    wait: std::time::Duration,
    what: &str,
) -> ApiError {
    if let Some(slot) = slot {
        slot.set(rate);
    }
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("Too many requests {what}; retry after the delay in Retry-After."),
    );
    e.retry_after = Some(wait.as_secs().max(1));
    e
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
            .ok_or_else(unauthorized)?;
        let slot = parts.extensions.get::<RateSlot>().cloned();
        let hash = sha256_hex(key);
        let caller = match state.api_keys.get(&hash) {
            Some(caller) => caller,
            None => {
                // A key this instance has not verified lately costs a database lookup: bounded
                // per address, so a flood of made-up keys can't turn into a flood of lookups.
                let ip = ClientIp::of(parts, &state.settings).0;
                match state.api_limits.unknown_key(ip) {
                    Ok(rate) => {
                        if let Some(slot) = &slot {
                            slot.set(rate);
                        }
                    }
                    Err((rate, wait)) => {
                        return Err(rate_limited(
                            slot.as_ref(),
                            rate,
                            wait,
                            "with unknown API keys from your address",
                        ));
                    }
                }
                let owner = api_keys::owner(&state.reads, &hash)
                    .await?
                    .ok_or_else(unauthorized)?;
                let caller = ApiCaller {
                    user_id: owner.user.id,
                    key_id: owner.key_id,
                    email: owner.user.email,
                    wallet: owner.user.wallet,
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
            Err((rate, wait)) => Err(rate_limited(slot.as_ref(), rate, wait, "for this API key")),
        }
    }
}
