//! The operator pages under `/admin`: Needs attention and the action log (`home`), a customer
//! (`customer`), the forms that act (`actions`), the audit on demand (`audit`), and a month's
//! GST vouchers as CSV (`vouchers_csv`). Only accounts with the operator role see
//! them; to anyone else, signed in or not, every `/admin` URL is "Page not found", forms
//! included.

pub mod actions;
pub mod audit;
pub mod customer;
pub mod home;
pub mod vouchers_csv;

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};

use crate::{
    crypto::random_token,
    pages::{error::PageError, session::CurrentUser},
    state::AppState,
};

/// A signed-in operator. Anyone else gets 404, so the pages don't say they exist.
pub struct SignedInOperator(pub CurrentUser);

impl FromRequestParts<AppState> for SignedInOperator {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match <CurrentUser as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
        {
            Some(user) if user.is_operator => Ok(SignedInOperator(user)),
            _ => Err(PageError::NotFound),
        }
    }
}

/// A one-time token for an action form: posting the same form twice does the action once.
pub fn action_token() -> Result<String, PageError> {
    Ok(random_token()?.chars().take(32).collect())
}
