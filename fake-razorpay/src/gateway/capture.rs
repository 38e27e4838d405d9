//! Authorisation and capture: captured at once unless the order asks for manual capture, an
//! authorised payment nobody captured is returned after the capture window, late authorisation,
//! and a second payment on a paid order returned at once.

use razorpay::{
    Paise,
    wire::{
        AcquirerData, EventType, Notes, OrderStatus, Payment, PaymentStatus, Refund, RefundState,
        RefundStatus,
    },
};
use serde_json::Value;

use super::{Gateway, Identity, PendingEvent, clear_error, now};
use crate::{
    errors::GatewayError,
    ids,
    validation::{amount_field, as_object, reject_unknown_fields},
};

/// The fee Razorpay's sample shows (2 paise on 100, tax 0): 2 %, of which GST is 18/118.
fn fee_and_tax(amount: Paise) -> (Paise, Paise) {
    let fee = amount.0 * 2 / 100;
    (Paise(fee), Paise(fee * 18 / 118))
}

impl Gateway {
    /// Authorises a payment. Unless the capture is manual it is captured at once; on an order
    /// someone already paid, Razorpay refunds it at once instead (late-authorisation.md).
    pub(crate) fn authorize(
        &mut self,
        payment: &mut Payment,
        manual_capture: bool,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        self.authorize_with(payment, manual_capture, false, identity)
    }

    pub(crate) fn authorize_with(
        &mut self,
        payment: &mut Payment,
        manual_capture: bool,
        second_payment: bool,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        payment.status = PaymentStatus::Authorized;
        clear_error(payment);
        self.store(payment);
        let mut events =
            vec![self.event(identity, EventType::PaymentAuthorized, payment, None, None)];
        let order_id = payment.order_id.clone().unwrap_or_default();
        if self.order_is_paid(&order_id) && !second_payment {
            events.extend(self.refund_uncaptured(payment, identity));
        } else if !manual_capture {
            events.extend(self.capture_now(payment, identity));
        }
        events
    }

    pub(crate) fn capture_now(
        &mut self,
        payment: &mut Payment,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        let (fee, tax) = fee_and_tax(payment.amount);
        payment.status = PaymentStatus::Captured;
        payment.captured = true;
        payment.fee = Some(fee);
        payment.tax = Some(tax);
        self.store(payment);
        let order_id = payment.order_id.clone().unwrap_or_default();
        let order = self.orders.get_mut(&order_id).map(|record| {
            record.order.status = OrderStatus::Paid;
            record.order.amount_paid = payment.amount;
            record.order.amount_due = Paise(record.order.amount.0 - payment.amount.0).max(Paise(0));
            record.order.clone()
        });
        let mut events =
            vec![self.event(identity, EventType::PaymentCaptured, payment, None, None)];
        if let Some(order) = order {
            events.push(self.event(identity, EventType::OrderPaid, payment, Some(&order), None));
        }
        events
    }

    /// Razorpay returns an authorised payment nobody captured (its capture window passed, or
    /// its order was already paid): the payment is `refunded` without ever being captured.
    pub(crate) fn refund_uncaptured(
        &mut self,
        payment: &mut Payment,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        payment.status = PaymentStatus::Refunded;
        payment.amount_refunded = payment.amount;
        payment.refund_status = Some(RefundStatus::Full);
        self.store(payment);
        let refund = Refund {
            id: ids::new_id("rfnd"),
            entity: "refund".into(),
            amount: payment.amount,
            currency: payment.currency.clone(),
            payment_id: payment.id.clone(),
            notes: Notes::new(),
            receipt: None,
            acquirer_data: Some(AcquirerData::default()),
            created_at: now(),
            batch_id: None,
            status: RefundState::Processed,
            speed_processed: Some("normal".into()),
            speed_requested: Some("normal".into()),
        };
        self.refund_ids.push(refund.id.clone());
        self.refunds.insert(refund.id.clone(), refund.clone());
        vec![
            self.event(
                identity,
                EventType::RefundCreated,
                payment,
                None,
                Some(&refund),
            ),
            self.event(
                identity,
                EventType::RefundProcessed,
                payment,
                None,
                Some(&refund),
            ),
        ]
    }

    /// The end of a payment's capture window: still only authorised, it is returned.
    pub(crate) fn expire_capture_window(
        &mut self,
        payment_id: &str,
        identity: &Identity,
    ) -> Result<Vec<PendingEvent>, GatewayError> {
        let mut payment = self.payment(payment_id)?.clone();
        if payment.status != PaymentStatus::Authorized {
            return Ok(Vec::new());
        }
        Ok(self.refund_uncaptured(&mut payment, identity))
    }

    /// Late authorisation: a payment reported failed turns out authorised (then captured,
    /// left for a manual capture, or refunded at once when its order was paid meanwhile).
    pub(crate) fn late_authorize(
        &mut self,
        payment_id: &str,
        identity: &Identity,
    ) -> Result<(Payment, Vec<PendingEvent>), GatewayError> {
        let mut payment = self.payment(payment_id)?.clone();
        if payment.status != PaymentStatus::Failed {
            return Err(GatewayError::bad_request(
                "Only a failed payment can be authorised late.",
            ));
        }
        let order_id = payment.order_id.clone().unwrap_or_default();
        let record = self
            .orders
            .get(&order_id)
            .ok_or_else(GatewayError::not_found)?;
        let manual = record.manual_capture;
        let events = self.authorize(&mut payment, manual, identity);
        Ok((payment, events))
    }

    pub(crate) fn capture(
        &mut self,
        payment_id: &str,
        body: &Value,
        identity: &Identity,
    ) -> Result<(Payment, Vec<PendingEvent>), GatewayError> {
        let fields = as_object(body)?;
        reject_unknown_fields(fields, &["amount", "currency"])?;
        let amount = amount_field(fields, "amount", true)?.unwrap_or_default();
        if fields.get("currency").and_then(Value::as_str).is_none() {
            return Err(
                GatewayError::bad_request("The currency field is required.").field("currency")
            );
        }
        let mut payment = self.payment(payment_id)?.clone();
        match payment.status {
            PaymentStatus::Authorized => {}
            PaymentStatus::Captured => {
                return Err(
                    GatewayError::bad_request("This payment has already been captured")
                        .with_step("payment_capture"),
                );
            }
            PaymentStatus::Refunded if payment.captured => {
                return Err(
                    GatewayError::bad_request("This payment has already been captured")
                        .with_step("payment_capture"),
                );
            }
            PaymentStatus::Created | PaymentStatus::Failed | PaymentStatus::Refunded => {
                return Err(GatewayError::bad_request(
                    "Only payments which have been authorized and not yet captured can be captured",
                )
                .with_step("payment_capture"));
            }
        }
        if amount != payment.amount {
            return Err(GatewayError::bad_request(
                "Capture amount must be equal to the amount authorized",
            )
            .field("amount")
            .with_step("payment_capture"));
        }
        let events = self.capture_now(&mut payment, identity);
        Ok((payment, events))
    }
}
