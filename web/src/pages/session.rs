//! Who is signed in: the session cookie (a random token; only its hash is stored), the cookies we
//! set, and the `CurrentUser` extractor (`Option<CurrentUser>` for pages open to both).

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::{
    configuration::Settings,
    crypto::{random_token, sha256_hex},
    pages::error::{PageError, PageResult},
    state::AppState,
    store::{self, now_micros},
};

pub const SESSION_COOKIE: &str = "kalp_session";
/// The CSRF token of a browser with no session (the log-in and sign-up forms).
pub const CSRF_COOKIE: &str = "kalp_csrf";

pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_string())
}

/// `HttpOnly; SameSite=Lax` (Lax, because Razorpay's callback is a cross-site POST followed by
/// a redirect), `Secure` whenever the app is served over https.
pub fn cookie_header(
    settings: &Settings,
    name: &str,
    value: &str,
    max_age_secs: i64,
) -> HeaderValue {
    let cookie = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.served_over_https())
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&cookie.encoded().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The signed-in person. Extracting it from a request without a live session sends the person
/// to log in.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub wallet: ledger::AccountId,
    /// May use the operator pages under `/admin`.
    pub is_operator: bool,
}

async fn signed_in(parts: &Parts, state: &AppState) -> Result<Option<CurrentUser>, PageError> {
    let Some(token) = read_cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let user = store::sessions::user_of(&state.reads, &sha256_hex(&token), now_micros()).await?;
    Ok(user.map(|u| CurrentUser {
        id: u.id,
        email: u.email,
        wallet: u.wallet,
        is_operator: u.is_operator,
    }))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        signed_in(parts, state)
            .await?
            .ok_or(PageError::SignInRequired)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        signed_in(parts, state).await
    }
}

/// A new session for the account (and with it a new CSRF token), then `to`; the pre-session CSRF
/// cookie is dropped.
pub async fn start_session(state: &AppState, user_id: i64, to: &str) -> PageResult<Response> {
    let token = random_token()?;
    let ttl_secs = state.settings.session.ttl_hours * 3600;
    let now = now_micros();
    let token_hash = &sha256_hex(&token);
    state
        .ledger
        .autocommit(|writer| {
            Box::pin(async move {
                store::sessions::create(
                    writer,
                    token_hash,
                    user_id,
                    now,
                    now + ttl_secs * 1_000_000,
                )
                .await
            })
        })
        .await?;
    let mut response = Redirect::to(to).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(&state.settings, SESSION_COOKIE, &token, ttl_secs),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(&state.settings, CSRF_COOKIE, "", 0),
    );
    Ok(response)
}

/// After a session ended: to the log-in page, with a fresh CSRF token.
pub fn signed_out(settings: &Settings) -> PageResult<Response> {
    let mut response = Redirect::to("/login").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(settings, SESSION_COOKIE, "", 0),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(settings, CSRF_COOKIE, &random_token()?, 60 * 60 * 24),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; kalp_session=abc; b=2"),
        );
        assert_eq!(
            read_cookie(&headers, SESSION_COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(read_cookie(&headers, "missing"), None);
    }
}
