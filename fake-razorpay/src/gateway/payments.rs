//! A payment attempt on an order, from checkout or the control API, and the bank's late answer to
//! one left `created`.

use razorpay::{
    Paise,
    wire::{EventType, Notes, OrderStatus, Payment, PaymentStatus},
};

use super::{Attempt, Gateway, Identity, PendingAttempt, fail, now};
use crate::{
    callbacks::{failure_callback, success_callback},
    errors::GatewayError,
    ids,
    methods::{Failure, PayRequest},
    payment_details::{Prefill, describe},
};

/// How a payment attempt proceeds, from the faults and the order's capture setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct PayOptions {
    /// Report a success as failed first (late authorisation happens later).
    pub late: bool,
    /// Stop at `authorized`: someone must capture it (manual capture).
    pub manual_capture: bool,
    /// Leave the payment `created` until [`Gateway::resolve_pending`] (the bank has not answered).
    pub pending: bool,
    /// Accept it even on an order already paid or with a payment in progress: two attempts that
    /// both succeed at the bank (UPI collect and intent, say) leave two captured payments on one
    /// order, which Razorpay does not prevent every time.
    pub second_payment: bool,
}

/// What the bank reports when it never answered (Razorpay marks the payment failed after ~10
/// minutes).
pub const TIMED_OUT: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment was not completed on time.",
    source: "customer",
    step: "payment_authentication",
    reason: "payment_timed_out",
};

fn order_paid_error() -> GatewayError {
    let mut e = GatewayError::bad_request(
        "Your payment has been declined as the order is already paid. Please create a new order.",
    );
    e.reason = "order_already_paid";
    e
}

impl Gateway {
    /// Makes a payment on an order, as the checkout pages or the control API describe it.
    pub fn pay(
        &mut self,
        order_id: &str,
        request: &PayRequest,
        identity: &Identity,
        prefill: &Prefill,
        options: PayOptions,
    ) -> Result<Attempt, GatewayError> {
        let (manual_capture, amount, currency) = {
            let record = self.orders.get(order_id).ok_or_else(|| {
                GatewayError::bad_request("The id provided does not exist").field("order_id")
            })?;
            if record.order.status == OrderStatus::Paid && !options.second_payment {
                return Err(order_paid_error());
            }
            if !options.second_payment
                && self.payments().any(|p| {
                    p.order_id.as_deref() == Some(order_id) && p.status == PaymentStatus::Authorized
                })
            {
                return Err(GatewayError::bad_request(
                    "Payment processing for this order is already in progress.",
                ));
            }
            (
                record.manual_capture || options.manual_capture,
                record.order.amount,
                record.order.currency.clone(),
            )
        };
        let (method, details, result) = describe(request, amount)?;
        let payment = Payment {
            id: ids::new_id("pay"),
            entity: "payment".into(),
            amount,
            currency,
            status: PaymentStatus::Created,
            order_id: Some(order_id.to_string()),
            invoice_id: None,
            international: false,
            method,
            amount_refunded: Paise(0),
            refund_status: None,
            captured: false,
            description: None,
            card_id: details.card.as_ref().and_then(|c| c.id.clone()),
            card: details.card,
            bank: details.bank,
            wallet: details.wallet,
            vpa: details.vpa,
            upi: details.upi,
            email: Some(
                prefill
                    .email
                    .clone()
                    .unwrap_or_else(|| "void@razorpay.com".into()),
            ),
            contact: Some(
                prefill
                    .contact
                    .clone()
                    .unwrap_or_else(|| "+919999999999".into()),
            ),
            customer_id: None,
            token_id: None,
            notes: Notes::new(),
            fee: None,
            tax: None,
            error_code: None,
            error_description: None,
            error_source: None,
            error_step: None,
            error_reason: None,
            acquirer_data: details.acquirer,
            created_at: now(),
        };
        if let Some(record) = self.orders.get_mut(order_id) {
            record.order.attempts += 1;
            record.order.status = OrderStatus::Attempted;
        }
        if options.pending {
            // No bank answer yet: the payment stays `created`, with no webhook (Razorpay sends
            // none for `created`), until `resolve_pending`.
            self.store(&payment);
            self.pending.insert(
                payment.id.clone(),
                PendingAttempt {
                    result,
                    late: options.late,
                    manual_capture,
                },
            );
            return Ok(Attempt {
                payment,
                callback: None,
                events: Vec::new(),
            });
        }
        Ok(self.finish(
            payment,
            result,
            options.late,
            manual_capture,
            options.second_payment,
            identity,
        ))
    }

    /// The bank's answer to a payment attempt: failed, or authorised (and captured unless the
    /// capture is manual).
    fn finish(
        &mut self,
        mut payment: Payment,
        result: Result<(), Failure>,
        late: bool,
        manual_capture: bool,
        second_payment: bool,
        identity: &Identity,
    ) -> Attempt {
        let order_id = payment.order_id.clone().unwrap_or_default();
        let reported_failure = match (result, late) {
            (Err(failure), _) => Some(failure),
            (Ok(()), true) => Some(TIMED_OUT),
            (Ok(()), false) => None,
        };
        let mut events = Vec::new();
        let callback = match reported_failure {
            Some(failure) => {
                fail(&mut payment, &failure);
                self.store(&payment);
                events.push(self.event(identity, EventType::PaymentFailed, &payment, None, None));
                failure_callback(&failure, &payment, &order_id)
            }
            None => {
                events.extend(self.authorize_with(
                    &mut payment,
                    manual_capture,
                    second_payment,
                    identity,
                ));
                success_callback(&payment, &order_id, &identity.key_secret)
            }
        };
        Attempt {
            payment,
            callback: Some(callback),
            events,
        }
    }

    /// The bank answers a payment that was left `created`: with the attempt's own outcome, or
    /// (`timeout`) with none, so Razorpay marks it failed (`payment_timed_out`).
    pub fn resolve_pending(
        &mut self,
        payment_id: &str,
        timeout: bool,
        identity: &Identity,
    ) -> Result<Attempt, GatewayError> {
        let payment = self.payment(payment_id)?.clone();
        let pending = match (payment.status, self.pending.remove(payment_id)) {
            (PaymentStatus::Created, Some(pending)) => pending,
            _ => {
                return Err(GatewayError::bad_request(
                    "This payment is not waiting for its bank.",
                ));
            }
        };
        let result = if timeout {
            Err(TIMED_OUT)
        } else {
            pending.result
        };
        Ok(self.finish(
            payment,
            result,
            pending.late && !timeout,
            pending.manual_capture,
            false,
            identity,
        ))
    }
}

#[cfg(test)]
mod tests {
    use razorpay::wire::{EventType, OrderStatus, PaymentStatus};

    use super::*;

    fn identity() -> Identity {
        Identity {
            account_id: "acc_BFQ7uQEaa7j2z7".into(),
            key_secret: "secret".into(),
        }
    }

    #[test]
    fn a_successful_payment_is_captured_and_pays_the_order() {
        let mut gateway = Gateway::default();
        let order = gateway
            .create_order(&serde_json::json!({"amount": 10000, "currency": "INR"}))
            .expect("order");
        let upi = PayRequest::Upi {
            vpa: Some("success@razorpay".into()),
            qr: false,
        };
        let attempt = gateway
            .pay(
                &order.id,
                &upi,
                &identity(),
                &Prefill::default(),
                PayOptions::default(),
            )
            .expect("pay");
        assert_eq!(attempt.payment.status, PaymentStatus::Captured);
        let kinds: Vec<_> = attempt
            .events
            .iter()
            .map(|e| e.event.event.clone())
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventType::PaymentAuthorized,
                EventType::PaymentCaptured,
                EventType::OrderPaid
            ]
        );
        let order = gateway.order(&order.id).expect("order");
        assert_eq!(
            (order.status, order.attempts, order.amount_due),
            (OrderStatus::Paid, 1, Paise(0))
        );
        let again = gateway.pay(
            &order.id.clone(),
            &upi,
            &identity(),
            &Prefill::default(),
            PayOptions::default(),
        );
        assert_eq!(
            again.map(|_| ()).map_err(|e| e.reason),
            Err("order_already_paid")
        );
    }
}
