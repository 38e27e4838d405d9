//! The hosted checkout: `POST /v1/checkout/embedded` with Razorpay's form fields opens a payment
//! page (a brief loading screen, then the merchant, the amount and four methods). Every step is a
//! plain HTML form, so it works without JavaScript; scripts only auto-submit where Razorpay would.

use askama::Template;
use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use razorpay::{
    Paise,
    wire::{Payment, PaymentStatus},
};
use serde::Deserialize;

use crate::{
    CallbackFields, Fake, PayOverrides,
    engine::{Prefill, UPI_LIMIT},
    ids,
    methods::{self, Outcome, PayRequest},
};

/// One customer's visit to the checkout, from the merchant's form post to the result.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub id: String,
    pub order_id: String,
    pub amount: Paise,
    pub merchant: String,
    pub description: Option<String>,
    pub prefill: Prefill,
    pub callback_url: String,
    pub cancel_url: Option<String>,
    /// Card details waiting for their OTP.
    pub card: Option<CardDraft>,
    pub otp_failures: u32,
    /// The last attempt's result, shown again if the page is revisited.
    pub result: Option<Option<CallbackFields>>,
    /// A payment of this visit still waiting for its bank.
    pub pending_payment: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CardDraft {
    number: String,
    expiry: String,
    cvv: String,
    name: String,
    last4: String,
}

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

struct Header {
    sid: String,
    merchant: String,
    description: String,
    amount: String,
    email: String,
}

impl Header {
    fn of(s: &Session) -> Header {
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
struct MethodsPage {
    h: Header,
    loading: bool,
    /// UPI is not offered above Razorpay's per-payment limit.
    upi_allowed: bool,
    upi_limit: String,
}

#[derive(Template)]
#[template(path = "waiting.html")]
struct WaitingPage {
    h: Header,
}

#[derive(Template)]
#[template(path = "upi.html")]
struct UpiPage {
    h: Header,
    qr_svg: String,
    upi_link: String,
    vpa: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    h: Header,
    number: String,
    expiry: String,
    name: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "otp.html")]
struct OtpPage {
    h: Header,
    last4: String,
    contact: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "choose.html")]
struct ChoosePage {
    h: Header,
    title: &'static str,
    kind: &'static str,
    options: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "bank.html")]
struct BankPage {
    h: Header,
    provider: &'static str,
    action: String,
}

#[derive(Template)]
#[template(path = "result.html")]
struct ResultPage {
    h: Header,
    success: bool,
    message: String,
    action: String,
    fields: Vec<(String, String)>,
    back: Back,
}

/// How the result page hands the customer back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Back {
    /// Posts the result to the merchant's `callback_url`.
    Post,
    /// The customer closed the tab: nothing is posted.
    TabClosed,
    /// A failure that posts nothing (`failure_callback` off): the customer stays to try again.
    StayHere,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    message: String,
}

fn render<T: Template>(page: T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

fn error_page(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        render(ErrorPage {
            message: message.into(),
        }),
    )
        .into_response()
}

// The error is the page to show; boxing axum's Response would buy nothing here.
#[allow(clippy::result_large_err)]
fn session(fake: &Fake, sid: &str) -> Result<Session, Response> {
    fake.lock().checkouts.get(sid).cloned().ok_or_else(|| {
        error_page(
            StatusCode::NOT_FOUND,
            "This payment page has expired. Go back to the merchant and start again.",
        )
    })
}

fn update(fake: &Fake, sid: &str, f: impl FnOnce(&mut Session)) {
    if let Some(s) = fake.lock().checkouts.get_mut(sid) {
        f(s);
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// The merchant's form post: Razorpay's hosted-checkout fields.
async fn open(State(fake): State<Fake>, Form(form): Form<Vec<(String, String)>>) -> Response {
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
    let session = Session {
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

fn methods_page_for(s: &Session, loading: bool) -> MethodsPage {
    MethodsPage {
        h: Header::of(s),
        loading,
        upi_allowed: s.amount <= UPI_LIMIT,
        upi_limit: UPI_LIMIT.display_inr(),
    }
}

async fn methods_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => render(methods_page_for(&s, false)),
        Err(page) => page,
    }
}

fn upi_link(s: &Session) -> String {
    let rupees = format!("{}.{:02}", s.amount.0 / 100, s.amount.0 % 100);
    format!(
        "upi://pay?pa=kalpstudio@razorpay&pn={}&am={rupees}&cu=INR&tr={}",
        s.merchant.replace(' ', "%20"),
        s.order_id
    )
}

fn upi_page_for(s: &Session, vpa: String, error: Option<String>) -> Response {
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

async fn upi_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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
struct VpaForm {
    #[serde(default)]
    vpa: String,
}

async fn upi_pay(
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

async fn upi_scan(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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

async fn card_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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
struct CardForm {
    #[serde(default)]
    number: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    cvv: String,
    #[serde(default)]
    name: String,
}

async fn card_submit(
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

fn current_month() -> (u32, u32) {
    crate::engine::current_year_month()
}

fn otp_for(s: &Session, notice: Option<String>, error: Option<String>) -> Response {
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

async fn otp_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    match session(&fake, &sid) {
        Ok(s) => otp_for(&s, None, None),
        Err(page) => page,
    }
}

async fn otp_resend(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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
struct OtpForm {
    #[serde(default)]
    otp: String,
}

/// Wrong OTPs may be retried twice; the third fails the payment.
const OTP_TRIES: u32 = 3;

async fn otp_submit(
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

/// Netbanking and wallets work alike: choose a provider, then its test page with Success and
/// Failure.
#[derive(Clone, Copy)]
enum Provider {
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

    fn request(self, code: String, outcome: Outcome) -> PayRequest {
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

fn choose_page(fake: &Fake, sid: &str, provider: Provider) -> Response {
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

fn provider_page(fake: &Fake, sid: &str, code: &str, provider: Provider) -> Response {
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

async fn provider_pay(
    fake: &Fake,
    sid: &str,
    code: String,
    outcome: Outcome,
    provider: Provider,
) -> Response {
    match session(fake, sid) {
        Ok(s) => pay_and_show(fake, &s, provider.request(code, outcome)).await,
        Err(page) => page,
    }
}

async fn banks_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    choose_page(&fake, &sid, Provider::Bank)
}

async fn wallets_page(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
    choose_page(&fake, &sid, Provider::Wallet)
}

async fn bank_page(
    State(fake): State<Fake>,
    Path((sid, bank)): Path<(String, String)>,
) -> Response {
    provider_page(&fake, &sid, &bank, Provider::Bank)
}

async fn wallet_page(
    State(fake): State<Fake>,
    Path((sid, wallet)): Path<(String, String)>,
) -> Response {
    provider_page(&fake, &sid, &wallet, Provider::Wallet)
}

#[derive(Deserialize)]
struct OutcomeForm {
    outcome: Outcome,
}

async fn bank_pay(
    State(fake): State<Fake>,
    Path((sid, bank)): Path<(String, String)>,
    Form(form): Form<OutcomeForm>,
) -> Response {
    provider_pay(&fake, &sid, bank, form.outcome, Provider::Bank).await
}

async fn wallet_pay(
    State(fake): State<Fake>,
    Path((sid, wallet)): Path<(String, String)>,
    Form(form): Form<OutcomeForm>,
) -> Response {
    provider_pay(&fake, &sid, wallet, form.outcome, Provider::Wallet).await
}

/// Cancel: a GET to `cancel_url`, as Razorpay does; without one, a `payment_cancelled` failure
/// posted to `callback_url`.
async fn cancel(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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

async fn pay_and_show(fake: &Fake, s: &Session, request: PayRequest) -> Response {
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
async fn waiting(State(fake): State<Fake>, Path(sid): Path<String>) -> Response {
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

fn result_page(
    s: &Session,
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
