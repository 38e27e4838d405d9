//! `/admin`: find a customer, Needs attention (each item with its facts side by side and its
//! actions), and the log of operator actions, filterable by customer.

use std::collections::HashMap;

use askama::Template;
use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    operators::attention,
    pages::{
        admin::SignedInOperator,
        error::PageResult,
        forms::CsrfToken,
        views::{format_credits, format_micros, format_time},
    },
    state::AppState,
    store::{operator_actions, payments, topups, users},
};

/// A flagged top-up: what we expected beside what Razorpay says.
pub struct FlaggedItem {
    pub id: i64,
    pub customer_id: i64,
    pub customer: String,
    pub reason: String,
    pub expected: String,
    pub order: String,
    pub payment: String,
    pub razorpay_says: String,
}

pub struct ShortfallItem {
    pub refund_id: String,
    pub payment_id: String,
    pub topup_id: i64,
    pub amount: String,
    pub shortfall: String,
}

pub struct DuplicateItem {
    pub payment_id: String,
    pub topup_id: i64,
    pub amount: String,
    pub attempts: i64,
}

pub struct UnsentRefundItem {
    pub customer_id: i64,
    pub payment_id: String,
    pub credits: String,
    pub amount: String,
    pub error: String,
}

pub struct ParkedEmailItem {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub written: String,
    pub attempts: i64,
    pub error: String,
}

pub struct RequestItem {
    pub id: i64,
    pub customer_id: i64,
    pub customer: String,
    pub asked: String,
    pub refundable: String,
}

pub struct ActionLine {
    pub at: String,
    pub operator: String,
    pub customer_id: Option<i64>,
    pub customer: String,
    pub detail: String,
    pub reason: String,
    pub caused: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminHome {
    email: String,
    csrf: String,
    query: String,
    not_found: bool,
    flagged: Vec<FlaggedItem>,
    shortfalls: Vec<ShortfallItem>,
    duplicates: Vec<DuplicateItem>,
    unsent: Vec<UnsentRefundItem>,
    parked_emails: Vec<ParkedEmailItem>,
    requests: Vec<RequestItem>,
    nothing_to_do: bool,
    /// The latest audit: when, and its differences.
    audit_ran: Option<String>,
    audit_differences: Vec<String>,
    log: Vec<ActionLine>,
    log_customer: Option<String>,
}

#[derive(Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    customer: Option<i64>,
    #[serde(default)]
    q: Option<String>,
}

/// Emails of accounts by id, for the lists (one lookup each; the lists are short).
async fn emails(
    state: &AppState,
    ids: impl Iterator<Item = i64>,
) -> PageResult<HashMap<i64, String>> {
    let mut found = HashMap::new();
    for id in ids {
        if let std::collections::hash_map::Entry::Vacant(slot) = found.entry(id)
            && let Some(user) = users::by_id(&state.reads, id).await?
        {
            slot.insert(user.email);
        }
    }
    Ok(found)
}

/// The action log's lines.
pub async fn log_lines(state: &AppState, customer: Option<i64>) -> PageResult<Vec<ActionLine>> {
    let actions = operator_actions::newest(&state.reads, customer, 100).await?;
    let who = emails(
        state,
        actions
            .iter()
            .flat_map(|a| std::iter::once(a.operator_id).chain(a.customer_id)),
    )
    .await?;
    Ok(actions
        .into_iter()
        .map(|a| ActionLine {
            at: format_time(a.created_at),
            operator: who.get(&a.operator_id).cloned().unwrap_or_default(),
            customer_id: a.customer_id,
            customer: a
                .customer_id
                .and_then(|c| who.get(&c).cloned())
                .unwrap_or_default(),
            detail: a.detail,
            reason: a.reason,
            caused: match (a.transfer_id, a.razorpay_refund_id) {
                (Some(t), _) => format!("transfer {t}"),
                (None, Some(r)) => format!("Razorpay {r}"),
                (None, None) => String::new(),
            },
        })
        .collect())
}

pub async fn home(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    headers: HeaderMap,
    Query(query): Query<HomeQuery>,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
        && let Some(customer) = find_customer(&state, q).await?
    {
        return Ok(Redirect::to(&format!("/admin/customers/{customer}")).into_response());
    }
    let needs = attention::gather(&state.services).await?;
    let mut ids: Vec<i64> = needs.flagged.iter().map(|t| t.user_id).collect();
    ids.extend(needs.refund_requests.iter().map(|r| r.user_id));
    let who = emails(&state, ids.into_iter()).await?;
    let mut flagged = Vec::new();
    for t in &needs.flagged {
        let razorpay_says = match &t.flagged_payment_id {
            None => "no payment".to_string(),
            Some(p) => match state.razorpay.fetch_payment(p).await {
                Ok(p) => format!(
                    "{:?}, {} {}, order {}, {} refunded",
                    p.status,
                    p.amount,
                    p.currency,
                    p.order_id.as_deref().unwrap_or("none"),
                    p.amount_refunded
                ),
                Err(e) => format!("could not ask Razorpay: {e}"),
            },
        };
        flagged.push(FlaggedItem {
            id: t.id,
            customer_id: t.user_id,
            customer: who.get(&t.user_id).cloned().unwrap_or_default(),
            reason: t.flag_reason.clone().unwrap_or_default(),
            expected: format!("{} for {} credits", t.amount, format_credits(t.credits)),
            order: t.order_id.clone().unwrap_or_default(),
            payment: t.flagged_payment_id.clone().unwrap_or_default(),
            razorpay_says,
        });
    }
    let mut requests = Vec::new();
    for r in &needs.refund_requests {
        let refundable = match users::by_id(&state.reads, r.user_id).await? {
            Some(customer) => {
                let quote =
                    crate::operators::unused_credits::quote(&state.services, &customer).await?;
                format!(
                    "{} credits, {} to {} payment(s)",
                    format_credits(quote.credits()),
                    quote.amount(),
                    quote.parts.len()
                )
            }
            None => String::new(),
        };
        requests.push(RequestItem {
            id: r.id,
            customer_id: r.user_id,
            customer: who.get(&r.user_id).cloned().unwrap_or_default(),
            asked: format_time(r.created_at),
            refundable,
        });
    }
    let log_customer = match query.customer {
        Some(id) => users::by_id(&state.reads, id).await?.map(|u| u.email),
        None => None,
    };
    let nothing_to_do = needs.is_empty();
    let (audit_ran, audit_differences) = match &needs.audit {
        Some(run) => (
            Some(format!(
                "{} (last {} days)",
                format_time(run.ran_at),
                run.days
            )),
            run.differences.clone(),
        ),
        None => (None, Vec::new()),
    };
    let page = AdminHome {
        email: operator.email,
        csrf: csrf.token.clone(),
        query: query
            .q
            .clone()
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect(),
        not_found: query.q.as_deref().is_some_and(|q| !q.trim().is_empty()),
        flagged,
        shortfalls: needs
            .shortfalls
            .iter()
            .map(|r| ShortfallItem {
                refund_id: r.refund_id.clone(),
                payment_id: r.payment_id.clone(),
                topup_id: r.topup_id,
                amount: razorpay::Paise(r.amount_paise).to_string(),
                shortfall: format_credits(r.shortfall),
            })
            .collect(),
        duplicates: needs
            .unrefunded_duplicates
            .iter()
            .map(|p| DuplicateItem {
                payment_id: p.payment_id.clone(),
                topup_id: p.topup_id,
                amount: p.amount.to_string(),
                attempts: p.refund_attempts,
            })
            .collect(),
        unsent: needs
            .unsent_refunds
            .iter()
            .map(|r| UnsentRefundItem {
                customer_id: r.user_id,
                payment_id: r.payment_id.clone(),
                credits: format_credits(r.credits),
                amount: razorpay::Paise(r.amount_paise).to_string(),
                error: r.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        parked_emails: needs
            .parked_emails
            .iter()
            .map(|e| ParkedEmailItem {
                id: e.id,
                recipient: e.recipient.clone(),
                subject: e.subject.clone(),
                written: format_micros(e.created_at),
                attempts: e.attempts,
                error: e.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        requests,
        nothing_to_do,
        audit_ran,
        audit_differences,
        log: log_lines(&state, query.customer).await?,
        log_customer,
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}

/// A customer by email, top-up id (`12` or `#12`), Razorpay order id or payment id.
async fn find_customer(state: &AppState, q: &str) -> PageResult<Option<i64>> {
    let reads = &state.reads;
    if q.contains('@') {
        let email = q.to_ascii_lowercase();
        return Ok(users::by_email(reads, &email).await?.map(|u| u.id));
    }
    if let Ok(id) = q.trim_start_matches('#').parse::<i64>() {
        return Ok(topups::find(reads, id).await?.map(|t| t.user_id));
    }
    if q.starts_with("order_") {
        return Ok(topups::find_by_order(reads, q).await?.map(|t| t.user_id));
    }
    if q.starts_with("pay_") {
        if let Some(t) = topups::find_by_payment(reads, q).await? {
            return Ok(Some(t.user_id));
        }
        if let Some(t) = topups::find_by_flagged_payment(reads, q).await? {
            return Ok(Some(t.user_id));
        }
        if let Some(p) = payments::find(reads, q).await? {
            return Ok(topups::find(reads, p.topup_id).await?.map(|t| t.user_id));
        }
    }
    Ok(None)
}
