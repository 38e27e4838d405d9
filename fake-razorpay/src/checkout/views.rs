//! The checkout's pages and what they share: the header every page shows, the result page, the
//! error page, and a visit's session.

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use razorpay::wire::{Payment, PaymentStatus};

use crate::{
    callbacks::CallbackFields, fake::Fake, payment_details::UPI_LIMIT, sessions::CheckoutSession,
};

pub(super) struct Header {
    pub(super) sid: String,
    pub(super) merchant: String,
    pub(super) description: String,
    pub(super) amount: String,
    pub(super) email: String,
}

impl Header {
    pub(super) fn of(s: &CheckoutSession) -> Header {
        Header {
            sid: s.id.clone(),
            merchant: s.merchant.clone(),
            description: s.description.clone().unwrap_or_default(),
            amount: s.amount.display_inr(),
            email: s.prefill.email.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "methods.html")]
pub(super) struct MethodsPage {
    pub(super) h: Header,
    pub(super) loading: bool,
    /// UPI is not offered above Razorpay's per-payment limit.
    pub(super) upi_allowed: bool,
    pub(super) upi_limit: String,
}

#[derive(Template)]
#[template(path = "waiting.html")]
pub(super) struct WaitingPage {
    pub(super) h: Header,
}

#[derive(Template)]
#[template(path = "upi.html")]
pub(super) struct UpiPage {
    pub(super) h: Header,
    pub(super) qr_svg: String,
    pub(super) upi_link: String,
    pub(super) vpa: String,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "card.html")]
pub(super) struct CardPage {
    pub(super) h: Header,
    pub(super) number: String,
    pub(super) expiry: String,
    pub(super) name: String,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "otp.html")]
pub(super) struct OtpPage {
    pub(super) h: Header,
    pub(super) last4: String,
    pub(super) contact: String,
    pub(super) notice: Option<String>,
    pub(super) error: Option<String>,
}

#[derive(Template)]
#[template(path = "choose.html")]
pub(super) struct ChoosePage {
    pub(super) h: Header,
    pub(super) title: &'static str,
    pub(super) kind: &'static str,
    pub(super) options: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "bank.html")]
pub(super) struct BankPage {
    pub(super) h: Header,
    pub(super) provider: &'static str,
    pub(super) action: String,
}

#[derive(Template)]
#[template(path = "result.html")]
pub(super) struct ResultPage {
    pub(super) h: Header,
    pub(super) success: bool,
    pub(super) message: String,
    pub(super) action: String,
    pub(super) fields: Vec<(String, String)>,
    pub(super) back: Back,
}

/// How the result page hands the customer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Back {
    /// Posts the result to the merchant's `callback_url`.
    Post,
    /// The customer closed the tab: nothing is posted.
    TabClosed,
    /// A failure that posts nothing (`failure_callback` off): the customer stays to try again.
    StayHere,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(super) struct CheckoutErrorPage {
    pub(super) message: String,
}

pub(super) fn render<T: Template>(page: T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub(super) fn error_page(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        render(CheckoutErrorPage {
            message: message.into(),
        }),
    )
        .into_response()
}

// The error is the page to show; boxing axum's Response would buy nothing here.
#[allow(clippy::result_large_err)]
pub(super) fn session(fake: &Fake, sid: &str) -> Result<CheckoutSession, Response> {
    fake.lock().checkouts.get(sid).cloned().ok_or_else(|| {
        error_page(
            StatusCode::NOT_FOUND,
            "This payment page has expired. Go back to the merchant and start again.",
        )
    })
}

pub(super) fn update(fake: &Fake, sid: &str, f: impl FnOnce(&mut CheckoutSession)) {
    if let Some(s) = fake.lock().checkouts.get_mut(sid) {
        f(s);
    }
}

pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

pub(super) fn methods_page_for(s: &CheckoutSession, loading: bool) -> MethodsPage {
    MethodsPage {
        h: Header::of(s),
        loading,
        upi_allowed: s.amount <= UPI_LIMIT,
        upi_limit: UPI_LIMIT.display_inr(),
    }
}

pub(super) fn result_page(
    s: &CheckoutSession,
    payment: &Payment,
    callback: Option<CallbackFields>,
    failure_callback: bool,
) -> Response {
    let success = !matches!(
        payment.status,
        PaymentStatus::Failed | PaymentStatus::Created
    );
    let message = match (&callback, success) {
        (Some(CallbackFields::Failure { description, .. }), _) => description.clone(),
        (_, true) => "Payment successful".to_string(),
        (_, false) => payment
            .error_description
            .clone()
            .unwrap_or_else(|| "Payment failed".to_string()),
    };
    let back = match (&callback, success) {
        (Some(_), _) => Back::Post,
        (None, false) if !failure_callback => Back::StayHere,
        (None, _) => Back::TabClosed,
    };
    render(ResultPage {
        h: Header::of(s),
        success,
        message,
        action: s.callback_url.clone(),
        back,
        fields: callback.map(|c| c.pairs()).unwrap_or_default(),
    })
}
