//! Accounts and sessions: sign up, log in, log out (here or everywhere); argon2 password hashes
//! (bounded: `passwords`); server-side sessions (only a hash of the cookie's token is stored);
//! CSRF tokens bound to the session; log-in limits (`limits`).

use askama::Template;
use axum::{
    Form,
    extract::{FromRequestParts, State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{Html, IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sha2::{Digest, Sha256};

use crate::{
    db::{col, now_micros},
    error::{AppError, AppResult},
    limits::ClientIp,
    pages::{Layout, Nav},
    passwords::check_new_password,
    state::AppState,
};

pub const SESSION_COOKIE: &str = "kalp_session";
/// The CSRF token of a browser with no session (the log-in and sign-up forms).
pub const CSRF_COOKIE: &str = "kalp_csrf";

/// 32 random bytes as hex, from the operating system's CSPRNG.
pub fn random_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// `HttpOnly; SameSite=Lax` (Lax, because Razorpay's callback is a cross-site POST followed by
/// a redirect), `Secure` whenever the app is served over https.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let cookie = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.settings.served_over_https())
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.encoded().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token for forms on a page. Signed in, it is derived from the session's secret token,
/// so it is bound to the session and changes with it (at log-in and log-out). Without a session
/// (the log-in and sign-up forms) it is a random token in its own cookie (double submit: a
/// cross-site page can neither read our cookies nor make the browser send a matching field).
pub struct CsrfToken {
    pub token: String,
    set: Option<HeaderValue>,
}

fn session_csrf(session_token: &str) -> String {
    sha256_hex(&format!("csrf|{session_token}"))
}

impl CsrfToken {
    pub fn for_request(state: &AppState, headers: &HeaderMap) -> AppResult<CsrfToken> {
        if let Some(session) = cookie(headers, SESSION_COOKIE) {
            return Ok(CsrfToken {
                token: session_csrf(&session),
                set: None,
            });
        }
        match cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 64) {
            Some(token) => Ok(CsrfToken { token, set: None }),
            None => {
                let token = random_token()?;
                let set = Some(set_cookie(state, CSRF_COOKIE, &token, 60 * 60 * 24));
                Ok(CsrfToken { token, set })
            }
        }
    }

    /// Adds the cookie to a response when the token is new.
    pub fn attach(&self, mut response: Response) -> Response {
        if let Some(value) = &self.set {
            response
                .headers_mut()
                .append(header::SET_COOKIE, value.clone());
        }
        response
    }
}

/// Checks a form's `csrf` field against the session's token (or, with no session, the cookie).
pub fn verify_csrf(headers: &HeaderMap, form: &[(String, String)]) -> AppResult<()> {
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let expected = match cookie(headers, SESSION_COOKIE) {
        Some(session) => Some(session_csrf(&session)),
        None => cookie(headers, CSRF_COOKIE),
    };
    match expected {
        Some(expected) if !sent.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(AppError::Forbidden(
            "This form expired or did not come from Kalp Studio. Go back, reload the page and try again.".into(),
        )),
    }
}

/// A state-changing form from a person: its fields, read only once the CSRF token in them matches
/// the browser's cookie. Taking this extractor is how a handler can't forget the check.
pub struct CsrfForm(pub Vec<(String, String)>);

impl axum::extract::FromRequest<AppState> for CsrfForm {
    type Rejection = AppError;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let form = form_fields(Form::<Vec<(String, String)>>::from_request(request, state).await)?;
        verify_csrf(&headers, &form)?;
        Ok(CsrfForm(form))
    }
}

/// A form's fields, or a clear 400 for a body that is not a form.
pub fn form_fields(
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> AppResult<Vec<(String, String)>> {
    form.map(|Form(f)| f).map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge
        } else {
            AppError::BadRequest("The form could not be read.".into())
        }
    })
}

pub fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The signed-in person. Extracting it from a request without a live session sends the person
/// to log in.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub wallet: ledger::AccountId,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(AppError::SignInRequired)?;
        let row = state
            .db
            .one(
                "SELECT u.id, u.email, u.wallet_account_id FROM web_sessions s \
                 JOIN web_users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?",
                vec![sha256_hex(&token).into(), now_micros().into()],
            )
            .await?
            .ok_or(AppError::SignInRequired)?;
        Ok(CurrentUser {
            id: col(&row, "id")?,
            email: col(&row, "email")?,
            wallet: ledger::AccountId(col(&row, "wallet_account_id")?),
        })
    }
}

/// The signed-in person, if any (for pages open to both).
pub async fn maybe_user(state: &AppState, headers: &HeaderMap) -> AppResult<Option<CurrentUser>> {
    let mut parts = axum::http::Request::new(()).into_parts().0;
    parts.headers = headers.clone();
    match CurrentUser::from_request_parts(&mut parts, state).await {
        Ok(user) => Ok(Some(user)),
        Err(AppError::SignInRequired) => Ok(None),
        Err(e) => Err(e),
    }
}

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

fn auth_page(
    state: &AppState,
    headers: &HeaderMap,
    signup: bool,
    email: &str,
    errors: Errors,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(state, headers)?;
    let page = AuthPage {
        signup,
        csrf: &csrf.token,
        email,
        error: errors.general.as_deref(),
        email_error: errors.email.as_deref(),
        password_error: errors.password.as_deref(),
    };
    let status = errors.status;
    Ok(csrf.attach((status, Html(page.render()?)).into_response()))
}

#[derive(Default)]
struct Errors {
    status: axum::http::StatusCode,
    general: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

impl Errors {
    fn none() -> Errors {
        Errors {
            status: axum::http::StatusCode::OK,
            ..Errors::default()
        }
    }
}

pub async fn signup_page(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if maybe_user(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    auth_page(&state, &headers, true, "", Errors::none())
}

pub async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if maybe_user(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    auth_page(&state, &headers, false, "", Errors::none())
}

/// A plausible email address: trimmed, lower-cased, one `@`, a dot in the domain.
pub fn parse_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("Enter your email address.");
    }
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split('@').count() == 2
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err("Enter an email address like name@example.com.")
    }
}

pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> AppResult<Response> {
    password_request_allowed(&state, ip)?;
    let raw_email = field(&form, "email");
    let password = field(&form, "password");
    let email = parse_email(raw_email);
    let password_ok = check_new_password(password, raw_email);
    if email.is_err() || password_ok.is_err() {
        let errors = Errors {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            email: email.err().map(str::to_string),
            password: password_ok.err().map(str::to_string),
            ..Errors::default()
        };
        return auth_page(&state, &headers, true, raw_email, errors);
    }
    let email = email.unwrap_or_default();
    let taken = state
        .db
        .one(
            "SELECT id FROM web_users WHERE email = ?",
            vec![email.clone().into()],
        )
        .await?;
    let email_taken = || {
        let errors = Errors {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            email: Some("An account with this email already exists. Log in instead.".into()),
            ..Errors::default()
        };
        auth_page(&state, &headers, true, raw_email, errors)
    };
    // Checked first to spare the password hash; the insert's ON CONFLICT settles races.
    if taken.is_some() {
        return email_taken();
    }
    let Some(user_id) = create_account(&state, &email, password).await? else {
        return email_taken();
    };
    tracing::info!(user_id, "account created");
    start_session(&state, user_id, "/dashboard").await
}

/// One password request from this address, or "slow down".
fn password_request_allowed(state: &AppState, ip: std::net::IpAddr) -> AppResult<()> {
    state
        .address_limits
        .password_request(ip)
        .map_err(|wait| AppError::TooManyRequests {
            message: "Too many attempts from your network. Wait a minute and try again.".into(),
            retry_after: wait.as_secs().max(1),
        })
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm,
) -> AppResult<Response> {
    password_request_allowed(&state, ip)?;
    let raw_email = field(&form, "email");
    let password = field(&form, "password");
    let email = raw_email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 {
        let errors = Errors {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            email: Some("Enter your email address.".into()),
            ..Errors::default()
        };
        return auth_page(&state, &headers, false, raw_email, errors);
    }
    // Counted before the password is checked: of many guesses at once, only the allowed few
    // are ever checked.
    if let Err(refused) =
        crate::limits::log_in_attempt(&state.db, &state.settings.security, &email, ip).await
    {
        let AppError::TooManyRequests {
            message,
            retry_after,
        } = refused
        else {
            return Err(refused);
        };
        let errors = Errors {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            general: Some(message),
            ..Errors::default()
        };
        let mut page = auth_page(&state, &headers, false, raw_email, errors)?;
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(page);
    }
    let user = state
        .db
        .one(
            "SELECT id, password_hash FROM web_users WHERE email = ?",
            vec![email.clone().into()],
        )
        .await?;
    let (user_id, hash) = match &user {
        Some(row) => (
            Some(col::<i64>(row, "id")?),
            Some(col::<String>(row, "password_hash")?),
        ),
        None => (None, None),
    };
    // Verified against a real hash even for unknown emails, so timing does not reveal accounts.
    let ok = state.passwords.verify(password, hash).await?;
    match (ok, user_id) {
        (true, Some(user_id)) => {
            crate::limits::logged_in(&state.db, &email, ip).await?;
            start_session(&state, user_id, "/dashboard").await
        }
        _ => {
            let errors = Errors {
                status: axum::http::StatusCode::UNAUTHORIZED,
                general: Some("Incorrect email or password.".into()),
                ..Errors::default()
            };
            auth_page(&state, &headers, false, raw_email, errors)
        }
    }
}

/// Creates an account with its wallet; `None` when the email is taken. `email` must already be
/// normalised by [`parse_email`].
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: &str,
) -> AppResult<Option<i64>> {
    let hash = state.passwords.hash(password).await?;
    // The wallet is keyed by email (stable and unique), so a retried sign-up reuses it.
    let wallet = state.ledger.open_wallet(&format!("user:{email}")).await?;
    let inserted = state
        .db
        .exec(
            "INSERT INTO web_users (email, password_hash, wallet_account_id, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (email) DO NOTHING",
            vec![email.into(), hash.into(), wallet.0.into(), now_micros().into()],
        )
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let row = state
        .db
        .one(
            "SELECT id FROM web_users WHERE email = ?",
            vec![email.into()],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(col(&row, "id")?)),
        None => Err(AppError::Internal(anyhow::anyhow!(
            "new user {email} vanished"
        ))),
    }
}

/// A new session (and with it a new CSRF token); the pre-session CSRF cookie is dropped.
async fn start_session(state: &AppState, user_id: i64, to: &str) -> AppResult<Response> {
    let token = random_token()?;
    let ttl_secs = state.settings.session.ttl_hours * 3600;
    let now = now_micros();
    state
        .db
        .exec(
            "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
            vec![sha256_hex(&token).into(), user_id.into(), now.into(), (now + ttl_secs * 1_000_000).into()],
        )
        .await?;
    let mut response = Redirect::to(to).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(state, SESSION_COOKIE, &token, ttl_secs),
    );
    headers.append(header::SET_COOKIE, set_cookie(state, CSRF_COOKIE, "", 0));
    Ok(response)
}

/// Ends the session and sends the browser to log in with a fresh CSRF token.
fn signed_out(state: &AppState) -> AppResult<Response> {
    let mut response = Redirect::to("/login").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(state, SESSION_COOKIE, "", 0));
    headers.append(
        header::SET_COOKIE,
        set_cookie(state, CSRF_COOKIE, &random_token()?, 60 * 60 * 24),
    );
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm,
) -> AppResult<Response> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        state
            .db
            .exec(
                "DELETE FROM web_sessions WHERE token_hash = ?",
                vec![sha256_hex(&token).into()],
            )
            .await?;
    }
    signed_out(&state)
}

/// Ends every session of the account, this one included (a lost laptop, a shared computer).
pub async fn logout_everywhere(
    State(state): State<AppState>,
    user: CurrentUser,
    CsrfForm(_): CsrfForm,
) -> AppResult<Response> {
    let ended = state
        .db
        .exec(
            "DELETE FROM web_sessions WHERE user_id = ?",
            vec![user.id.into()],
        )
        .await?;
    tracing::info!(user_id = user.id, sessions = ended, "logged out everywhere");
    signed_out(&state)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    sessions: i64,
}

/// The account: who is signed in, on how many devices, and "Log out everywhere".
pub async fn account_page(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> AppResult<Response> {
    let csrf = CsrfToken::for_request(&state, &headers)?;
    let sessions = state
        .db
        .one(
            "SELECT COUNT(*) AS n FROM web_sessions WHERE user_id = ? AND expires_at > ?",
            vec![user.id.into(), now_micros().into()],
        )
        .await?
        .map(|row| col::<i64>(&row, "n"))
        .transpose()?
        .unwrap_or(0);
    let page = AccountPage {
        layout: Layout::new(&user, Nav::Account, &csrf.token, "Account"),
        sessions,
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            parse_email("  Asha@Example.COM "),
            Ok("asha@example.com".into())
        );
        for bad in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@example.",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kalp_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
