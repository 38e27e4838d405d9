//! Razorpay's state machines, in memory: orders (created → attempted → paid), payments
//! (created → authorized → captured → refunded, or failed, and late authorisation), refunds.
//! Pure functions over [`State`]; the HTTP layers only translate.

use std::collections::{HashMap, HashSet};

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
    /// None while the bank has not answered.
    pub callback: Option<CallbackFields>,
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
    payment_id: String,
    body: Value,
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
    orders: HashMap<String, OrderRecord>,
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

/// A payment waiting for its bank: what the bank will say once it answers.
#[derive(Debug, Clone)]
struct PendingAttempt {
    result: Result<(), Failure>,
    late: bool,
    manual_capture: bool,
}

/// UPI merchant payments are limited to ₹1,00,000 each (Razorpay's transaction limits for UPI).
pub const UPI_LIMIT: Paise = Paise(10_000_000);

/// What the bank reports when it never answered (Razorpay marks the payment failed after ~10
/// minutes).
pub const TIMED_OUT: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment was not completed on time.",
    source: "customer",
    step: "payment_authentication",
    reason: "payment_timed_out",
};

impl Gateway {
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
                return Err(
                    ApiError::bad_request("receipt: the length must be no more than 40.")
                        .field("receipt"),
                );
            }
            Some(_) => {
                return Err(ApiError::bad_request("The receipt must be a string.").field("receipt"));
            }
        };
        // Razorpay: a receipt "has to be unique" within the account (api/orders/create.md).
        if let Some(r) = &receipt
            && self.receipts.contains(r)
        {
            return Err(ApiError::bad_request(
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

    /// True while the order is `paid` (no further payment may start on it).
    fn order_is_paid(&self, order_id: &str) -> bool {
        self.orders
            .get(order_id)
            .is_some_and(|r| r.order.status == OrderStatus::Paid)
    }

    /// Makes a payment on an order, as the checkout pages or the control API describe it.
    pub fn pay(
        &mut self,
        order_id: &str,
        request: &PayRequest,
        identity: &Identity,
        prefill: &Prefill,
        options: PayOptions,
    ) -> Result<Attempt, ApiError> {
        let (manual_capture, amount, currency) = {
            let record = self.orders.get(order_id).ok_or_else(|| {
                ApiError::bad_request("The id provided does not exist").field("order_id")
            })?;
            if record.order.status == OrderStatus::Paid && !options.second_payment {
                return Err(order_paid_error());
            }
            if !options.second_payment
                && self.payments().any(|p| {
                    p.order_id.as_deref() == Some(order_id) && p.status == PaymentStatus::Authorized
                })
            {
                return Err(ApiError::bad_request(
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
                success_callback(&payment, &order_id, identity)
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
    ) -> Result<Attempt, ApiError> {
        let payment = self.payment(payment_id)?.clone();
        let pending = match (payment.status, self.pending.remove(payment_id)) {
            (PaymentStatus::Created, Some(pending)) => pending,
            _ => {
                return Err(ApiError::bad_request(
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

    /// Authorises a payment. Unless the capture is manual it is captured at once; on an order
    /// someone already paid, Razorpay refunds it at once instead (late-authorisation.md).
    fn authorize(
        &mut self,
        payment: &mut Payment,
        manual_capture: bool,
        identity: &Identity,
    ) -> Vec<PendingEvent> {
        self.authorize_with(payment, manual_capture, false, identity)
    }

    fn authorize_with(
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

    /// Razorpay returns an authorised payment nobody captured (its capture window passed, or
    /// its order was already paid): the payment is `refunded` without ever being captured.
    fn refund_uncaptured(
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
    pub fn expire_capture_window(
        &mut self,
        payment_id: &str,
        identity: &Identity,
    ) -> Result<Vec<PendingEvent>, ApiError> {
        let mut payment = self.payment(payment_id)?.clone();
        if payment.status != PaymentStatus::Authorized {
            return Ok(Vec::new());
        }
        Ok(self.refund_uncaptured(&mut payment, identity))
    }

    /// Late authorisation: a payment reported failed turns out authorised (then captured,
    /// left for a manual capture, or refunded at once when its order was paid meanwhile).
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
            PaymentStatus::Captured => {
                return Err(
                    ApiError::bad_request("This payment has already been captured")
                        .with_step("payment_capture"),
                );
            }
            PaymentStatus::Refunded if payment.captured => {
                return Err(
                    ApiError::bad_request("This payment has already been captured")
                        .with_step("payment_capture"),
                );
            }
            PaymentStatus::Created | PaymentStatus::Failed | PaymentStatus::Refunded => {
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

    /// A refund, full or partial. It is created `pending`, as normal-speed refunds are; see
    /// [`Gateway::settle_refund`] for its outcome. With an idempotency key, the same request
    /// answers the same refund and a different one under the same key is a 409.
    pub fn refund_payment(
        &mut self,
        payment_id: &str,
        body: &Value,
        idempotency_key: Option<&str>,
        identity: &Identity,
    ) -> Result<RefundAttempt, ApiError> {
        if let Some(key) = idempotency_key {
            if key.len() < 10 {
                return Err(ApiError::bad_request(
                    "The idempotency key must be at least 10 characters long.",
                ));
            }
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ApiError::bad_request(
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
                let mut e = ApiError::bad_request(
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
                return Err(ApiError::bad_request(
                    "The payment has been fully refunded already.",
                ));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "Only captured payments can be refunded",
                ));
            }
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
    ) -> Result<(Refund, Vec<PendingEvent>), ApiError> {
        let mut refund = self.refund(refund_id)?.clone();
        if refund.status != RefundState::Pending {
            return Err(ApiError::bad_request(format!(
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
    amount: Paise,
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
            if amount > UPI_LIMIT {
                return Err(ApiError::bad_request(
                    "UPI payments are limited to ₹1,00,000 per transaction. Choose another method.",
                )
                .field("method"));
            }
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
