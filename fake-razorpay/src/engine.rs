//! Razorpay's state machines, in memory: orders (created → attempted → paid), payments
//! (created → authorized → captured → refunded, or failed, and late authorisation), refunds.
//! Pure functions over [`State`]; the HTTP layers only translate.

use std::collections::HashMap;

use razorpay::{
    Paise,
    wire::{
        AcquirerData, Card, EventPayload, EventType, Notes, Order, OrderStatus, Payment,
        PaymentMethod, PaymentStatus, Refund, RefundState, RefundStatus, Upi, WebhookEvent,
        Wrapped,
    },
};
use serde_json::{Map, Value};

use crate::{
    ids,
    methods::{self, Failure, Outcome, PayRequest},
};

/// An error in Razorpay's envelope, with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub description: String,
    pub field: Option<String>,
    pub source: &'static str,
    pub step: &'static str,
    pub reason: &'static str,
}

impl ApiError {
    pub fn bad_request(description: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: "BAD_REQUEST_ERROR",
            description: description.into(),
            field: None,
            source: "business",
            step: "payment_initiation",
            reason: "input_validation_failed",
        }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.field = Some(field.to_string());
        self
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn not_found() -> Self {
        ApiError::bad_request("The id provided does not exist")
    }

    pub fn server_error() -> Self {
        ApiError {
            status: 500,
            code: "SERVER_ERROR",
            description:
                "The server encountered an error. The incident has been reported to admins.".into(),
            field: None,
            source: "internal",
            step: "NA",
            reason: "server_error",
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"error": {
            "code": self.code,
            "description": self.description,
            "source": self.source,
            "step": self.step,
            "reason": self.reason,
            "metadata": {},
            "field": self.field,
        }})
    }
}

/// A webhook event waiting to be sent: its id stays the same on every retry.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: String,
    pub event: WebhookEvent,
}

/// What a payment attempt reports back to the browser (the fields checkout POSTs to the
/// merchant's `callback_url`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum CallbackFields {
    Success {
        razorpay_payment_id: String,
        razorpay_order_id: String,
        razorpay_signature: String,
    },
    Failure {
        #[serde(rename = "error[code]")]
        code: String,
        #[serde(rename = "error[description]")]
        description: String,
        #[serde(rename = "error[source]")]
        source: String,
        #[serde(rename = "error[step]")]
        step: String,
        #[serde(rename = "error[reason]")]
        reason: String,
        /// A JSON string, as Razorpay sends it.
        #[serde(rename = "error[metadata]")]
        metadata: String,
    },
}

impl CallbackFields {
    pub fn pairs(&self) -> Vec<(String, String)> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The result of a payment attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub payment: Payment,
    pub callback: CallbackFields,
    pub events: Vec<PendingEvent>,
}

#[derive(Debug, Clone)]
struct OrderRecord {
    order: Order,
    manual_capture: bool,
}

#[derive(Debug, Clone)]
struct RefundKey {
    refund_id: String,
    body: Value,
}

/// Settings that shape what the state machine produces.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: String,
    pub key_secret: razorpay::Secret,
}

#[derive(Debug, Default)]
pub struct Ledger {
    orders: HashMap<String, OrderRecord>,
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

/// The fee Razorpay's sample shows (2 paise on 100, tax 0): 2 %, of which GST is 18/118.
fn fee_and_tax(amount: Paise) -> (Paise, Paise) {
    let fee = amount.0 * 2 / 100;
    (Paise(fee), Paise(fee * 18 / 118))
}

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

fn reject_unknown_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(ApiError::bad_request(format!(
            "{extra} is/are not required and should not be sent"
        ))
        .field(extra)),
        None => Ok(()),
    }
}

/// An integer amount, or an integer in a string; floats and anything else are refused.
fn amount_field(
    body: &Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<Paise>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) if required => {
            Err(ApiError::bad_request(format!("The {name} field is required.")).field(name))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(|v| Some(Paise(v))).ok_or_else(|| {
            ApiError::bad_request(format!("The {name} must be an integer.")).field(name)
        }),
        Some(Value::String(s)) => s.parse::<i64>().map(|v| Some(Paise(v))).map_err(|_| {
            ApiError::bad_request(format!("The {name} must be an integer.")).field(name)
        }),
        Some(_) => {
            Err(ApiError::bad_request(format!("The {name} must be an integer.")).field(name))
        }
    }
}

fn notes_field(body: &Map<String, Value>) -> Result<Notes, ApiError> {
    let notes = match body.get("notes") {
        None | Some(Value::Null) => return Ok(Notes::new()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(Notes::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("The notes must be an array.").field("notes")),
    };
    if notes.len() > 15 {
        return Err(ApiError::bad_request(
            "Number of notes fields should be less than or equal to 15",
        )
        .field("notes"));
    }
    let mut out = Notes::new();
    for (k, v) in notes {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(
                    ApiError::bad_request("The notes values must be strings.").field("notes")
                );
            }
        };
        if v.chars().count() > 256 || k.chars().count() > 256 {
            return Err(
                ApiError::bad_request("Notes value must be less than 256 characters.")
                    .field("notes"),
            );
        }
        out = out.with(k.clone(), v);
    }
    Ok(out)
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object."))
}

impl Ledger {
    pub fn create_order(&mut self, body: &Value) -> Result<Order, ApiError> {
        let body = as_object(body)?;
        reject_unknown_fields(body, ORDER_FIELDS)?;
        let amount = amount_field(body, "amount", true)?.unwrap_or_default();
        if amount.0 < 100 {
            return Err(
                ApiError::bad_request("The amount must be at least INR 1.00").field("amount"),
            );
        }
        if amount.0 > 5_000_000_000 {
            return Err(
                ApiError::bad_request("Amount exceeds maximum amount allowed.").field("amount"),
            );
        }
        let currency = match body.get("currency") {
            Some(Value::String(c)) => c.clone(),
            None | Some(Value::Null) => {
                return Err(
                    ApiError::bad_request("The currency field is required.").field("currency")
                );
            }
            Some(_) => {
                return Err(
                    ApiError::bad_request("The currency must be a string.").field("currency")
                );
            }
        };
        if currency != "INR" {
            return Err(ApiError::bad_request("Currency is not supported").field("currency"));
        }
        let receipt = match body.get("receipt") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r.chars().count() <= 40 => Some(r.clone()),
            Some(Value::String(_)) => {
                return Err(ApiError::bad_request(
                    "The receipt may not be greater than 40 characters.",
                )
                .field("receipt"));
            }
            Some(_) => {
                return Err(ApiError::bad_request("The receipt must be a string.").field("receipt"));
            }
        };
        let notes = notes_field(body)?;
        let manual_capture = match (body.get("payment"), body.get("payment_capture")) {
            (Some(Value::Object(p)), _) => match p.get("capture").and_then(Value::as_str) {
                Some("manual") => true,
                Some("automatic") | None => false,
                Some(_) => {
                    return Err(ApiError::bad_request(
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

    pub fn order(&self, id: &str) -> Result<&Order, ApiError> {
        check_id(id, "order")?;
        self.orders
            .get(id)
            .map(|r| &r.order)
            .ok_or_else(ApiError::not_found)
    }

    pub fn orders(&self) -> impl DoubleEndedIterator<Item = &Order> {
        self.order_ids
            .iter()
            .filter_map(|id| self.orders.get(id).map(|r| &r.order))
    }

    pub fn payment(&self, id: &str) -> Result<&Payment, ApiError> {
        check_id(id, "pay")?;
        self.payments.get(id).ok_or_else(ApiError::not_found)
    }

    pub fn payments(&self) -> impl DoubleEndedIterator<Item = &Payment> {
        self.payment_ids
            .iter()
            .filter_map(|id| self.payments.get(id))
    }

    pub fn order_payments(&self, order_id: &str) -> Result<Vec<Payment>, ApiError> {
        self.order(order_id)?;
        Ok(self
            .payments()
            .filter(|p| p.order_id.as_deref() == Some(order_id))
            .cloned()
            .collect())
    }

    pub fn refund(&self, id: &str) -> Result<&Refund, ApiError> {
        check_id(id, "rfnd")?;
        self.refunds.get(id).ok_or_else(ApiError::not_found)
    }

    pub fn refunds(&self) -> impl DoubleEndedIterator<Item = &Refund> {
        self.refund_ids.iter().filter_map(|id| self.refunds.get(id))
    }

    /// Makes a payment on an order, as the checkout pages or the control API describe it.
    /// `late` reports a success as failed first (late authorisation happens later).
    pub fn pay(
        &mut self,
        order_id: &str,
        request: &PayRequest,
        identity: &Identity,
        prefill: &Prefill,
        late: bool,
    ) -> Result<Attempt, ApiError> {
        let (manual_capture, amount, currency) = {
            let record = self.orders.get(order_id).ok_or_else(|| {
                ApiError::bad_request("The id provided does not exist").field("order_id")
            })?;
            if record.order.status == OrderStatus::Paid {
                return Err(order_paid_error());
            }
            if self.payments().any(|p| {
                p.order_id.as_deref() == Some(order_id) && p.status == PaymentStatus::Authorized
            }) {
                return Err(ApiError::bad_request(
                    "Payment processing for this order is already in progress.",
                ));
            }
            (
                record.manual_capture,
                record.order.amount,
                record.order.currency.clone(),
            )
        };
        let (method, details, result) = describe(request)?;
        let created_at = now();
        let mut payment = Payment {
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
            created_at,
        };
        if let Some(record) = self.orders.get_mut(order_id) {
            record.order.attempts += 1;
            record.order.status = OrderStatus::Attempted;
        }
        let reported_failure = match (result, late) {
            (Err(failure), _) => Some(failure),
            (Ok(()), true) => Some(methods::Failure {
                code: "BAD_REQUEST_ERROR",
                description: "Payment was not completed on time.",
                source: "customer",
                step: "payment_authentication",
                reason: "payment_timed_out",
            }),
            (Ok(()), false) => None,
        };
        let mut events = Vec::new();
        let callback = match reported_failure {
            Some(failure) => {
                fail(&mut payment, &failure);
                self.store(&payment);
                events.push(self.event(identity, EventType::PaymentFailed, &payment, None, None));
                failure_callback(&failure, &payment, order_id)
            }
            None => {
                events.extend(self.authorize(&mut payment, manual_capture, identity));
                success_callback(&payment, order_id, identity)
            }
        };
        Ok(Attempt {
            payment,
            callback,
            events,
        })
    }

    /// Authorises (and, unless the order asks for manual capture, captures) a payment.
    fn authorize(
        &mut self,
        payment: &mut Payment,
        manual_capture: bool,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        payment.status = PaymentStatus::Authorized;
        clear_error(payment);
        self.store(payment);
        let mut events =
            vec![self.event(identity, EventType::PaymentAuthorized, payment, None, None)];
        if !manual_capture {
            events.extend(self.capture_now(payment, identity));
        }
        events
    }

    fn capture_now(&mut self, payment: &mut Payment, identity: &Identity) -> Vec<PendingEvent> {
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

    /// Late authorisation: a payment reported failed turns out authorised (and is captured).
    pub fn late_authorize(
        &mut self,
        payment_id: &str,
        identity: &Identity,
    ) -> Result<(Payment, Vec<PendingEvent>), ApiError> {
        let mut payment = self.payment(payment_id)?.clone();
        if payment.status != PaymentStatus::Failed {
            return Err(ApiError::bad_request(
                "Only a failed payment can be authorised late.",
            ));
        }
        let order_id = payment.order_id.clone().unwrap_or_default();
        let record = self.orders.get(&order_id).ok_or_else(ApiError::not_found)?;
        if record.order.status == OrderStatus::Paid {
            // Razorpay refunds a late authorisation on an order someone already paid.
            return Err(order_paid_error());
        }
        let manual = record.manual_capture;
        let events = self.authorize(&mut payment, manual, identity);
        Ok((payment, events))
    }

    pub fn capture(
        &mut self,
        payment_id: &str,
        body: &Value,
        identity: &Identity,
    ) -> Result<(Payment, Vec<PendingEvent>), ApiError> {
        let fields = as_object(body)?;
        reject_unknown_fields(fields, &["amount", "currency"])?;
        let amount = amount_field(fields, "amount", true)?.unwrap_or_default();
        if fields.get("currency").and_then(Value::as_str).is_none() {
            return Err(ApiError::bad_request("The currency field is required.").field("currency"));
        }
        let mut payment = self.payment(payment_id)?.clone();
        match payment.status {
            PaymentStatus::Authorized => {}
            PaymentStatus::Captured | PaymentStatus::Refunded => {
                return Err(
                    ApiError::bad_request("This payment has already been captured")
                        .with_step("payment_capture"),
                );
            }
            PaymentStatus::Created | PaymentStatus::Failed => {
                return Err(ApiError::bad_request(
                    "Only payments which have been authorized and not yet captured can be captured",
                )
                .with_step("payment_capture"));
            }
        }
        if amount != payment.amount {
            return Err(ApiError::bad_request(
                "Capture amount must be equal to the amount authorized",
            )
            .field("amount")
            .with_step("payment_capture"));
        }
        let events = self.capture_now(&mut payment, identity);
        Ok((payment, events))
    }

    /// A refund, full or partial; with an idempotency key, the same request answers the same
    /// refund and a different one under the same key is refused.
    pub fn refund_payment(
        &mut self,
        payment_id: &str,
        body: &Value,
        idempotency_key: Option<&str>,
        identity: &Identity,
    ) -> Result<(Refund, Vec<PendingEvent>), ApiError> {
        if let Some(key) = idempotency_key {
            let ok = key.len() >= 10
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(ApiError::bad_request(
                    "The idempotency key must be at least 10 characters of A-Z, a-z, 0-9, _ or -.",
                ));
            }
            if let Some(previous) = self.refund_keys.get(key) {
                if &previous.body == body {
                    let refund = self.refund(&previous.refund_id)?.clone();
                    return Ok((refund, Vec::new()));
                }
                return Err(ApiError::bad_request(
                    "The idempotency key was used before with a different request.",
                ));
            }
        }
        let fields = as_object(body)?;
        reject_unknown_fields(fields, &["amount", "speed", "notes", "receipt"])?;
        let mut payment = self.payment(payment_id)?.clone();
        if !matches!(payment.status, PaymentStatus::Captured) {
            return Err(ApiError::bad_request(
                "Only captured payments can be refunded",
            ));
        }
        let refundable = payment.amount.0 - payment.amount_refunded.0;
        let amount = amount_field(fields, "amount", false)?.unwrap_or(Paise(refundable));
        if amount.0 < 100 {
            return Err(
                ApiError::bad_request("The amount must be at least INR 1.00").field("amount"),
            );
        }
        if amount.0 > refundable {
            return Err(ApiError::bad_request(
                "The refund amount provided is greater than amount captured.",
            )
            .field("amount"));
        }
        let speed = match fields.get("speed").and_then(Value::as_str) {
            None => "normal",
            Some(s @ ("normal" | "optimum")) => s,
            Some(_) => {
                return Err(ApiError::bad_request("The selected speed is invalid.").field("speed"));
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
            status: RefundState::Processed,
            speed_processed: Some("normal".into()),
            speed_requested: Some(speed.into()),
        };
        payment.amount_refunded = Paise(payment.amount_refunded.0 + amount.0);
        if payment.amount_refunded == payment.amount {
            payment.refund_status = Some(RefundStatus::Full);
            payment.status = PaymentStatus::Refunded;
        } else {
            payment.refund_status = Some(RefundStatus::Partial);
        }
        self.store(&payment);
        self.refund_ids.push(refund.id.clone());
        self.refunds.insert(refund.id.clone(), refund.clone());
        if let Some(key) = idempotency_key {
            self.refund_keys.insert(
                key.to_string(),
                RefundKey {
                    refund_id: refund.id.clone(),
                    body: body.clone(),
                },
            );
        }
        let events = vec![
            self.event(
                identity,
                EventType::RefundCreated,
                &payment,
                None,
                Some(&refund),
            ),
            self.event(
                identity,
                EventType::RefundProcessed,
                &payment,
                None,
                Some(&refund),
            ),
        ];
        Ok((refund, events))
    }

    fn store(&mut self, payment: &Payment) {
        if !self.payments.contains_key(&payment.id) {
            self.payment_ids.push(payment.id.clone());
        }
        self.payments.insert(payment.id.clone(), payment.clone());
    }

    fn event(
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

impl ApiError {
    fn with_step(mut self, step: &'static str) -> Self {
        self.step = step;
        self
    }
}

fn order_paid_error() -> ApiError {
    let mut e = ApiError::bad_request(
        "Your payment has been declined as the order is already paid. Please create a new order.",
    );
    e.reason = "order_already_paid";
    e
}

fn check_id(id: &str, prefix: &str) -> Result<(), ApiError> {
    if ids::is_valid(id, prefix) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("{id} is not a valid id")))
    }
}

/// What the customer's prefill told checkout.
#[derive(Debug, Clone, Default)]
pub struct Prefill {
    pub email: Option<String>,
    pub contact: Option<String>,
}

struct Details {
    card: Option<Card>,
    bank: Option<String>,
    wallet: Option<String>,
    vpa: Option<String>,
    upi: Option<Upi>,
    acquirer: AcquirerData,
}

pub fn current_year_month() -> (u32, u32) {
    // Civil year and month from Unix seconds (no time crate needed for this).
    let days = now().div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32)
}

/// Checks a payment request and says what kind of payment it makes and whether it succeeds.
fn describe(
    request: &PayRequest,
) -> Result<(PaymentMethod, Details, Result<(), Failure>), ApiError> {
    let none = || Details {
        card: None,
        bank: None,
        wallet: None,
        vpa: None,
        upi: None,
        acquirer: AcquirerData::default(),
    };
    let rrn = || format!("{:012}", ids::below(1_000_000_000_000));
    Ok(match request {
        PayRequest::Upi { vpa, qr } => {
            let vpa = match (vpa, qr) {
                (_, true) => "qr.payer@okaxis".to_string(),
                (Some(v), false) => v.trim().to_string(),
                (None, false) => {
                    return Err(ApiError::bad_request("Enter your UPI ID.").field("vpa"));
                }
            };
            if !methods::vpa_ok(&vpa) {
                let mut e = ApiError::bad_request(
                    "Invalid VPA. Please enter a valid Virtual Payment Address",
                )
                .field("vpa");
                e.reason = "invalid_vpa";
                return Err(e);
            }
            let result = methods::upi_result(&vpa);
            let mut details = none();
            details.upi = Some(Upi {
                payer_account_type: Some("bank_account".into()),
                vpa: Some(vpa.clone()),
                flow: Some(if *qr { "intent" } else { "collect" }.into()),
            });
            details.vpa = Some(vpa);
            if result.is_ok() {
                let id = rrn();
                details.acquirer.rrn = Some(id.clone());
                details.acquirer.upi_transaction_id = Some(format!("npci_{id}"));
            }
            (PaymentMethod::Upi, details, result)
        }
        PayRequest::Card {
            number,
            expiry,
            cvv,
            name,
            otp,
        } => {
            let card = methods::check_card(number, expiry, cvv, name, current_year_month())
                .map_err(|m| ApiError::bad_request(m).field("card[number]"))?;
            let result = methods::card_result(&card, otp);
            let mut details = none();
            details.card = Some(Card {
                id: Some(ids::new_id("card")),
                name: Some(name.trim().to_string()),
                last4: Some(card.last4.clone()),
                network: Some(card.network.into()),
                card_type: Some("credit".into()),
                issuer: None,
                international: false,
                emi: false,
                sub_type: Some("consumer".into()),
                token_iin: None,
            });
            if result.is_ok() {
                details.acquirer.auth_code = Some(format!("{:06}", ids::below(1_000_000)));
            }
            (PaymentMethod::Card, details, result)
        }
        PayRequest::Netbanking { bank, outcome } => {
            if methods::bank_name(bank).is_none() {
                return Err(ApiError::bad_request("The selected bank is invalid.").field("bank"));
            }
            let mut details = none();
            details.bank = Some(bank.clone());
            let result = match outcome {
                Outcome::Success => {
                    details.acquirer.bank_transaction_id = Some(rrn());
                    Ok(())
                }
                Outcome::Failure => Err(methods::BANK_FAILURE),
            };
            (PaymentMethod::Netbanking, details, result)
        }
        PayRequest::Wallet { wallet, outcome } => {
            if methods::wallet_name(wallet).is_none() {
                return Err(
                    ApiError::bad_request("The selected wallet is invalid.").field("wallet")
                );
            }
            let mut details = none();
            details.wallet = Some(wallet.clone());
            let result = match outcome {
                Outcome::Success => {
                    details.acquirer.transaction_id = Some(rrn());
                    Ok(())
                }
                Outcome::Failure => Err(methods::WALLET_FAILURE),
            };
            (PaymentMethod::Wallet, details, result)
        }
    })
}

fn fail(payment: &mut Payment, failure: &Failure) {
    payment.status = PaymentStatus::Failed;
    payment.error_code = Some(failure.code.into());
    payment.error_description = Some(failure.description.into());
    payment.error_source = Some(failure.source.into());
    payment.error_step = Some(failure.step.into());
    payment.error_reason = Some(failure.reason.into());
}

fn clear_error(payment: &mut Payment) {
    payment.error_code = None;
    payment.error_description = None;
    payment.error_source = None;
    payment.error_step = None;
    payment.error_reason = None;
}

fn success_callback(payment: &Payment, order_id: &str, identity: &Identity) -> CallbackFields {
    CallbackFields::Success {
        razorpay_payment_id: payment.id.clone(),
        razorpay_order_id: order_id.to_string(),
        razorpay_signature: razorpay::signature::payment_signature(
            order_id,
            &payment.id,
            &identity.key_secret,
        ),
    }
}

fn failure_callback(failure: &Failure, payment: &Payment, order_id: &str) -> CallbackFields {
    CallbackFields::Failure {
        code: failure.code.into(),
        description: failure.description.into(),
        source: failure.source.into(),
        step: failure.step.into(),
        reason: failure.reason.into(),
        metadata: serde_json::json!({"payment_id": payment.id, "order_id": order_id}).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            account_id: "acc_BFQ7uQEaa7j2z7".into(),
            key_secret: "secret".into(),
        }
    }

    #[test]
    fn the_civil_date_is_computed_from_unix_time() {
        let (year, month) = current_year_month();
        assert!((2024..2200).contains(&year) && (1..=12).contains(&month));
    }

    #[test]
    fn a_successful_payment_is_captured_and_pays_the_order() {
        let mut ledger = Ledger::default();
        let order = ledger
            .create_order(&serde_json::json!({"amount": 10000, "currency": "INR"}))
            .expect("order");
        let upi = PayRequest::Upi {
            vpa: Some("success@razorpay".into()),
            qr: false,
        };
        let attempt = ledger
            .pay(&order.id, &upi, &identity(), &Prefill::default(), false)
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
        let order = ledger.order(&order.id).expect("order");
        assert_eq!(
            (order.status, order.attempts, order.amount_due),
            (OrderStatus::Paid, 1, Paise(0))
        );
        let again = ledger.pay(
            &order.id.clone(),
            &upi,
            &identity(),
            &Prefill::default(),
            false,
        );
        assert_eq!(
            again.map(|_| ()).map_err(|e| e.reason),
            Err("order_already_paid")
        );
    }
}
