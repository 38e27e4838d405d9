//! Refunds: answered `pending` first, then processed or failed; a payment's refunded share;
//! `X-Refund-Idempotency` keys that repeat a refund or refuse another body.

use razorpay::{
    Paise,
    wire::{AcquirerData, EventType, Payment, PaymentStatus, Refund, RefundState, RefundStatus},
};
use serde_json::Value;

use super::{Gateway, Identity, PendingEvent, RefundKey, now};
use crate::{
    errors::GatewayError,
    ids,
    validation::{amount_field, as_object, notes_field, reject_unknown_fields},
};

/// What a refund request made: the refund, its events, and whether it only repeated an earlier
/// request under the same idempotency key.
#[derive(Debug, Clone)]
pub struct RefundAttempt {
    pub refund: Refund,
    pub events: Vec<PendingEvent>,
    pub replayed: bool,
}

/// A payment's refund status from its refunded amount: partly, fully (then `refunded` when it
/// was captured), or not at all.
fn mark_refunded_share(payment: &mut Payment) {
    if payment.amount_refunded.0 <= 0 {
        payment.refund_status = None;
        if payment.captured {
            payment.status = PaymentStatus::Captured;
        }
    } else if payment.amount_refunded == payment.amount {
        payment.refund_status = Some(RefundStatus::Full);
        payment.status = PaymentStatus::Refunded;
    } else {
        payment.refund_status = Some(RefundStatus::Partial);
        if payment.captured {
            payment.status = PaymentStatus::Captured;
        }
    }
}

impl Gateway {
    /// A refund, full or partial. It is created `pending`, as normal-speed refunds are; see
    /// [`Gateway::settle_refund`] for its outcome. With an idempotency key, the same request
    /// answers the same refund and a different one under the same key is a 409.
    pub fn refund_payment(
        &mut self,
        payment_id: &str,
        body: &Value,
        idempotency_key: Option<&str>,
        identity: &Identity,
    ) -> Result<RefundAttempt, GatewayError> {
        if let Some(key) = idempotency_key {
            if key.len() < 10 {
                return Err(GatewayError::bad_request(
                    "The idempotency key must be at least 10 characters long.",
                ));
            }
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(GatewayError::bad_request(
                    "The idempotency key must only contain alphanumeric characters, underscores, and hyphens",
                ));
            }
            if let Some(previous) = self.refund_keys.get(key) {
                if &previous.body == body && previous.payment_id == payment_id {
                    let refund = self.refund(&previous.refund_id)?.clone();
                    return Ok(RefundAttempt {
                        refund,
                        events: Vec::new(),
                        replayed: true,
                    });
                }
                let mut e = GatewayError::bad_request(
                    "Different request with the same idempotency key has already been processed.",
                )
                .with_status(409);
                e.source = "NA";
                e.step = "NA";
                e.reason = "NA";
                return Err(e);
            }
        }
        let fields = as_object(body)?;
        reject_unknown_fields(fields, &["amount", "speed", "notes", "receipt"])?;
        let mut payment = self.payment(payment_id)?.clone();
        match payment.status {
            PaymentStatus::Captured => {}
            PaymentStatus::Refunded => {
                return Err(GatewayError::bad_request(
                    "The payment has been fully refunded already.",
                ));
            }
            _ => {
                return Err(GatewayError::bad_request(
                    "Only captured payments can be refunded",
                ));
            }
        }
        let refundable = payment.amount.0 - payment.amount_refunded.0;
        let amount = amount_field(fields, "amount", false)?.unwrap_or(Paise(refundable));
        if amount.0 < 100 {
            return Err(
                GatewayError::bad_request("The amount must be at least INR 1.00").field("amount"),
            );
        }
        if amount.0 > refundable {
            return Err(GatewayError::bad_request(
                "The refund amount provided is greater than amount captured.",
            )
            .field("amount"));
        }
        let speed = match fields.get("speed").and_then(Value::as_str) {
            None => "normal",
            Some(s @ ("normal" | "optimum")) => s,
            Some(_) => {
                return Err(
                    GatewayError::bad_request("The selected speed is invalid.").field("speed")
                );
            }
        };
        let notes = notes_field(fields)?;
        let refund = Refund {
            id: ids::new_id("rfnd"),
            entity: "refund".into(),
            amount,
            currency: payment.currency.clone(),
            payment_id: payment.id.clone(),
            notes,
            receipt: fields
                .get("receipt")
                .and_then(Value::as_str)
                .map(str::to_string),
            acquirer_data: Some(AcquirerData {
                arn: None,
                ..AcquirerData::default()
            }),
            created_at: now(),
            batch_id: None,
            status: RefundState::Pending,
            speed_processed: None,
            speed_requested: Some(speed.into()),
        };
        payment.amount_refunded = Paise(payment.amount_refunded.0 + amount.0);
        mark_refunded_share(&mut payment);
        self.store(&payment);
        self.refund_ids.push(refund.id.clone());
        self.refunds.insert(refund.id.clone(), refund.clone());
        if let Some(key) = idempotency_key {
            self.refund_keys.insert(
                key.to_string(),
                RefundKey {
                    refund_id: refund.id.clone(),
                    payment_id: payment.id.clone(),
                    body: body.clone(),
                },
            );
        }
        let events = vec![self.event(
            identity,
            EventType::RefundCreated,
            &payment,
            None,
            Some(&refund),
        )];
        Ok(RefundAttempt {
            refund,
            events,
            replayed: false,
        })
    }

    /// A pending refund's outcome: `processed`, or `failed` (the money stays with the merchant,
    /// so the payment's refunded amount goes back down).
    pub fn settle_refund(
        &mut self,
        refund_id: &str,
        outcome: RefundState,
        identity: &Identity,
    ) -> Result<(Refund, Vec<PendingEvent>), GatewayError> {
        let mut refund = self.refund(refund_id)?.clone();
        if refund.status != RefundState::Pending {
            return Err(GatewayError::bad_request(format!(
                "The refund is already {}.",
                match refund.status {
                    RefundState::Processed => "processed",
                    _ => "failed",
                }
            )));
        }
        let mut payment = self.payment(&refund.payment_id)?.clone();
        let event = match outcome {
            RefundState::Pending => return Ok((refund, Vec::new())),
            RefundState::Processed => {
                refund.status = RefundState::Processed;
                refund.speed_processed = Some("normal".into());
                EventType::RefundProcessed
            }
            RefundState::Failed => {
                refund.status = RefundState::Failed;
                payment.amount_refunded = Paise(payment.amount_refunded.0 - refund.amount.0);
                mark_refunded_share(&mut payment);
                self.store(&payment);
                EventType::RefundFailed
            }
        };
        self.refunds.insert(refund.id.clone(), refund.clone());
        let events = vec![self.event(identity, event, &payment, None, Some(&refund))];
        Ok((refund, events))
    }
}
