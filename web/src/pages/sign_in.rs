//! Sign up, log in and log out. Passwords are hashed with argon2 on threads of their own
//! (`passwords`), and every password request is limited per address and per account
//! (`limits`) before its password is looked at.

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    accounts::{AccountError, EmailAddress, create_account},
    client_ip::ClientIp,
    crypto::sha256_hex,
    limits::{log_in_attempt, logged_in},
    pages::{
        error::{PageError, PageResult},
        forms::{CsrfForm, CsrfToken, NoFields},
        session::{CurrentUser, SESSION_COOKIE, read_cookie, signed_out, start_session},
    },
    passwords::check_new_password,
    state::AppState,
    store,
};

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage<'a> {
    signup: bool,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    email_error: Option<&'a str>,
    password_error: Option<&'a str>,
}

/// What was wrong with a sign-up or log-in, field by field.
struct Problems {
    status: StatusCode,
    general: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

impl Problems {
    fn none() -> Problems {
        Problems::with_status(StatusCode::OK)
    }

    fn with_status(status: StatusCode) -> Problems {
        Problems {
            status,
            general: None,
            email: None,
            password: None,
        }
    }
}

fn auth_page(
    state: &AppState,
    headers: &HeaderMap,
    signup: bool,
    email: &str,
    problems: Problems,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, headers)?;
    let page = AuthPage {
        signup,
        csrf: &csrf.token,
        email,
        error: problems.general.as_deref(),
        email_error: problems.email.as_deref(),
        password_error: problems.password.as_deref(),
    };
    Ok(csrf.attach((problems.status, Html(page.render()?)).into_response()))
}

/// The sign-up and log-in form's fields.
#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn signup_page(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    headers: HeaderMap,
) -> PageResult<Response> {
    if user.is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    auth_page(&state, &headers, true, "", Problems::none())
}

pub async fn login_page(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    headers: HeaderMap,
) -> PageResult<Response> {
    if user.is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    auth_page(&state, &headers, false, "", Problems::none())
}

/// One password request from this address, or "slow down" (log-in, sign-up and password resets).
pub fn password_request_allowed(state: &AppState, ip: std::net::IpAddr) -> PageResult<()> {
    state
        .address_limits
        .password_request(ip)
        .map_err(|wait| PageError::TooManyRequests {
            message: "Too many attempts from your network. Wait a minute and try again.".into(),
            retry_after: wait.as_secs().max(1),
        })
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<Credentials>,
) -> PageResult<Response> {
    password_request_allowed(&state, ip)?;
    let email = EmailAddress::parse(&form.email);
    let password_ok = check_new_password(&form.password, &form.email);
    let email = match (email, password_ok) {
        (Ok(email), Ok(())) => email,
        (email, password) => {
            let problems = Problems {
                email: email.err().map(str::to_string),
                password: password.err().map(str::to_string),
                ..Problems::with_status(StatusCode::UNPROCESSABLE_ENTITY)
            };
            return auth_page(&state, &headers, true, &form.email, problems);
        }
    };
    let email_taken = || {
        let problems = Problems {
            email: Some("An account with this email already exists. Log in instead.".into()),
            ..Problems::with_status(StatusCode::UNPROCESSABLE_ENTITY)
        };
        auth_page(&state, &headers, true, &form.email, problems)
    };
    // Checked first to spare the password hash; the insert's ON CONFLICT settles races.
    if store::users::by_email(&state.reads, email.as_str())
        .await?
        .is_some()
    {
        return email_taken();
    }
    let created = create_account(&state.services, &state.passwords, &email, &form.password)
        .await
        .map_err(|e| match e {
            AccountError::Hashing(e) => PageError::from(e),
            AccountError::Service(e) => PageError::from(e),
        })?;
    let Some(user_id) = created else {
        return email_taken();
    };
    tracing::info!(user_id, "account created");
    start_session(&state, user_id, "/dashboard").await
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<Credentials>,
) -> PageResult<Response> {
    password_request_allowed(&state, ip)?;
    let email = form.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        let problems = Problems {
            email: Some("Enter your email address.".into()),
            ..Problems::with_status(StatusCode::UNPROCESSABLE_ENTITY)
        };
        return auth_page(&state, &headers, false, &form.email, problems);
    }
    // Counted before the password is checked: of many guesses at once, only the allowed few
    // are ever checked.
    if let Err(refused) =
        log_in_attempt(&state.ledger, &state.settings.security, &email, ip).await?
    {
        let problems = Problems {
            general: Some(refused.message),
            ..Problems::with_status(StatusCode::TOO_MANY_REQUESTS)
        };
        let mut page = auth_page(&state, &headers, false, &form.email, problems)?;
        if let Ok(value) = HeaderValue::from_str(&refused.retry_after_secs.to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(page);
    }
    let user = store::users::by_email(&state.reads, &email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    // Verified against a real hash even for unknown emails, so timing does not reveal accounts.
    let ok = state.passwords.verify(&form.password, hash).await?;
    match (ok, user) {
        (true, Some(user)) => {
            logged_in(&state.ledger, &email, ip).await?;
            start_session(&state, user.id, "/dashboard").await
        }
        _ => {
            let problems = Problems {
                general: Some("Incorrect email or password.".into()),
                ..Problems::with_status(StatusCode::UNAUTHORIZED)
            };
            auth_page(&state, &headers, false, &form.email, problems)
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult<Response> {
    if let Some(token) = read_cookie(&headers, SESSION_COOKIE) {
        let token_hash = &sha256_hex(&token);
        state
            .ledger
            .autocommit(|writer| {
                Box::pin(async move { store::sessions::end(writer, token_hash).await })
            })
            .await?;
    }
    signed_out(&state.settings)
}
