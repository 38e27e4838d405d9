//! `POST /v1/orders`: an order, checked as Razorpay checks it (amount, currency, a receipt unique
//! per account, notes).

use razorpay::{
    Paise,
    wire::{Order, OrderStatus},
};
use serde_json::Value;

use super::{Gateway, OrderRecord, now};
use crate::{
    errors::GatewayError,
    ids,
    validation::{amount_field, as_object, notes_field, reject_unknown_fields},
};

const ORDER_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "receipt",
    "notes",
    "partial_payment",
    "first_payment_min_amount",
    "payment",
    "payment_capture",
];

impl Gateway {
    pub fn create_order(&mut self, body: &Value) -> Result<Order, GatewayError> {
        let body = as_object(body)?;
        reject_unknown_fields(body, ORDER_FIELDS)?;
        let amount = amount_field(body, "amount", true)?.unwrap_or_default();
        if amount.0 < 100 {
            return Err(
                GatewayError::bad_request("The amount must be at least INR 1.00").field("amount"),
            );
        }
        if amount.0 > 5_000_000_000 {
            return Err(
                GatewayError::bad_request("Amount exceeds maximum amount allowed.").field("amount"),
            );
        }
        let currency =
            match body.get("currency") {
                Some(Value::String(c)) => c.clone(),
                None | Some(Value::Null) => {
                    return Err(GatewayError::bad_request("The currency field is required.")
                        .field("currency"));
                }
                Some(_) => {
                    return Err(GatewayError::bad_request("The currency must be a string.")
                        .field("currency"));
                }
            };
        if currency != "INR" {
            return Err(GatewayError::bad_request("Currency is not supported").field("currency"));
        }
        let receipt = match body.get("receipt") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r.chars().count() <= 40 => Some(r.clone()),
            Some(Value::String(_)) => {
                return Err(GatewayError::bad_request(
                    "receipt: the length must be no more than 40.",
                )
                .field("receipt"));
            }
            Some(_) => {
                return Err(
                    GatewayError::bad_request("The receipt must be a string.").field("receipt")
                );
            }
        };
        // Razorpay: a receipt "has to be unique" within the account (api/orders/create.md).
        if let Some(r) = &receipt
            && self.receipts.contains(r)
        {
            return Err(GatewayError::bad_request(
                "An order with the same receipt value has already been created",
            )
            .field("receipt"));
        }
        let notes = notes_field(body)?;
        let manual_capture = match (body.get("payment"), body.get("payment_capture")) {
            (Some(Value::Object(p)), _) => match p.get("capture").and_then(Value::as_str) {
                Some("manual") => true,
                Some("automatic") | None => false,
                Some(_) => {
                    return Err(GatewayError::bad_request(
                        "The payment.capture must be automatic or manual.",
                    )
                    .field("payment"));
                }
            },
            (_, Some(Value::Bool(b))) => !b,
            (_, Some(Value::Number(n))) => n.as_i64() == Some(0),
            (_, Some(Value::String(s))) => s == "0" || s == "false",
            _ => false,
        };
        let order = Order {
            id: ids::new_id("order"),
            entity: "order".into(),
            amount,
            amount_paid: Paise(0),
            amount_due: amount,
            currency,
            receipt,
            offer_id: None,
            status: OrderStatus::Created,
            attempts: 0,
            notes,
            created_at: now(),
        };
        if let Some(r) = &order.receipt {
            self.receipts.insert(r.clone());
        }
        self.order_ids.push(order.id.clone());
        self.orders.insert(
            order.id.clone(),
            OrderRecord {
                order: order.clone(),
                manual_capture,
            },
        );
        Ok(order)
    }
}
