//! The account page: who is signed in, on how many devices, and "Log out everywhere".

use askama::Template;
use axum::{
    extract::State,
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};

use crate::{
    pages::{
        error::PageResult,
        forms::{CsrfForm, CsrfToken, NoFields},
        session::{CurrentUser, signed_out},
        views::{Layout, Nav},
    },
    state::AppState,
    store::{self, now_micros},
};

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    sessions: u64,
}

pub async fn account_page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let sessions = store::sessions::live_count(&state.reads, user.id, now_micros()).await?;
    let page = AccountPage {
        layout: Layout::new(&user.email, Nav::Account, &csrf.token, "Account"),
        sessions,
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

/// Ends every session of the account, this one included (a lost laptop, a shared computer).
pub async fn logout_everywhere(
    State(state): State<AppState>,
    user: CurrentUser,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult<Response> {
    let user_id = user.id;
    let ended = state
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { store::sessions::end_all(writer, user_id).await })
        })
        .await?;
    tracing::info!(user_id, sessions = ended, "logged out everywhere");
    signed_out(&state.settings)
}
