//! `/admin/customers/{id}`: one customer as an operator needs to see them. The balance
//! (available and reserved, paid and promotional), lots with what is left and when they expire,
//! Credit History, top-ups with their Razorpay ids, refund requests and refunds of unused
//! credits, API key names (never the keys), the alert setting, the forms that act, and the
//! actions taken for this customer.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Response},
};

use crate::{
    operators::unused_credits,
    pages::{
        admin::{
            SignedInOperator, action_token,
            home::{ActionLine, log_lines},
        },
        error::{PageError, PageResult},
        forms::CsrfToken,
        views::{format_credits, format_micros, format_time, signed_credits},
    },
    state::AppState,
    store::{alerts, api_keys, credit_refunds, refund_requests, topups, users},
};

pub struct LotLine {
    pub source: &'static str,
    pub payment: String,
    pub original: String,
    pub remaining: String,
    pub held: String,
    pub expires: String,
}

pub struct TransferLine {
    pub date: String,
    pub kind: &'static str,
    pub memo: String,
    pub credits: String,
}

pub struct TopupLine {
    pub id: i64,
    pub date: String,
    pub amount: String,
    pub credits: String,
    pub status: &'static str,
    pub order: String,
    pub payment: String,
    pub refunded: String,
}

pub struct KeyLine {
    pub name: String,
    pub prefix: String,
    pub state: String,
}

pub struct UnusedRefundLine {
    pub date: String,
    pub payment: String,
    pub credits: String,
    pub amount: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "admin_customer.html")]
struct CustomerPage {
    email: String,
    csrf: String,
    token: String,
    customer_id: i64,
    customer: String,
    since: String,
    is_operator: bool,
    available: String,
    reserved: String,
    paid: String,
    promotional: String,
    can_take: String,
    lots: Vec<LotLine>,
    history: Vec<TransferLine>,
    topups: Vec<TopupLine>,
    keys: Vec<KeyLine>,
    alert: String,
    open_request: Option<i64>,
    requests: Vec<String>,
    refunds: Vec<UnusedRefundLine>,
    refundable: String,
    log: Vec<ActionLine>,
}

pub async fn customer_page(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> PageResult<Response> {
    let csrf = CsrfToken::for_request(&state.settings, &headers)?;
    let Some(customer) = users::by_id(&state.reads, id).await? else {
        return Err(PageError::NotFound);
    };
    // Lots as they are after drawing any pending debits, read once for the page and the quote.
    let lots = state.ledger.current_lots(customer.wallet).await?;
    let balance = state.ledger.balance(customer.wallet).await?;
    let by_source = |source: ledger::LotSource| -> i64 {
        lots.iter()
            .filter(|l| l.source == source)
            .map(|l| l.remaining)
            .sum()
    };
    let history = state
        .ledger
        .history(
            customer.wallet,
            &ledger::HistoryQuery {
                limit: 30,
                ..ledger::HistoryQuery::default()
            },
        )
        .await?;
    let quote = unused_credits::quote_from_lots(&state.services, &customer, &lots).await?;
    let alert = match alerts::setting(&state.reads, customer.id).await? {
        Some(a) if a.threshold > 0 => format!(
            "below {} credits ({})",
            format_credits(a.threshold),
            if a.armed {
                "armed"
            } else {
                "fired; re-arms when the balance is back"
            }
        ),
        _ => "off".to_string(),
    };
    let page = CustomerPage {
        email: operator.email,
        csrf: csrf.token.clone(),
        token: action_token()?,
        customer_id: customer.id,
        customer: customer.email.clone(),
        since: format_time(customer.created_at),
        is_operator: customer.is_operator,
        available: format_credits(balance.available),
        reserved: format_credits(balance.reserved),
        paid: format_credits(by_source(ledger::LotSource::Paid)),
        promotional: format_credits(by_source(ledger::LotSource::Promotional)),
        can_take: format_credits(balance.available),
        lots: lots
            .iter()
            .filter(|l| l.remaining > 0 || l.held > 0)
            .map(|l| LotLine {
                source: match l.source {
                    ledger::LotSource::Paid => "Paid",
                    ledger::LotSource::Promotional => "Promotional",
                },
                payment: l.payment_reference.clone().unwrap_or_default(),
                original: format_credits(l.original),
                remaining: format_credits(l.remaining),
                held: format_credits(l.held),
                expires: l
                    .expires_at
                    .map(format_time)
                    .unwrap_or_else(|| "never".into()),
            })
            .collect(),
        history: history
            .entries
            .iter()
            .map(|t| {
                let amount = t.signed_amount();
                TransferLine {
                    date: format_time(t.created_at),
                    kind: t.kind.as_str(),
                    memo: t
                        .memo
                        .clone()
                        .or_else(|| t.reference.clone())
                        .unwrap_or_default(),
                    credits: signed_credits(amount),
                }
            })
            .collect(),
        topups: topups::recent(&state.reads, customer.id, 50)
            .await?
            .iter()
            .map(|t| TopupLine {
                id: t.id,
                date: format_time(t.created_at),
                amount: t.amount.to_string(),
                credits: format_credits(t.credits),
                status: t.status.label(),
                order: t.order_id.clone().unwrap_or_default(),
                payment: t
                    .payment_id
                    .clone()
                    .or_else(|| t.flagged_payment_id.clone())
                    .unwrap_or_default(),
                refunded: if t.refunded_paise > 0 {
                    razorpay::Paise(t.refunded_paise).to_string()
                } else {
                    String::new()
                },
            })
            .collect(),
        keys: api_keys::of_user(&state.reads, customer.id)
            .await?
            .into_iter()
            .map(|k| KeyLine {
                name: k.name,
                prefix: k.prefix,
                state: match k.revoked_at {
                    Some(at) => format!("revoked {}", format_micros(at)),
                    None => "active".into(),
                },
            })
            .collect(),
        alert,
        open_request: refund_requests::open_of(&state.reads, customer.id)
            .await?
            .map(|r| r.id),
        requests: refund_requests::of_user(&state.reads, customer.id, 20)
            .await?
            .iter()
            .map(|r| {
                format!(
                    "#{} {}: {}",
                    r.id,
                    format_time(r.created_at),
                    r.status.label()
                )
            })
            .collect(),
        refunds: credit_refunds::of_user(&state.reads, customer.id, 50)
            .await?
            .into_iter()
            .map(|r| UnusedRefundLine {
                date: format_time(r.created_at),
                payment: r.payment_id,
                credits: format_credits(r.credits),
                amount: razorpay::Paise(r.amount_paise).to_string(),
                status: match (&r.refund_id, r.status) {
                    (Some(id), _) => format!("sent ({id})"),
                    (None, credit_refunds::CreditRefundStatus::Returned) => {
                        format!(
                            "refused by Razorpay, credits returned: {}",
                            r.last_error.unwrap_or_default()
                        )
                    }
                    (None, _) => "waiting for Razorpay".into(),
                },
            })
            .collect(),
        refundable: format!(
            "{} credits, {} to {} payment(s)",
            format_credits(quote.credits()),
            quote.amount(),
            quote.parts.len()
        ),
        log: log_lines(&state, Some(customer.id)).await?,
    };
    Ok(csrf.attach(Html(page.render()?).into_response()))
}
