//! Forms from people: typed structs parsed once from the body, and the CSRF check that every
//! state-changing form passes before its fields are read.
//!
//! The CSRF token is bound to the session: signed in, it is derived from the session's secret
//! token, so it changes with it (at log-in and log-out). Without a session (the log-in and sign-up
//! forms) it is a random token in a cookie of its own (double submit: a cross-site page can
//! neither read our cookies nor make the browser send a matching field).

use axum::{
    extract::{FromRequest, RawForm, Request, rejection::RawFormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{
    configuration::Settings,
    crypto::{constant_time_eq, random_token, sha256_hex},
    pages::{
        error::{PageError, PageResult},
        session::{CSRF_COOKIE, SESSION_COOKIE, cookie_header, read_cookie},
    },
    state::AppState,
};

/// How long the CSRF cookie of a browser without a session lasts.
pub const CSRF_COOKIE_SECS: i64 = 60 * 60 * 24;

/// The CSRF token for the forms on a page, and the cookie to set when it is new.
pub struct CsrfToken {
    pub token: String,
    set: Option<HeaderValue>,
}

fn session_csrf(session_token: &str) -> String {
    sha256_hex(&format!("csrf|{session_token}"))
}

impl CsrfToken {
    pub fn for_request(settings: &Settings, headers: &HeaderMap) -> PageResult<CsrfToken> {
        if let Some(session) = read_cookie(headers, SESSION_COOKIE) {
            return Ok(CsrfToken {
                token: session_csrf(&session),
                set: None,
            });
        }
        match read_cookie(headers, CSRF_COOKIE).filter(|t| t.len() == 64) {
            Some(token) => Ok(CsrfToken { token, set: None }),
            None => {
                let token = random_token()?;
                let set = Some(cookie_header(
                    settings,
                    CSRF_COOKIE,
                    &token,
                    CSRF_COOKIE_SECS,
                ));
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
fn verify_csrf(headers: &HeaderMap, sent: &str) -> PageResult<()> {
    let expected = match read_cookie(headers, SESSION_COOKIE) {
        Some(session) => Some(session_csrf(&session)),
        None => read_cookie(headers, CSRF_COOKIE),
    };
    match expected {
        Some(expected)
            if !sent.is_empty() && constant_time_eq(sent.as_bytes(), expected.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(PageError::Forbidden(
            "This form expired or did not come from Kalp Studio. Go back, reload the page and try again.".into(),
        )),
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A state-changing form from a person, typed: parsed only once the CSRF token in it matches
/// the browser's. Taking this extractor is how a handler can't forget the check.
pub struct CsrfForm<T>(pub T);

/// A form that carries no CSRF token because it comes from elsewhere (Razorpay's callback,
/// which proves itself with a signature instead).
pub struct PlainForm<T>(pub T);

/// A form with no fields but its token (log out, cancel).
#[derive(Deserialize)]
pub struct NoFields {}

async fn raw_form(
    request: Request,
    state: &AppState,
) -> PageResult<(HeaderMap, axum::body::Bytes)> {
    let headers = request.headers().clone();
    let RawForm(bytes) = RawForm::from_request(request, state)
        .await
        .map_err(form_rejection)?;
    Ok((headers, bytes))
}

fn form_rejection(rejection: RawFormRejection) -> PageError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => PageError::TooLarge,
        _ => PageError::BadRequest("The form could not be read.".into()),
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> PageResult<T> {
    serde_urlencoded::from_bytes(bytes)
        .map_err(|_| PageError::BadRequest("The form could not be read.".into()))
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (headers, bytes) = raw_form(request, state).await?;
        let CsrfField { csrf } = parse(&bytes)?;
        verify_csrf(&headers, &csrf)?;
        Ok(CsrfForm(parse(&bytes)?))
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for PlainForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (_, bytes) = raw_form(request, state).await?;
        Ok(PlainForm(parse(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Login {
        #[serde(default)]
        email: String,
        #[serde(default)]
        password: String,
    }

    #[test]
    fn a_form_is_parsed_into_its_struct_and_missing_fields_are_empty() {
        let form: Login = parse(b"email=a%40b.co&csrf=x&extra=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            form,
            Login {
                email: "a@b.co".into(),
                password: String::new()
            }
        );
    }

    #[test]
    fn a_token_that_does_not_match_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("kalp_session=secret"),
        );
        assert!(verify_csrf(&headers, &session_csrf("secret")).is_ok());
        assert!(verify_csrf(&headers, &session_csrf("other")).is_err());
        assert!(verify_csrf(&headers, "").is_err());
        assert!(verify_csrf(&HeaderMap::new(), "anything").is_err());
    }
}
