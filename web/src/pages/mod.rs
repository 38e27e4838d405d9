//! Pages for people: server-rendered HTML, forms with CSRF, errors as pages. Each module is one
//! part of the site; `views`, `forms`, `session` and `error` are what they share.
//!
//! Pages read through the store and the ledger and change money only through the services
//! (`billing`, `alerts`, `accounts`); they never write SQL.

pub mod account;
pub mod admin;
pub mod api_keys;
pub mod billing;
pub mod billing_profile;
pub mod dashboard;
pub mod error;
pub mod forms;
pub mod history;
pub mod history_csv;
pub mod password_reset;
pub mod receipts;
pub mod session;
pub mod sign_in;
pub mod topup;
pub mod views;

use axum::response::Redirect;

use crate::pages::session::CurrentUser;

/// `/`: the Dashboard when signed in, else log in.
pub async fn root(user: Option<CurrentUser>) -> Redirect {
    match user {
        Some(_) => Redirect::to("/dashboard"),
        None => Redirect::to("/login"),
    }
}
