//! Razorpay's state machines, in memory: orders (created → attempted → paid), payments
//! (created → authorized → captured → refunded, or failed, and late authorisation), refunds.
//! Pure functions over [`Gateway`]; the HTTP layers only translate.
//!
//! - `orders`: creating an order;
//! - `payments`: an attempt, and the bank's late answer;
//! - `capture`: authorisation, capture (ours or the merchant's), the capture window, late
//!   authorisation;
//! - `refunds`: refunds and their outcome.

pub(crate) mod capture;
pub(crate) mod orders;
pub(crate) mod payments;
pub(crate) mod refunds;

use std::collections::{HashMap, HashSet};

use razorpay::wire::{
    EventPayload, EventType, Order, OrderStatus, Payment, PaymentStatus, Refund, WebhookEvent,
    Wrapped,
};
use serde_json::Value;

use crate::{
    callbacks::CallbackFields, errors::GatewayError, ids, methods::Failure, validation::check_id,
};

/// A webhook event waiting to be sent: its id stays the same on every retry.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: String,
    pub event: WebhookEvent,
}

/// The result of a payment attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub payment: Payment,
    /// None while the bank has not answered.
    pub callback: Option<CallbackFields>,
    pub events: Vec<PendingEvent>,
}

#[derive(Debug, Clone)]
pub(crate) struct OrderRecord {
    pub(crate) order: Order,
    pub(crate) manual_capture: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RefundKey {
    pub(crate) refund_id: String,
    pub(crate) payment_id: String,
    pub(crate) body: Value,
}

/// Settings that shape what the state machine produces.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub key_secret: razorpay::Secret,
}

/// Razorpay's account as the fake keeps it: orders, payments and refunds, and the rules that move
/// them from state to state.
#[derive(Debug, Default)]
pub struct Gateway {
    pub(crate) orders: HashMap<String, OrderRecord>,
    /// Receipts of every order: Razorpay keeps them unique per account.
    receipts: HashSet<String>,
    /// Payments left `created` until their bank answers.
    pending: HashMap<String, PendingAttempt>,
    order_ids: Vec<String>,
    payments: HashMap<String, Payment>,
    payment_ids: Vec<String>,
    refunds: HashMap<String, Refund>,
    refund_ids: Vec<String>,
    refund_keys: HashMap<String, RefundKey>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A payment waiting for its bank: what the bank will say once it answers.
#[derive(Debug, Clone)]
pub(crate) struct PendingAttempt {
    pub(crate) result: Result<(), Failure>,
    pub(crate) late: bool,
    pub(crate) manual_capture: bool,
}

pub(super) fn fail(payment: &mut Payment, failure: &Failure) {
    payment.status = PaymentStatus::Failed;
    payment.error_code = Some(failure.code.into());
    payment.error_description = Some(failure.description.into());
    payment.error_source = Some(failure.source.into());
    payment.error_step = Some(failure.step.into());
    payment.error_reason = Some(failure.reason.into());
}

pub(super) fn clear_error(payment: &mut Payment) {
    payment.error_code = None;
    payment.error_description = None;
    payment.error_source = None;
    payment.error_step = None;
    payment.error_reason = None;
}

impl Gateway {
    pub fn order(&self, id: &str) -> Result<&Order, GatewayError> {
        check_id(id, "order")?;
        self.orders
            .get(id)
            .map(|r| &r.order)
            .ok_or_else(GatewayError::not_found)
    }

    pub fn orders(&self) -> impl DoubleEndedIterator<Item = &Order> {
        self.order_ids
            .iter()
            .filter_map(|id| self.orders.get(id).map(|r| &r.order))
    }

    pub fn payment(&self, id: &str) -> Result<&Payment, GatewayError> {
        check_id(id, "pay")?;
        self.payments.get(id).ok_or_else(GatewayError::not_found)
    }

    pub fn payments(&self) -> impl DoubleEndedIterator<Item = &Payment> {
        self.payment_ids
            .iter()
            .filter_map(|id| self.payments.get(id))
    }

    pub fn order_payments(&self, order_id: &str) -> Result<Vec<Payment>, GatewayError> {
        self.order(order_id)?;
        Ok(self
            .payments()
            .filter(|p| p.order_id.as_deref() == Some(order_id))
            .cloned()
            .collect())
    }

    pub fn refund(&self, id: &str) -> Result<&Refund, GatewayError> {
        check_id(id, "rfnd")?;
        self.refunds.get(id).ok_or_else(GatewayError::not_found)
    }

    pub fn refunds(&self) -> impl DoubleEndedIterator<Item = &Refund> {
        self.refund_ids.iter().filter_map(|id| self.refunds.get(id))
    }

    /// True while the order is `paid` (no further payment may start on it).
    pub(crate) fn order_is_paid(&self, order_id: &str) -> bool {
        self.orders
            .get(order_id)
            .is_some_and(|r| r.order.status == OrderStatus::Paid)
    }

    pub(crate) fn store(&mut self, payment: &Payment) {
        if !self.payments.contains_key(&payment.id) {
            self.payment_ids.push(payment.id.clone());
        }
        self.payments.insert(payment.id.clone(), payment.clone());
    }

    pub(crate) fn event(
        &self,
        identity: &Identity,
        kind: EventType,
        payment: &Payment,
        order: Option<&Order>,
        refund: Option<&Refund>,
    ) -> PendingEvent {
        let mut contains = Vec::new();
        if refund.is_some() {
            contains.push("refund".to_string());
        }
        contains.push("payment".to_string());
        if order.is_some() {
            contains.push("order".to_string());
        }
        PendingEvent {
            id: ids::token(),
            event: WebhookEvent {
                entity: "event".into(),
                account_id: Some(identity.account_id.clone()),
                event: kind,
                contains,
                payload: EventPayload {
                    payment: Some(Wrapped {
                        entity: payment.clone(),
                    }),
                    order: order.map(|o| Wrapped { entity: o.clone() }),
                    refund: refund.map(|r| Wrapped { entity: r.clone() }),
                },
                created_at: now(),
            },
        }
    }
}
