//! Reservations for campaigns: hold credits for N messages, then settle with the number actually
//! sent (the rest is released), release, or let them lapse. A sending service that crashes
//! mid-campaign can't overspend: it can only ever spend what it holds.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    alerts,
    api::{
        error::ApiError,
        key_cache::ApiCaller,
        pricing::Service,
        requests::{check_reference, idempotency_key, mark_replayed, parse_json},
    },
    crypto::sha256_hex,
    state::AppState,
    store::{
        StoreError,
        reservations::{self, ReservationTerms},
    },
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    pub service: Service,
    pub quantity: i64,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettleRequest {
    /// Messages actually sent.
    pub quantity: i64,
}

fn view(r: &ledger::Reservation, terms: &ReservationTerms) -> serde_json::Value {
    json!({
        "id": format!("rsv_{}", r.id.0),
        "service": terms.service,
        "quantity": terms.quantity,
        "credits": r.amount,
        "unit_credits": terms.unit_credits,
        "status": r.status.as_str(),
        "used_credits": r.used,
        "reference": r.reference,
        "expires_at": r.expires_at.to_rfc3339(),
    })
}

fn parse_id(id: &str) -> Result<ledger::ReservationId, ApiError> {
    id.strip_prefix("rsv_")
        .and_then(|n| n.parse().ok())
        .map(ledger::ReservationId)
        .ok_or_else(ApiError::not_found)
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let request: ReserveRequest = parse_json(&headers, &body)?;
    check_reference(&request.reference)?;
    if !(1..=1_000_000).contains(&request.quantity) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "`quantity` must be between 1 and 1000000.",
        ));
    }
    let unit = request.service.unit_price(&state.settings.prices);
    let ttl = chrono::Duration::seconds(state.settings.usage.reservation_ttl_secs as i64);
    // The expiry is not part of the request's identity: a retry a moment later is the same
    // request, and the ledger answers with the original reservation (and its expiry).
    let reserve = ledger::Reserve {
        wallet: caller.wallet,
        amount: ledger::Credits::new(request.quantity * unit).map_err(ApiError::internal)?,
        kind: request.service.debit_kind(),
        key: ledger::IdempotencyKey::new(format!(
            "reserve:{}:{}",
            caller.user_id,
            sha256_hex(&key)
        ))
        .map_err(ApiError::internal)?,
        reference: request.reference.clone(),
        expires_at: chrono::Utc::now() + ttl,
    };
    let terms = ReservationTerms {
        service: request.service.as_str().to_string(),
        unit_credits: unit,
        quantity: request.quantity,
    };
    let (reserve, terms_ref, user_id) = (&reserve, &terms, caller.user_id);
    // The ledger's hold and our record of it commit in one transaction (retried whole on a
    // transient failure), so a crash can't leave credits held with no reservation to settle.
    let reservation = state
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let reservation = tx.reserve(reserve).await?;
                if reservation.replayed {
                    // The same key again: the same request only if it was for the same service
                    // and number of messages (the credits alone could match another pair).
                    let earlier = reservations::terms(tx, reservation.id).await?;
                    let same = earlier.is_some_and(|e| {
                        e.service == terms_ref.service && e.quantity == terms_ref.quantity
                    });
                    if !same {
                        return Err(StoreError::Ledger(
                            ledger::LedgerError::IdempotencyConflict {
                                key: reserve.key.as_str().to_string(),
                            },
                        ));
                    }
                    return Ok(reservation);
                }
                reservations::record(tx, reservation.id, user_id, terms_ref).await?;
                Ok(reservation)
            })
        })
        .await?;
    let replayed = reservation.replayed;
    if !replayed {
        check_low_balance(&state, &caller).await?;
    }
    let mut response =
        (StatusCode::CREATED, axum::Json(view(&reservation, &terms))).into_response();
    if replayed {
        mark_replayed(&mut response);
    }
    Ok(response)
}

async fn owned(
    state: &AppState,
    caller: &ApiCaller,
    id: &str,
) -> Result<(ledger::ReservationId, ReservationTerms), ApiError> {
    let id = parse_id(id)?;
    let terms = reservations::terms_of_user(&state.reads, id, caller.user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((id, terms))
}

fn not_pending(e: ledger::LedgerError) -> ApiError {
    match e {
        ledger::LedgerError::ReservationNotPending { status, .. } => ApiError::new(
            StatusCode::CONFLICT,
            "reservation_not_pending",
            format!("The reservation is {status}."),
        )
        .with("status", status),
        ledger::LedgerError::InvalidAmount(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m)
        }
        other => other.into(),
    }
}

pub async fn get(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, terms) = owned(&state, &caller, &id).await?;
    let r = state.ledger.reservation(id).await?;
    Ok(axum::Json(view(&r, &terms)).into_response())
}

pub async fn settle(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (id, terms) = owned(&state, &caller, &id).await?;
    let request: SettleRequest = parse_json(&headers, &body)?;
    if request.quantity < 0 || request.quantity > terms.quantity {
        return Err(ApiError::invalid(format!(
            "`quantity` must be between 0 and the {} reserved.",
            terms.quantity
        )));
    }
    let r = state
        .ledger
        .settle(ledger::Settle {
            reservation: id,
            used: request.quantity * terms.unit_credits,
        })
        .await
        .map_err(not_pending)?;
    check_low_balance(&state, &caller).await?;
    Ok(axum::Json(view(&r, &terms)).into_response())
}

pub async fn release(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, terms) = owned(&state, &caller, &id).await?;
    let r = state.ledger.release(id).await.map_err(not_pending)?;
    check_low_balance(&state, &caller).await?;
    Ok(axum::Json(view(&r, &terms)).into_response())
}

/// After a hold, a settle or a release: the low-balance alert, from the balance now. What was
/// done stands whatever happens to its alert, so a failed check is logged, not answered.
async fn check_low_balance(state: &AppState, caller: &ApiCaller) -> Result<(), ApiError> {
    let balance = state.ledger.balance(caller.wallet).await?;
    if let Err(e) = alerts::after_balance_change(
        &state.services,
        caller.user_id,
        &caller.email,
        balance.available,
    )
    .await
    {
        tracing::warn!(error = %e, "low-balance alert check failed");
    }
    Ok(())
}
