//! Billing details for GST documents (`/billing/profile`): legal name, address, state and an
//! optional GSTIN. Optional: without them vouchers name the account's email, as an unregistered
//! recipient in the seller's state. Vouchers copy the details when they are issued, so saving
//! new ones never changes a voucher already issued.

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    gst::{gstin::state_name, profile::ProfileInput},
    pages::{
        error::PageResult,
        forms::{CsrfForm, CsrfToken},
        session::CurrentUser,
        views::{Layout, Nav},
    },
    state::AppState,
    store::vouchers::{self, BillingProfile},
};

/// The profile form's fields, as typed (kept to show again with an error).
#[derive(Deserialize, Default)]
pub struct ProfileFields {
    #[serde(default)]
    legal_name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    gstin: String,
}

#[derive(Template)]
#[template(path = "billing_profile.html")]
struct ProfilePage {
    layout: Layout,
    form: ProfileFields,
    /// (code, name) of every state, and the one chosen.
    states: Vec<(String, &'static str)>,
    error: Option<String>,
    saved: bool,
}

fn states() -> Vec<(String, &'static str)> {
    (1..=97)
        .filter_map(|code| state_name(code).map(|name| (format!("{code:02}"), name)))
        .collect()
}

fn render(
    user: &CurrentUser,
    csrf: &CsrfToken,
    form: ProfileFields,
    error: Option<String>,
    saved: bool,
) -> PageResult<String> {
    Ok(ProfilePage {
        layout: Layout::new(&user.email, Nav::Billing, &csrf.token, "Billing details"),
        form,
        states: states(),
        error,
        saved,
    }
    .render()?)
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    #[serde(default)]
    saved: Option<u8>,
}

pub async fn profile_page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ProfileQuery>,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let form = match vouchers::profile_of(&state.reads, user.id).await? {
        Some(p) => ProfileFields {
            legal_name: p.legal_name,
            address: p.address,
            state: format!("{:02}", p.state_code),
            gstin: p.gstin.unwrap_or_default(),
        },
        None => ProfileFields::default(),
    };
    let html = render(&user, &csrf, form, None, query.saved.is_some())?;
    Ok(csrf.attach(Html(html).into_response()))
}

/// Keeps at most `n` characters of what was typed, to show it again.
fn kept(typed: &str, n: usize) -> String {
    typed.chars().take(n).collect()
}

pub async fn save_profile(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<ProfileFields>,
) -> PageResult<Response> {
    let parsed = ProfileInput::parse(&form.legal_name, &form.address, &form.state, &form.gstin);
    let input = match parsed {
        Ok(input) => input,
        Err(message) => {
            let csrf = CsrfToken::for_request(&state.settings, &headers)?;
            let kept_form = ProfileFields {
                legal_name: kept(&form.legal_name, 200),
                address: kept(&form.address, 500),
                state: kept(&form.state, 2),
                gstin: kept(&form.gstin, 20),
            };
            let html = render(&user, &csrf, kept_form, Some(message), false)?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response());
        }
    };
    let profile = BillingProfile {
        legal_name: input.legal_name,
        address: input.address,
        state_code: input.state_code,
        gstin: input.gstin.map(|g| g.as_str().to_string()),
    };
    let (user_id, profile) = (user.id, &profile);
    state
        .ledger
        .autocommit(|w| Box::pin(async move { vouchers::save_profile(w, user_id, profile).await }))
        .await?;
    Ok(Redirect::to("/billing/profile?saved=1").into_response())
}
