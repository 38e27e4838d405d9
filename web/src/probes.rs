//! What operators' tools ask of a running instance: `/healthz` (alive: the database answers),
//! `/readyz` (able to serve: `readiness`) and `/metrics` (Prometheus: `telemetry`).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{state::AppState, store};

/// `/healthz`: the database answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match store::ping(&state.reads).await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `/readyz`: able to serve (see `readiness`); 503 with the problems otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let report =
        crate::readiness::check(&state.readiness, &state.reads, &state.stopped_queues()).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// `/metrics` for Prometheus; with `metrics.token` set, only for `Authorization: Bearer <token>`.
pub async fn metrics_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = state.settings.metrics.token.expose();
    if !token.is_empty() {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::crypto::constant_time_eq(sent.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the bearer token",
            )
                .into_response();
        }
    }
    let Some(handle) = &state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not recorded").into_response();
    };
    let text = crate::telemetry::render(handle, &state.ledger, &state.reads).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
