//! The API keys page: create (named, shown once, stored hashed), revoke, and the low-balance
//! alert level.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};

use crate::{
    alerts,
    auth::{CsrfForm, CsrfToken, CurrentUser, field, random_token, sha256_hex},
    db::{col, now_micros},
    error::{AppError, AppResult},
    pages::{Layout, Nav, format_time},
    state::AppState,
};

pub struct KeyRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    layout: Layout,
    keys: Vec<KeyRow>,
    new_key: Option<String>,
    error: Option<String>,
    threshold: i64,
    name: String,
}

async fn render(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    new_key: Option<String>,
    error: Option<String>,
    name: String,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(state, headers)?;
    let rows = state
        .db
        .all(
            "SELECT id, name, prefix, created_at, revoked_at FROM web_api_keys WHERE user_id = ? ORDER BY id DESC",
            vec![user.id.into()],
        )
        .await?;
    let time =
        |us: i64| format_time(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default());
    let keys = rows
        .iter()
        .map(|r| {
            Ok(KeyRow {
                id: col(r, "id")?,
                name: col(r, "name")?,
                prefix: col(r, "prefix")?,
                created: time(col(r, "created_at")?),
                revoked: col::<Option<i64>>(r, "revoked_at")?.map(time),
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = KeysPage {
        layout: Layout::new(user, Nav::ApiKeys, &csrf.token, "API keys"),
        keys,
        new_key,
        error,
        threshold: alerts::threshold(state, user.id).await?,
        name,
    };
    Ok(csrf.attach((status, Html(page.render()?)).into_response()))
}

pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    render(&state, &user, &headers, None, None, String::new()).await
}

pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> AppResult<Response> {
    let name = field(&form, "name").trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return render(
            &state,
            &user,
            &headers,
            None,
            Some("Give the key a name of up to 100 characters.".into()),
            name,
        )
        .await;
    }
    let key = format!("kalp_live_{}", random_token()?);
    let prefix = key[..18].to_string();
    state
        .db
        .exec(
            "INSERT INTO web_api_keys (user_id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)",
            vec![user.id.into(), name.into(), prefix.into(), sha256_hex(&key).into(), now_micros().into()],
        )
        .await?;
    render(&state, &user, &headers, Some(key), None, String::new()).await
}

pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm,
) -> AppResult<Response> {
    let changed = state
        .db
        .exec(
            "UPDATE web_api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
            vec![now_micros().into(), id.into(), user.id.into()],
        )
        .await?;
    if changed > 0 {
        state.api_keys.forget(id);
    }
    if changed == 0 {
        let exists = state
            .db
            .one(
                "SELECT id FROM web_api_keys WHERE id = ? AND user_id = ?",
                vec![id.into(), user.id.into()],
            )
            .await?;
        if exists.is_none() {
            return Err(AppError::NotFound);
        }
    }
    Ok(Redirect::to("/api-keys").into_response())
}

pub async fn set_threshold(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> AppResult<Response> {
    let value = field(&form, "threshold").trim().replace(',', "");
    match value.parse::<i64>() {
        Ok(v) if (0..=1_000_000_000).contains(&v) => {
            let balance = state.ledger.balance(user.wallet).await?;
            alerts::set_threshold(&state, user.id, v, balance.available).await?;
            Ok(Redirect::to("/api-keys").into_response())
        }
        _ => {
            render(
                &state,
                &user,
                &headers,
                None,
                Some("The alert level is a whole number of credits (0 turns alerts off).".into()),
                String::new(),
            )
            .await
        }
    }
}
