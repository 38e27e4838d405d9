//! Netbanking and wallets: choose the bank or wallet, then its page says yes or no.

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::views::{BankPage, ChoosePage, Header, error_page, render, session};
use super::visit::pay_and_show;
use crate::{
    fake::Fake,
    methods::{self, MethodOutcome, PayRequest},
};

/// Netbanking and wallets work alike: choose a provider, then its test page with Success and
/// Failure.
#[derive(Clone, Copy)]
pub(super) enum Provider {
    Bank,
    Wallet,
}

impl Provider {
    fn path(self) -> &'static str {
        match self {
            Provider::Bank => "netbanking",
            Provider::Wallet => "wallet",
        }
    }

    fn options(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Provider::Bank => methods::BANKS,
            Provider::Wallet => methods::WALLETS,
        }
    }

    fn name(self, code: &str) -> Option<&'static str> {
        match self {
            Provider::Bank => methods::bank_name(code),
            Provider::Wallet => methods::wallet_name(code),
        }
    }

    fn request(self, code: String, outcome: MethodOutcome) -> PayRequest {
        match self {
            Provider::Bank => PayRequest::Netbanking {
                bank: code,
                outcome,
            },
            Provider::Wallet => PayRequest::Wallet {
                wallet: code,
                outcome,
            },
        }
    }
}

pub(super) fn choose_page(fake: &Fake, sid: &str, provider: Provider) -> Response {
    match session(fake, sid) {
        Ok(s) => render(ChoosePage {
            h: Header::of(&s),
            title: match provider {
                Provider::Bank => "Select your bank",
                Provider::Wallet => "Select your wallet",
            },
            kind: provider.path(),
            options: provider.options().to_vec(),
        }),
        Err(page) => page,
    }
}

pub(super) fn provider_page(fake: &Fake, sid: &str, code: &str, provider: Provider) -> Response {
    let s = match session(fake, sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    match provider.name(code) {
        Some(name) => render(BankPage {
            h: Header::of(&s),
            provider: name,
            action: format!("/checkout/{sid}/{}/{code}", provider.path()),
        }),
        None => error_page(
            StatusCode::NOT_FOUND,
            match provider {
                Provider::Bank => "Unknown bank.",
                Provider::Wallet => "Unknown wallet.",
            },
        ),
    }
}

pub(super) async fn provider_pay(
    fake: &Fake,
    sid: &str,
    code: String,
    outcome: MethodOutcome,
    provider: Provider,
) -> Response {
    match session(fake, sid) {
        Ok(s) => pay_and_show(fake, &s, provider.request(code, outcome)).await,
        Err(page) => page,
    }
}

pub(super) async fn banks_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    choose_page(&fake, &sid, Provider::Bank)
}

pub(super) async fn wallets_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    choose_page(&fake, &sid, Provider::Wallet)
}

pub(super) async fn bank_page(
    State(fake): State<Fake>,
    Path((sid, bank)): Path<(String, String)>,
) -> Response {
    provider_page(&fake, &sid, &bank, Provider::Bank)
}

pub(super) async fn wallet_page(
    State(fake): State<Fake>,
    Path((sid, wallet)): Path<(String, String)>,
) -> Response {
    provider_page(&fake, &sid, &wallet, Provider::Wallet)
}

#[derive(Deserialize)]
pub(super) struct OutcomeForm {
    pub(super) outcome: MethodOutcome,
}

pub(super) async fn bank_pay(
    State(fake): State<Fake>,
    Path((sid, bank)): Path<(String, String)>,
    Form(form): Form<OutcomeForm>,
) -> Response {
    provider_pay(&fake, &sid, bank, form.outcome, Provider::Bank).await
}

pub(super) async fn wallet_pay(
    State(fake): State<Fake>,
    Path((sid, wallet)): Path<(String, String)>,
    Form(form): Form<OutcomeForm>,
) -> Response {
    provider_pay(&fake, &sid, wallet, form.outcome, Provider::Wallet).await
}
