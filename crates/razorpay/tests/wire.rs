//! Razorpay's documented samples parse into our wire types (snapshots show what we read), and
//! requests serialise to exactly what Razorpay accepts.

use razorpay::{
    Paise,
    wire::{
        CaptureRequest, CaptureSettings, Collection, CreateOrder, CreateRefund, ErrorEnvelope,
        EventType, Notes, Order, OrderPaymentSettings, Payment, PaymentMethod, PaymentStatus,
        Refund, RefundSpeed, WebhookEvent,
    },
};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../fixtures/razorpay/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn orders_parse_with_object_or_empty_array_notes() {
    let created: Order = parse("order_created.json");
    assert_eq!(created.notes.get("key1"), Some("value3"));
    let empty: Order = parse("order_created_empty_notes.json");
    assert!(empty.notes.is_empty() && empty.receipt.is_none());
    let paid: Order = parse("order_paid.json");
    insta::assert_json_snapshot!("order_paid", paid);
}

#[test]
fn payments_of_every_method_and_state_parse() {
    let upi: Payment = parse("payment_captured_upi.json");
    assert_eq!(
        (upi.method.clone(), upi.status),
        (PaymentMethod::Upi, PaymentStatus::Captured)
    );
    assert_eq!((upi.fee, upi.tax), (Some(Paise(2)), Some(Paise(0))));
    assert!(upi.notes.is_empty());
    insta::assert_json_snapshot!("payment_captured_upi", upi);

    let failed: Payment = parse("payment_failed_upi.json");
    assert_eq!(failed.status, PaymentStatus::Failed);
    assert_eq!(failed.error_reason.as_deref(), Some("payment_failed"));
    assert_eq!(failed.fee, None);
    insta::assert_json_snapshot!("payment_failed_upi", failed);

    // error_code "" (as some samples have it) means no error.
    let card: Payment = parse("payment_authorized_card.json");
    assert_eq!(card.status, PaymentStatus::Authorized);
    assert_eq!(card.error_code, None);
    assert_eq!(
        card.card.as_ref().and_then(|c| c.last4.as_deref()),
        Some("1007")
    );
    insta::assert_json_snapshot!("payment_authorized_card", card);

    let netbanking: Payment = parse("payment_captured_netbanking.json");
    assert_eq!(
        netbanking.acquirer_data.bank_transaction_id.as_deref(),
        Some("0125836177")
    );

    // A contact sent as a number is still read.
    let wallet: Payment = parse("payment_failed_wallet.json");
    assert_eq!(wallet.contact.as_deref(), Some("9876543210"));
    assert_eq!(wallet.wallet.as_deref(), Some("payzapp"));
    assert_eq!(wallet.error_source.as_deref(), Some("issuer"));

    let refunded: Payment = parse("payment_refunded_partial.json");
    assert_eq!(refunded.amount_refunded, Paise(100_000));
    assert_eq!(
        refunded.refund_status,
        Some(razorpay::wire::RefundStatus::Partial)
    );

    let unknown_method: Payment = serde_json::from_str(
        &fixture("payment_captured_upi.json")
            .replace(r#""method":"upi""#, r#""method":"paylater""#),
    )
    .expect("unknown method");
    assert_eq!(
        unknown_method.method,
        PaymentMethod::Other("paylater".into())
    );
}

#[test]
fn an_unknown_payment_status_is_an_error_not_a_guess() {
    let body = fixture("payment_captured_upi.json")
        .replace(r#""status":"captured""#, r#""status":"settled""#);
    assert!(serde_json::from_str::<Payment>(&body).is_err());
}

#[test]
fn collections_refunds_and_errors_parse() {
    let payments: Collection<Payment> = parse("order_payments.json");
    assert_eq!(payments.count, 2);
    let empty: Collection<Order> = parse("collection_empty.json");
    assert!(empty.items.is_empty());
    let refund: Refund = parse("refund_processed.json");
    insta::assert_json_snapshot!("refund_processed", refund);

    let error: ErrorEnvelope = parse("error_amount_too_small.json");
    assert_eq!(error.error.field.as_deref(), Some("amount"));
    // "NA" and null mean absent; an envelope with only code and description is fine.
    let auth: ErrorEnvelope = parse("error_authentication.json");
    assert_eq!((auth.error.source, auth.error.field), (None, None));
    let minimal: ErrorEnvelope = parse("error_server.json");
    assert_eq!(minimal.error.code, "SERVER_ERROR");
}

#[test]
fn webhook_events_parse() {
    let paid: WebhookEvent = parse("webhook_order_paid.json");
    assert_eq!(paid.event, EventType::OrderPaid);
    assert_eq!(
        paid.payment().map(|p| p.status),
        Some(PaymentStatus::Captured)
    );
    assert_eq!(
        paid.order().map(|o| o.id.as_str()),
        Some("order_DESlLckIVRkHWj")
    );
    insta::assert_json_snapshot!("webhook_order_paid", paid);

    let failed: WebhookEvent = parse("webhook_payment_failed.json");
    assert_eq!(failed.event, EventType::PaymentFailed);
    assert_eq!(
        failed.payment().and_then(|p| p.error_reason.as_deref()),
        Some("authentication_failed")
    );

    let refund: WebhookEvent = parse("webhook_refund_processed.json");
    assert_eq!(refund.event, EventType::RefundProcessed);
    assert_eq!(refund.refund().map(|r| r.amount), Some(Paise(20_000)));

    // The SDK's vector has no account_id and an unknown field (service_tax).
    let sdk: WebhookEvent = parse("webhook_payment_authorized_sdk_vector.json");
    assert_eq!(sdk.event, EventType::PaymentAuthorized);
    assert_eq!(sdk.account_id, None);

    let other: WebhookEvent = parse("webhook_unknown_event.json");
    assert_eq!(
        other.event,
        EventType::Other("payment.dispute.created".into())
    );
    assert!(other.payment().is_none());
}

#[test]
fn the_published_webhook_vector_verifies_over_the_exact_bytes() {
    use razorpay::{
        Secret, WebhookSecrets,
        signature::{SignedWith, verify_webhook_signature, webhook_signature},
    };
    let body = fixture("webhook_payment_authorized_sdk_vector.json");
    let expected = "d60e67fd884556c045e9be7dad57903e33efc7172c17c6e3ef77db42d2b366e9";
    assert_eq!(
        webhook_signature(body.as_bytes(), &Secret::new("key_secret")),
        expected
    );
    let secrets = WebhookSecrets {
        current: Secret::new("key_secret"),
        previous: None,
    };
    assert_eq!(
        verify_webhook_signature(body.as_bytes(), expected, &secrets),
        Ok(SignedWith::Current)
    );
    // Re-serialised JSON is not the same bytes: the most reported webhook bug.
    let reserialised =
        serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&body).expect("json"))
            .expect("json");
    assert!(verify_webhook_signature(reserialised.as_bytes(), expected, &secrets).is_err());
}

#[test]
fn requests_serialise_only_accepted_fields() {
    let minimal = CreateOrder::inr(Paise(10_000));
    insta::assert_snapshot!(
        "create_order_minimal",
        serde_json::to_string(&minimal).expect("json")
    );
    let full = CreateOrder {
        amount: Paise(100_050),
        currency: "INR".into(),
        receipt: Some("topup_42".into()),
        notes: Notes::new().with("account", "user:7").with("topup", "42"),
        partial_payment: Some(false),
        payment: Some(OrderPaymentSettings {
            capture: CaptureSettings::Automatic,
        }),
    };
    insta::assert_snapshot!(
        "create_order_full",
        serde_json::to_string(&full).expect("json")
    );
    let capture = CaptureRequest {
        amount: Paise(100_050),
        currency: "INR".into(),
    };
    insta::assert_snapshot!("capture", serde_json::to_string(&capture).expect("json"));
    insta::assert_snapshot!(
        "refund_full",
        serde_json::to_string(&CreateRefund::default()).expect("json")
    );
    let partial = CreateRefund {
        amount: Some(Paise(500)),
        speed: Some(RefundSpeed::Optimum),
        ..Default::default()
    };
    insta::assert_snapshot!(
        "refund_partial",
        serde_json::to_string(&partial).expect("json")
    );
}
