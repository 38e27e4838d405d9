//! The hosted checkout: `POST /v1/checkout/embedded` with Razorpay's form fields opens a payment
//! page (a brief loading screen, then the merchant, the amount and four methods). Every step is a
//! plain HTML form, so it works without JavaScript; scripts only auto-submit where Razorpay would.

mod card;
mod providers;
mod upi;
mod views;
mod visit;

use axum::{
    Router,
    routing::{get, post},
};

use crate::fake::Fake;
use card::{card_page, card_submit, otp_page, otp_resend, otp_submit};
use providers::{bank_page, bank_pay, banks_page, wallet_page, wallet_pay, wallets_page};
use upi::{upi_page, upi_pay, upi_scan};
use visit::{cancel, methods_page, open, waiting};

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/v1/checkout/embedded", post(open))
        .route("/checkout/{sid}", get(methods_page))
        .route("/checkout/{sid}/upi", get(upi_page).post(upi_pay))
        .route("/checkout/{sid}/upi/scan", post(upi_scan))
        .route("/checkout/{sid}/card", get(card_page).post(card_submit))
        .route("/checkout/{sid}/otp", get(otp_page).post(otp_submit))
        .route("/checkout/{sid}/otp/resend", post(otp_resend))
        .route("/checkout/{sid}/netbanking", get(banks_page))
        .route(
            "/checkout/{sid}/netbanking/{bank}",
            get(bank_page).post(bank_pay),
        )
        .route("/checkout/{sid}/wallet", get(wallets_page))
        .route(
            "/checkout/{sid}/wallet/{wallet}",
            get(wallet_page).post(wallet_pay),
        )
        .route("/checkout/{sid}/cancel", post(cancel))
        .route("/checkout/{sid}/waiting", get(waiting))
}
