//! Refunding a customer's unused paid credits to the Razorpay payments they came from.
//!
//! - Newest lot first, one partial refund per payment, never more than that payment's captured
//!   amount minus what was already refunded, and never more than its lot has left.
//! - Credits are taken back when each refund is planned, in one transaction with the plan
//!   (`store::credit_refunds`), before Razorpay is asked: credits are never both spent and
//!   refunded. Only available credits are taken: what is reserved stays.
//! - Each refund has its own idempotency key (Razorpay's `X-Refund-Idempotency`, and the
//!   ledger's key for the take-back), so a retry is the same refund.
//! - Sending is `refund_sending`: Razorpay's answer links the plan to its refund
//!   (`take_back::link_planned`); a webhook that comes first links it by the key in the refund's
//!   notes. If Razorpay refuses it, the credits come back; if Razorpay cannot be reached,
//!   reconciliation sends it again.
//! - Promotional credits are never paid out.

use std::collections::HashMap;

use razorpay::Paise;

use crate::{
    operators::{
        ActionOutcome, Reason,
        refund_sending::{self, SendOutcome},
    },
    services::{ServiceError, ServiceResult, Services},
    store::{
        credit_refunds::{self, NewCreditRefund},
        operator_actions::{self, NewOperatorAction},
        refund_requests::{self, RefundRequestStatus},
        topups,
        users::User,
    },
};

/// What a refund of unused credits would pay out now, per payment, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuote {
    pub parts: Vec<QuotePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotePart {
    pub topup_id: i64,
    pub payment_id: String,
    pub credits: i64,
    pub amount: Paise,
}

impl RefundQuote {
    pub fn credits(&self) -> i64 {
        self.parts.iter().map(|p| p.credits).sum()
    }

    pub fn amount(&self) -> Paise {
        Paise(self.parts.iter().map(|p| p.amount.0).sum())
    }
}

/// Unused paid credits and what they are worth, newest lot first. Lots are read up to date
/// (`Ledger::current_lots`: a write only when debits are waiting to be drawn from them).
pub async fn quote(services: &Services, customer: &User) -> ServiceResult<RefundQuote> {
    let lots = services.ledger.current_lots(customer.wallet).await?;
    quote_from_lots(services, customer, &lots).await
}

/// [`quote`], from lots the caller has already read.
pub async fn quote_from_lots(
    services: &Services,
    customer: &User,
    lots: &[ledger::Lot],
) -> ServiceResult<RefundQuote> {
    let mut unused: HashMap<String, i64> = HashMap::new();
    for lot in lots
        .iter()
        .filter(|l| l.source == ledger::LotSource::Paid && l.remaining > 0)
    {
        if let Some(payment) = &lot.payment_reference {
            *unused.entry(payment.clone()).or_default() += lot.remaining;
        }
    }
    let mut parts = Vec::new();
    for topup in topups::paid_of_user(&services.reads, customer.id).await? {
        let Some(payment) = topup.payment_id.clone() else {
            continue;
        };
        if topup.paise_per_credit <= 0 {
            continue;
        }
        let left_paise = topup.amount.0 - topup.refunded_paise;
        let credits = unused
            .get(&payment)
            .copied()
            .unwrap_or(0)
            .min(left_paise / topup.paise_per_credit);
        if credits > 0 {
            parts.push(QuotePart {
                topup_id: topup.id,
                payment_id: payment,
                credits,
                amount: Paise(credits * topup.paise_per_credit),
            });
        }
    }
    Ok(RefundQuote { parts })
}

/// The key of one payment's part of a request: Razorpay's idempotency key (10–64 characters of
/// `A-Za-z0-9_-`) and, with a prefix, the ledger's.
fn part_key(request_id: i64, payment_id: &str) -> String {
    format!("kalp-credits-{request_id}-{payment_id}")
}

/// A customer asks from Billing; the request waits in Needs attention. False when one is open.
pub async fn request(services: &Services, customer_id: i64) -> ServiceResult<bool> {
    Ok(services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { refund_requests::open(writer, customer_id).await })
        })
        .await?)
}

/// An operator declines a customer's request.
pub async fn decline(
    services: &Services,
    operator_id: i64,
    request_id: i64,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let Some(request) = refund_requests::find(&services.reads, request_id).await? else {
        return Ok(ActionOutcome::Refused("No such request.".into()));
    };
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                if !refund_requests::decide(
                    tx,
                    request.id,
                    RefundRequestStatus::Declined,
                    operator_id,
                )
                .await?
                {
                    return Ok(ActionOutcome::AlreadyDone);
                }
                operator_actions::record(
                    tx,
                    NewOperatorAction {
                        key: &format!("resolve:refund-request:{}", request.id),
                        operator_id,
                        customer_id: Some(request.user_id),
                        action: "decline_refund_request",
                        detail: &format!("declined refund request #{}", request.id),
                        reason: reason.as_str(),
                    },
                )
                .await?;
                Ok(ActionOutcome::Done(format!(
                    "Request #{} declined.",
                    request.id
                )))
            })
        })
        .await
}

/// Which request a refund answers: the customer's open one, or one the operator starts now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOrigin {
    CustomerRequest(i64),
    /// `key`: the operator's form.
    Operator,
}

/// Approves a request (or starts one) and refunds what is unused now.
pub async fn refund_unused(
    services: &Services,
    operator_id: i64,
    customer: &User,
    origin: RefundOrigin,
    action_key: &str,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let quote = quote(services, customer).await?;
    let detail = format!(
        "refund of unused credits: {} credits, {} to {} payment(s)",
        quote.credits(),
        quote.amount(),
        quote.parts.len()
    );
    let (quote_ref, detail) = (&quote, detail.as_str());
    let planned = services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let request_id = match origin {
                    RefundOrigin::CustomerRequest(id) => {
                        if !refund_requests::decide(
                            tx,
                            id,
                            RefundRequestStatus::Approved,
                            operator_id,
                        )
                        .await?
                        {
                            return Ok(None);
                        }
                        id
                    }
                    RefundOrigin::Operator => {
                        refund_requests::approved_by_operator(tx, customer.id, operator_id).await?
                    }
                };
                let key = match origin {
                    RefundOrigin::CustomerRequest(id) => format!("resolve:refund-request:{id}"),
                    RefundOrigin::Operator => action_key.to_string(),
                };
                let Some(action) = operator_actions::record(
                    tx,
                    NewOperatorAction {
                        key: &key,
                        operator_id,
                        customer_id: Some(customer.id),
                        action: "refund_unused",
                        detail,
                        reason: reason.as_str(),
                    },
                )
                .await?
                else {
                    return Ok(None);
                };
                let mut plans = Vec::new();
                for part in &quote_ref.parts {
                    let topup = topups::lock(tx, part.topup_id).await?;
                    // Under the lock, against what is refunded now.
                    let left = (topup.amount.0 - topup.refunded_paise) / topup.paise_per_credit;
                    let max = part.credits.min(left);
                    if max <= 0 {
                        continue;
                    }
                    let key = part_key(request_id, &part.payment_id);
                    let taken = tx
                        .take_back_paid(&ledger::TakeBack {
                            wallet: customer.wallet,
                            max: ledger::Credits::new(max)?,
                            key: ledger::IdempotencyKey::new(format!("unused:{key}"))?,
                            reference: Some(part.payment_id.clone()),
                            memo: Some(format!(
                                "Refund of unused credits (request #{request_id}, top-up #{})",
                                topup.id
                            )),
                        })
                        .await?;
                    let Some(receipt) = taken else { continue };
                    let credits = receipt.transfer.amount;
                    credit_refunds::plan(
                        tx,
                        NewCreditRefund {
                            key: &key,
                            request_id: Some(request_id),
                            user_id: customer.id,
                            topup_id: topup.id,
                            payment_id: &part.payment_id,
                            credits,
                            amount_paise: credits * topup.paise_per_credit,
                            transfer_id: receipt.transfer.id.0,
                        },
                    )
                    .await?;
                    plans.push((key, credits, credits * topup.paise_per_credit));
                }
                Ok::<_, ServiceError>(Some((action, request_id, plans)))
            })
        })
        .await?;
    let Some((action, request_id, plans)) = planned else {
        return Ok(ActionOutcome::AlreadyDone);
    };
    if plans.is_empty() {
        return Ok(ActionOutcome::Done(format!(
            "Request #{request_id} approved: there were no unused paid credits to refund."
        )));
    }
    let taken: i64 = plans.iter().map(|(_, credits, _)| credits).sum();
    let paise: i64 = plans.iter().map(|(_, _, paise)| paise).sum();
    let (mut sent, mut waiting, mut refused) = (Vec::new(), 0, 0);
    for (key, _, _) in &plans {
        match refund_sending::send(services, key).await? {
            SendOutcome::Sent(refund_id) => sent.push(refund_id),
            SendOutcome::TryAgain => waiting += 1,
            SendOutcome::Refused => refused += 1,
        }
    }
    let first = sent.first().map(String::as_str);
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { operator_actions::caused(writer, action, None, first).await })
        })
        .await?;
    let mut message = format!(
        "Request #{request_id}: {} credits ({}) taken back; {} refund(s) created with Razorpay",
        crate::billing::amount::group_credits(taken),
        Paise(paise).display_inr(),
        sent.len(),
    );
    if refused > 0 {
        message.push_str(&format!(
            ", {refused} refused by Razorpay (their credits were returned)"
        ));
    }
    if waiting > 0 {
        message.push_str(&format!(
            ", {waiting} to be sent again when Razorpay answers"
        ));
    }
    message.push('.');
    Ok(ActionOutcome::Done(message))
}
