//! The API keys page: create (named, shown once, stored hashed), revoke, and the low-balance
//! alert level.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    alerts,
    crypto::{random_token, sha256_hex},
    pages::{
        error::{PageError, PageResult},
        forms::{CsrfForm, CsrfToken, NoFields},
        session::CurrentUser,
        views::{Layout, Nav, format_micros},
    },
    state::AppState,
    store::api_keys,
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

/// What the page shows besides the keys: a new key once, or what was wrong with a form.
#[derive(Default)]
struct Shown {
    new_key: Option<String>,
    error: Option<String>,
    name: String,
}

async fn render(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    shown: Shown,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, headers)?;
    let keys = api_keys::of_user(&state.reads, user.id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created: format_micros(k.created_at),
            revoked: k.revoked_at.map(format_micros),
        })
        .collect();
    let status = if shown.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = KeysPage {
        layout: Layout::new(&user.email, Nav::ApiKeys, &csrf.token, "API keys"),
        keys,
        new_key: shown.new_key,
        error: shown.error,
        threshold: alerts::threshold(&state.services, user.id).await?,
        name: shown.name,
    };
    Ok(csrf.attach((status, Html(page.render()?)).into_response()))
}

pub async fn page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> PageResult<Response> {
    render(&state, &user, &headers, Shown::default()).await
}

/// The new-key form's field.
#[derive(Deserialize)]
pub struct NewKeyFields {
    #[serde(default)]
    name: String,
}

/// What a key starts with, shown beside its name so its owner can tell keys apart.
const SHOWN_PREFIX_LEN: usize = 18;

pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<NewKeyFields>,
) -> PageResult<Response> {
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        let shown = Shown {
            error: Some("Give the key a name of up to 100 characters.".into()),
            name,
            ..Shown::default()
        };
        return render(&state, &user, &headers, shown).await;
    }
    let key = format!("kalp_live_{}", random_token()?);
    let prefix = key.chars().take(SHOWN_PREFIX_LEN).collect::<String>();
    let (user_id, name_ref, prefix, hash) = (user.id, name.as_str(), &prefix, &sha256_hex(&key));
    state
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { api_keys::create(writer, user_id, name_ref, prefix, hash).await })
        })
        .await?;
    let shown = Shown {
        new_key: Some(key),
        ..Shown::default()
    };
    render(&state, &user, &headers, shown).await
}

pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult<Response> {
    let user_id = user.id;
    let revoked = state
        .ledger
        .autocommit(|writer| Box::pin(async move { api_keys::revoke(writer, id, user_id).await }))
        .await?;
    if revoked {
        state.api_keys.forget(id);
    } else if !api_keys::belongs_to(&state.reads, id, user.id).await? {
        return Err(PageError::NotFound);
    }
    Ok(Redirect::to("/api-keys").into_response())
}

/// The alert form's field.
#[derive(Deserialize)]
pub struct AlertFields {
    #[serde(default)]
    threshold: String,
}

/// The highest alert level one can set.
const MAX_ALERT_LEVEL: i64 = 1_000_000_000;

pub async fn set_threshold(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<AlertFields>,
) -> PageResult<Response> {
    let value = form.threshold.trim().replace(',', "");
    match value.parse::<i64>() {
        Ok(v) if (0..=MAX_ALERT_LEVEL).contains(&v) => {
            let balance = state.ledger.balance(user.wallet).await?;
            alerts::set_threshold(&state.services, user.id, v, balance.available).await?;
            Ok(Redirect::to("/api-keys").into_response())
        }
        _ => {
            let shown = Shown {
                error: Some(
                    "The alert level is a whole number of credits (0 turns alerts off).".into(),
                ),
                ..Shown::default()
            };
            render(&state, &user, &headers, shown).await
        }
    }
}
