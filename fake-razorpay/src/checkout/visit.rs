//! A visit: the merchant's form post opens it, the methods page, cancelling, paying and showing
//! the result, and waiting for a bank that has not answered.

use axum::{
    Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::views::{
    Back, Header, ResultPage, WaitingPage, error_page, field, methods_page_for, render,
    result_page, session, update,
};
use crate::{
    callbacks::CallbackFields,
    fake::{Fake, PayOverrides},
    ids,
    methods::PayRequest,
    payment_details::Prefill,
    sessions::CheckoutSession,
};

/// The merchant's form post: Razorpay's hosted-checkout fields.
pub(super) async fn open(
    State(fake): State<Fake>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let (key_id, default_merchant) = {
        let state = fake.lock();
        (
            state.settings.key_id.clone(),
            state.settings.merchant_name.clone(),
        )
    };
    let Some(key) = field(&form, "key_id").or_else(|| field(&form, "key")) else {
        return error_page(StatusCode::BAD_REQUEST, "The key_id field is required.");
    };
    if key != key_id {
        return error_page(StatusCode::BAD_REQUEST, "The api key provided is invalid.");
    }
    let Some(order_id) = field(&form, "order_id") else {
        return error_page(StatusCode::BAD_REQUEST, "The order_id field is required.");
    };
    let Some(callback_url) = field(&form, "callback_url") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The callback_url field is required.",
        );
    };
    if !(callback_url.starts_with("http://") || callback_url.starts_with("https://")) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The callback_url must be an http(s) URL.",
        );
    }
    let order = match fake.lock().gateway.order(order_id) {
        Ok(order) => order.clone(),
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "The id provided does not exist"),
    };
    if let Some(amount) = field(&form, "amount")
        && amount.parse::<i64>().ok() != Some(order.amount.0)
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The amount does not match the order amount.",
        );
    }
    if order.status == razorpay::wire::OrderStatus::Paid {
        return error_page(StatusCode::BAD_REQUEST, "This order has already been paid.");
    }
    let session = CheckoutSession {
        id: ids::new_id("chk"),
        order_id: order.id.clone(),
        amount: order.amount,
        merchant: field(&form, "name")
            .unwrap_or(&default_merchant)
            .to_string(),
        description: field(&form, "description").map(str::to_string),
        prefill: Prefill {
            email: field(&form, "prefill[email]").map(str::to_string),
            contact: field(&form, "prefill[contact]").map(str::to_string),
        },
        callback_url: callback_url.to_string(),
        cancel_url: field(&form, "cancel_url").map(str::to_string),
        card: None,
        otp_failures: 0,
        result: None,
        pending_payment: None,
    };
    let page = methods_page_for(&session, true);
    fake.lock().checkouts.insert(session.id.clone(), session);
    render(page)
}

pub(super) async fn methods_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => render(methods_page_for(&s, false)),
        Err(page) => page,
    }
}

/// Cancel: a GET to `cancel_url`, as Razorpay does; without one, a `payment_cancelled` failure
/// posted to `callback_url`.
pub(super) async fn cancel(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    let s = match session(&fake, &sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    if let Some(url) = &s.cancel_url {
        return Redirect::to(url).into_response();
    }
    let fields = CallbackFields::Failure {
        code: "BAD_REQUEST_ERROR".into(),
        description: "Payment processing cancelled by user".into(),
        source: "customer".into(),
        step: "payment_authentication".into(),
        reason: "payment_cancelled".into(),
        metadata: serde_json::json!({"order_id": s.order_id}).to_string(),
    };
    render(ResultPage {
        h: Header::of(&s),
        success: false,
        message: "Payment processing cancelled by user".into(),
        action: s.callback_url.clone(),
        back: Back::Post,
        fields: fields.pairs(),
    })
}

pub(super) async fn pay_and_show(
    fake: &Fake,
    s: &CheckoutSession,
    request: PayRequest,
) -> Response {
    let result = match fake
        .pay(&s.order_id, &request, PayOverrides::default())
        .await
    {
        Ok(result) => result,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, e.description),
    };
    if result.pending {
        update(fake, &s.id, |session| {
            session.pending_payment = Some(result.payment.id.clone());
            session.result = None;
        });
        return render(WaitingPage { h: Header::of(s) });
    }
    update(fake, &s.id, |session| {
        session.result = Some(result.callback.clone())
    });
    let failure = fake.faults().failure_callback;
    result_page(s, &result.payment, result.callback, failure)
}

/// Polled by the waiting page: the result once the bank has answered.
pub(super) async fn waiting(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    let s = match session(&fake, &sid) {
        Ok(s) => s,
        Err(page) => return page,
    };
    let paid = fake
        .lock()
        .gateway
        .order_payments(&s.order_id)
        .ok()
        .and_then(|payments| payments.last().cloned());
    match (&s.pending_payment, &s.result, paid) {
        (None, Some(callback), Some(payment)) => {
            let failure = fake.faults().failure_callback;
            result_page(&s, &payment, callback.clone(), failure)
        }
        _ => render(WaitingPage { h: Header::of(&s) }),
    }
}
