//! `POST /api/v1/benchmark/durable-append`: one request of the benchmark's durable baseline
//! (`durable_baseline`), behind the same API key authentication and rate limits as a charge.
//! Unless the baseline is configured it answers 404, like any unknown route.

use axum::{extract::State, http::StatusCode, response::Response};

use crate::{
    api::{
        durable_baseline::AppendFailed, error::ApiError, key_cache::ApiCaller,
        requests::json_answer,
    },
    state::AppState,
};

pub async fn durable_append(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    let Some(baseline) = &state.durable_baseline else {
        return Err(ApiError::not_found());
    };
    match baseline.submit(caller.user_id).await {
        Ok(Ok(())) => Ok(json_answer(201, r#"{"appended":1}"#.into(), false)),
        Ok(Err(AppendFailed)) | Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "baseline_failed",
            "The durable baseline could not commit; see the server's log.",
        )),
    }
}
