//! Card: the card form, then the bank's OTP page (three tries, resend).

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::views::{CardPage, Header, OtpPage, render, session, update};
use super::visit::pay_and_show;
use crate::{
    fake::Fake,
    methods::{self, PayRequest},
    sessions::{CardDraft, CheckoutSession},
};

pub(super) async fn card_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => render(CardPage {
            h: Header::of(&s),
            number: String::new(),
            expiry: String::new(),
            name: String::new(),
            error: None,
        }),
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub(super) struct CardForm {
    #[serde(default)]
    pub(super) number: String,
    #[serde(default)]
    pub(super) expiry: String,
    #[serde(default)]
    pub(super) cvv: String,
    #[serde(default)]
    pub(super) name: String,
}

pub(super) async fn card_submit(
    State(fake): State<Fake>,
    Path(sid): Path<String>,
    Form(form): Form<CardForm>,
) -> Response {
    let s = match session(&fake, &sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    match methods::check_card(
        &form.number,
        &form.expiry,
        &form.cvv,
        &form.name,
        current_month(),
    ) {
        Ok(card) => {
            let draft = CardDraft {
                number: card.number,
                expiry: form.expiry,
                cvv: form.cvv,
                name: form.name,
                last4: card.last4,
            };
            update(&fake, &sid, |s| {
                s.card = Some(draft);
                s.otp_failures = 0;
            });
            Redirect::to(&format!("/checkout/{sid}/otp")).into_response()
        }
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            render(CardPage {
                h: Header::of(&s),
                number: form.number,
                expiry: form.expiry,
                name: form.name,
                error: Some(message),
            }),
        )
            .into_response(),
    }
}

pub(super) fn current_month() -> (u32, u32) {
    crate::payment_details::current_year_month()
}

pub(super) fn otp_for(
    s: &CheckoutSession,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let Some(card) = &s.card else {
        return Redirect::to(&format!("/checkout/{}/card", s.id)).into_response();
    };
    let contact = s
        .prefill
        .contact
        .clone()
        .unwrap_or_else(|| "+919999999999".into());
    let masked = format!("******{}", &contact[contact.len().saturating_sub(4)..]);
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (
        status,
        render(OtpPage {
            h: Header::of(s),
            last4: card.last4.clone(),
            contact: masked,
            notice,
            error,
        }),
    )
        .into_response()
}

pub(super) async fn otp_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => otp_for(&s, None, None),
        Err(page) => page,
    }
}

pub(super) async fn otp_resend(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => otp_for(
            &s,
            Some("A new OTP was sent. (Any 4 to 10 digits work here.)".to_string()),
            None,
        ),
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub(super) struct OtpForm {
    #[serde(default)]
    pub(super) otp: String,
}

/// Wrong OTPs may be retried twice; the third fails the payment.
pub(super) const OTP_TRIES: u32 = 3;

pub(super) async fn otp_submit(
    State(fake): State<Fake>,
    Path(sid): Path<String>,
    Form(form): Form<OtpForm>,
) -> Response {
    let s = match session(&fake, &sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    let Some(card) = s.card.clone() else {
        return Redirect::to(&format!("/checkout/{sid}/card")).into_response();
    };
    if !methods::otp_ok(&form.otp) && s.otp_failures + 1 < OTP_TRIES {
        update(&fake, &sid, |s| s.otp_failures += 1);
        let left = OTP_TRIES - s.otp_failures - 1;
        let s = session(&fake, &sid).unwrap_or(s);
        return otp_for(
            &s,
            None,
            Some(format!("Incorrect OTP. {left} attempt(s) left.")),
        );
    }
    update(&fake, &sid, |s| s.card = None);
    let request = PayRequest::Card {
        number: card.number,
        expiry: card.expiry,
        cvv: card.cvv,
        name: card.name,
        otp: form.otp,
    };
    pay_and_show(&fake, &s, request).await
}
