//! "Forgot password?" pages: ask for a link (the same answer whether or not the email has an
//! account), and choose a new password through it. The work is `password_reset`; asking is
//! limited per address like every password request.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    client_ip::ClientIp,
    pages::{
        error::{PageError, PageResult},
        forms::{CsrfForm, CsrfToken},
        session::start_session,
        sign_in::password_request_allowed,
    },
    password_reset::{
        LINK_MINUTES, PasswordResetError, ResetOutcome, choose_password, link_account, request_link,
    },
    state::AppState,
};

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage<'a> {
    /// "ask", "sent", "choose" or "invalid".
    stage: &'static str,
    csrf: &'a str,
    email: &'a str,
    token: &'a str,
    error: Option<&'a str>,
    minutes: i64,
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    stage: &'static str,
    (email, token, error): (&str, &str, Option<&str>),
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, headers)?;
    let html = ResetPage {
        stage,
        csrf: &csrf.token,
        email,
        token,
        error,
        minutes: LINK_MINUTES,
    }
    .render()?;
    Ok(csrf.attach((status, Html(html)).into_response()))
}

impl From<PasswordResetError> for PageError {
    fn from(e: PasswordResetError) -> Self {
        match e {
            PasswordResetError::Service(e) => PageError::from(e),
            PasswordResetError::Hashing(e) => PageError::from(e),
        }
    }
}

pub async fn forgot_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> PageResult<Response> {
    page(&state, &headers, StatusCode::OK, "ask", ("", "", None))
}

#[derive(Deserialize)]
pub struct ForgotFields {
    #[serde(default)]
    email: String,
}

pub async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ForgotFields>,
) -> PageResult<Response> {
    password_request_allowed(&state, ip)?;
    let email = match crate::accounts::EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(why) => {
            return page(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                "ask",
                (&form.email, "", Some(why)),
            );
        }
    };
    request_link(&state.services, email.as_str()).await?;
    page(
        &state,
        &headers,
        StatusCode::OK,
        "sent",
        (email.as_str(), "", None),
    )
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// A token as it appears in a link: 64 hex characters. Anything else cannot be one of ours.
fn plausible(token: &str) -> bool {
    token.len() == 64 && token.chars().all(|c| c.is_ascii_hexdigit())
}

pub async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LinkQuery>,
) -> PageResult<Response> {
    let account = if plausible(&query.token) {
        link_account(&state.services, &query.token).await?
    } else {
        None
    };
    match account {
        Some(user) => page(
            &state,
            &headers,
            StatusCode::OK,
            "choose",
            (&user.email, &query.token, None),
        ),
        None => page(
            &state,
            &headers,
            StatusCode::GONE,
            "invalid",
            ("", "", None),
        ),
    }
}

#[derive(Deserialize)]
pub struct ResetFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ResetFields>,
) -> PageResult<Response> {
    password_request_allowed(&state, ip)?;
    if !plausible(&form.token) {
        return page(
            &state,
            &headers,
            StatusCode::GONE,
            "invalid",
            ("", "", None),
        );
    }
    match choose_password(
        &state.services,
        &state.passwords,
        &form.token,
        &form.password,
    )
    .await?
    {
        // Every session ended, this browser's too: it starts a fresh one.
        ResetOutcome::Changed(user_id) => start_session(&state, user_id, "/dashboard").await,
        ResetOutcome::LinkNotValid => page(
            &state,
            &headers,
            StatusCode::GONE,
            "invalid",
            ("", "", None),
        ),
        ResetOutcome::PasswordRefused(why) => {
            let email = link_account(&state.services, &form.token)
                .await?
                .map(|u| u.email)
                .unwrap_or_default();
            page(
                &state,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                "choose",
                (&email, &form.token, Some(why)),
            )
        }
    }
}
