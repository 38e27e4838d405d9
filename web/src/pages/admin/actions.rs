//! The operator's forms: each parses its fields once (a reason is always required), does one
//! action through `operators`, and answers with a page saying what happened. A form posted
//! twice (its one-time token) or an item resolved by someone else says "already done".

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use razorpay::Paise;
use serde::Deserialize;

use crate::{
    operators::{
        ActionOutcome, Reason,
        attention::acknowledge_shortfall,
        corrections::{
            AdjustmentDirection, OperatorRequest, PromoExpiry, adjust, grant_promotional,
            parse_credits,
        },
        flagged::{FlagAction, resolve},
        form_action_key,
        parked_emails::send_again,
        unused_credits::{RefundOrigin, decline, refund_unused},
    },
    pages::{
        admin::SignedInOperator,
        error::{PageError, PageResult},
        forms::CsrfForm,
    },
    state::AppState,
    store::{refund_requests, users},
};

#[derive(Template)]
#[template(path = "admin_result.html")]
struct ActionResultPage {
    email: String,
    title: &'static str,
    message: String,
    back: String,
}

fn answer(operator: &str, outcome: ActionOutcome, back: String) -> PageResult<Response> {
    let (status, title, message) = match outcome {
        ActionOutcome::Done(message) => (StatusCode::OK, "Done", message),
        ActionOutcome::AlreadyDone => (
            StatusCode::OK,
            "Already done",
            "This was already done (the form was sent twice, or another operator got there first). Nothing more was changed.".to_string(),
        ),
        ActionOutcome::Refused(message) => (StatusCode::UNPROCESSABLE_ENTITY, "Not done", message),
    };
    let page = ActionResultPage {
        email: operator.to_string(),
        title,
        message,
        back,
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn refused(operator: &str, message: String, back: String) -> PageResult<Response> {
    answer(operator, ActionOutcome::Refused(message), back)
}

async fn customer(state: &AppState, id: i64) -> PageResult<users::User> {
    users::by_id(&state.reads, id)
        .await?
        .ok_or(PageError::NotFound)
}

/// The fields every customer form has.
#[derive(Deserialize)]
pub struct CreditsFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    credits: String,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    reason: String,
}

/// What a form on a customer's page carries besides its own fields: the customer, the form's
/// one-time key and the reason. `Err` is the page that says what is missing (nothing changed).
struct CustomerAction<P> {
    customer: users::User,
    key: String,
    reason: Reason,
    fields: P,
}

impl<P> CustomerAction<P> {
    fn request(&self, operator_id: i64) -> OperatorRequest<'_> {
        OperatorRequest {
            operator_id,
            customer: &self.customer,
            key: &self.key,
            reason: &self.reason,
        }
    }
}

async fn customer_action<P>(
    state: &AppState,
    operator: &str,
    id: i64,
    (token, reason): (&str, &str),
    fields: impl FnOnce() -> Result<P, String>,
) -> PageResult<Result<CustomerAction<P>, Response>> {
    let customer = customer(state, id).await?;
    let parsed = (|| {
        let key = form_action_key(token).ok_or("The form is incomplete; reload the page.")?;
        let fields = fields()?;
        Ok::<_, String>((key, Reason::parse(reason)?, fields))
    })();
    Ok(match parsed {
        Ok((key, reason, fields)) => Ok(CustomerAction {
            customer,
            key,
            reason,
            fields,
        }),
        Err(message) => Err(refused(operator, message, back_to(id))?),
    })
}

fn back_to(customer: i64) -> String {
    format!("/admin/customers/{customer}")
}

pub async fn grant(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<CreditsFields>,
) -> PageResult<Response> {
    let fields = || {
        let credits = parse_credits(&form.credits)?;
        Ok((
            credits,
            PromoExpiry::parse(&form.expiry, chrono::Utc::now())?,
        ))
    };
    let action = match customer_action(
        &state,
        &operator.email,
        id,
        (&form.token, &form.reason),
        fields,
    )
    .await?
    {
        Ok(action) => action,
        Err(page) => return Ok(page),
    };
    let (credits, expiry) = action.fields;
    let outcome = grant_promotional(
        &state.services,
        &action.request(operator.id),
        credits,
        expiry,
    )
    .await?;
    answer(&operator.email, outcome, back_to(id))
}

pub async fn adjustment(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<CreditsFields>,
) -> PageResult<Response> {
    let fields = || {
        let credits = parse_credits(&form.credits)?;
        let direction = match form.direction.as_str() {
            "credit" => AdjustmentDirection::Credit,
            "debit" => AdjustmentDirection::Debit,
            _ => return Err("Choose whether to add or take credits.".to_string()),
        };
        Ok((credits, direction))
    };
    let action = match customer_action(
        &state,
        &operator.email,
        id,
        (&form.token, &form.reason),
        fields,
    )
    .await?
    {
        Ok(action) => action,
        Err(page) => return Ok(page),
    };
    let (credits, direction) = action.fields;
    let outcome = adjust(
        &state.services,
        &action.request(operator.id),
        credits,
        direction,
    )
    .await?;
    answer(&operator.email, outcome, back_to(id))
}

#[derive(Deserialize)]
pub struct ReasonFields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    amount: String,
}

/// An operator starts a refund of a customer's unused paid credits.
pub async fn refund_unused_credits(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonFields>,
) -> PageResult<Response> {
    let action = match customer_action(
        &state,
        &operator.email,
        id,
        (&form.token, &form.reason),
        || Ok(()),
    )
    .await?
    {
        Ok(action) => action,
        Err(page) => return Ok(page),
    };
    let outcome = refund_unused(
        &state.services,
        operator.id,
        &action.customer,
        RefundOrigin::Operator,
        &action.key,
        &action.reason,
    )
    .await?;
    answer(&operator.email, outcome, back_to(id))
}

/// Approves or declines a customer's refund request.
pub async fn decide_request(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path((id, decision)): Path<(i64, String)>,
    CsrfForm(form): CsrfForm<ReasonFields>,
) -> PageResult<Response> {
    let back = "/admin".to_string();
    let Some(request) = refund_requests::find(&state.reads, id).await? else {
        return Err(PageError::NotFound);
    };
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(message) => return refused(&operator.email, message, back),
    };
    let outcome = match decision.as_str() {
        "approve" => {
            let customer = customer(&state, request.user_id).await?;
            refund_unused(
                &state.services,
                operator.id,
                &customer,
                RefundOrigin::CustomerRequest(request.id),
                "",
                &reason,
            )
            .await?
        }
        "decline" => decline(&state.services, operator.id, request.id, &reason).await?,
        _ => return Err(PageError::NotFound),
    };
    answer(&operator.email, outcome, back)
}

/// Credits, refunds or dismisses a flagged top-up.
pub async fn resolve_flagged(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonFields>,
) -> PageResult<Response> {
    let back = "/admin".to_string();
    let parsed = (|| {
        let action = match form.action.as_str() {
            "credit" => FlagAction::CreditAsPromised,
            "dismiss" => FlagAction::Dismiss,
            "refund" if form.amount.trim().is_empty() => FlagAction::Refund(None),
            "refund" => FlagAction::Refund(Some(
                Paise::parse_rupees(&form.amount).map_err(|e| e.to_string())?,
            )),
            _ => return Err("Choose credit, refund or dismiss.".to_string()),
        };
        Ok::<_, String>((action, Reason::parse(&form.reason)?))
    })();
    let (action, reason) = match parsed {
        Ok(p) => p,
        Err(message) => return refused(&operator.email, message, back),
    };
    let outcome = resolve(&state.services, operator.id, id, action, &reason).await?;
    answer(&operator.email, outcome, back)
}

/// Accepts a refund's shortfall.
pub async fn accept_shortfall(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(refund_id): Path<String>,
    CsrfForm(form): CsrfForm<ReasonFields>,
) -> PageResult<Response> {
    with_reason(&operator.email, &form, async |reason| {
        acknowledge_shortfall(&state.services, operator.id, &refund_id, reason).await
    })
    .await
}

/// A Needs-attention form that carries only a reason: refused (nothing done) without a usable
/// one; otherwise done, and answered back to `/admin`.
async fn with_reason(
    operator: &str,
    form: &ReasonFields,
    act: impl AsyncFnOnce(&Reason) -> crate::services::ServiceResult<ActionOutcome>,
) -> PageResult<Response> {
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(message) => return refused(operator, message, "/admin".into()),
    };
    answer(operator, act(&reason).await?, "/admin".into())
}

/// Sends a parked email again.
pub async fn resend_email(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonFields>,
) -> PageResult<Response> {
    with_reason(&operator.email, &form, async |reason| {
        send_again(&state.services, operator.id, id, reason).await
    })
    .await
}
