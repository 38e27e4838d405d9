//! UPI: pay by UPI id (collect) or by scanning the QR code (intent).

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::views::{Header, UpiPage, error_page, render, session};
use super::visit::pay_and_show;
use crate::{
    fake::Fake,
    methods::{self, PayRequest},
    payment_details::UPI_LIMIT,
    sessions::CheckoutSession,
};

pub(super) fn upi_link(s: &CheckoutSession) -> String {
    let rupees = format!("{}.{:02}", s.amount.0 / 100, s.amount.0 % 100);
    format!(
        "upi://pay?pa=kalpstudio@razorpay&pn={}&am={rupees}&cu=INR&tr={}",
        s.merchant.replace(' ', "%20"),
        s.order_id
    )
}

pub(super) fn upi_page_for(s: &CheckoutSession, vpa: String, error: Option<String>) -> Response {
    let link = upi_link(s);
    let qr_svg = qrcode::QrCode::new(link.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (
        status,
        render(UpiPage {
            h: Header::of(s),
            qr_svg,
            upi_link: link,
            vpa,
            error,
        }),
    )
        .into_response()
}

pub(super) async fn upi_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) if s.amount > UPI_LIMIT => error_page(
            StatusCode::BAD_REQUEST,
            format!(
                "UPI payments are limited to {} each. Go back and choose another method.",
                UPI_LIMIT.display_inr()
            ),
        ),
        Ok(s) => upi_page_for(&s, String::new(), None),
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub(super) struct VpaForm {
    #[serde(default)]
    pub(super) vpa: String,
}

pub(super) async fn upi_pay(
    State(fake): State<Fake>,
    Path(sid): Path<String>,
    Form(form): Form<VpaForm>,
) -> Response {
    let s = match session(&fake, &sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    let vpa = form.vpa.trim().to_string();
    if vpa.is_empty() {
        return upi_page_for(&s, vpa, Some("Enter your UPI ID.".into()));
    }
    if !methods::vpa_ok(&vpa) {
        return upi_page_for(
            &s,
            vpa,
            Some("Invalid UPI ID. It looks like name@bank.".into()),
        );
    }
    pay_and_show(
        &fake,
        &s,
        PayRequest::Upi {
            vpa: Some(vpa),
            qr: false,
        },
    )
    .await
}

pub(super) async fn upi_scan(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => {
            pay_and_show(
                &fake,
                &s,
                PayRequest::Upi {
                    vpa: None,
                    qr: true,
                },
            )
            .await
        }
        Err(page) => page,
    }
}
