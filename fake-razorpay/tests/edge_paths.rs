//! The paths real Razorpay takes besides the happy one, each switchable from `/_fake/faults`:
//! manual capture and the capture window, payments left pending by the bank, late authorisation
//! on a paid order, refunds that stay pending or fail, retries inside the checkout, and
//! Razorpay's limits (unique receipts, UPI's per-payment cap, refund idempotency).

mod common;

use common::{KEY_ID, World, hidden_fields, session_id, world};
use fake_razorpay::Faults;
use reqwest::Method;
use serde_json::{Value, json};

fn upi(vpa: &str) -> Value {
    json!({"method": "upi", "vpa": vpa})
}

async fn payment(w: &World, id: &str) -> Value {
    w.api(Method::GET, &format!("/v1/payments/{id}"), None)
        .await
        .1
}

async fn refund(w: &World, payment: &str, body: Value, key: &str) -> (u16, Value) {
    let response = w
        .http
        .post(w.url(&format!("/v1/payments/{payment}/refund")))
        .basic_auth(KEY_ID, Some(common::KEY_SECRET))
        .header("X-Refund-Idempotency", key)
        .json(&body)
        .send()
        .await
        .expect("refund");
    (
        response.status().as_u16(),
        response.json().await.expect("json"),
    )
}

#[tokio::test]
async fn manual_capture_stops_at_authorized_until_the_merchant_captures() {
    let w = world(Faults {
        manual_capture: true,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(20_000).await;
    let (_, paid) = w.pay(&order, upi("success@razorpay")).await;
    assert_eq!(paid["payment"]["status"], "authorized");
    assert_eq!(paid["payment"]["captured"], false);
    assert!(
        paid["callback"]["razorpay_signature"].is_string(),
        "an authorised payment is a success for the browser"
    );
    assert_eq!(
        w.receiver.wait_for(1).await[0].event(),
        "payment.authorized"
    );
    let id = paid["payment"]["id"].as_str().expect("id");
    let (status, captured) = w
        .api(
            Method::POST,
            &format!("/v1/payments/{id}/capture"),
            Some(json!({"amount": 20_000, "currency": "INR"})),
        )
        .await;
    assert_eq!(
        (status, captured["status"].as_str()),
        (200, Some("captured"))
    );
    let events = w.receiver.wait_for(3).await;
    let names: Vec<String> = events.iter().map(common::Received::event).collect();
    assert_eq!(
        names,
        ["payment.authorized", "payment.captured", "order.paid"]
    );
}

#[tokio::test]
async fn an_authorised_payment_nobody_captures_is_refunded_after_the_capture_window() {
    let w = world(Faults {
        manual_capture: true,
        capture_window_ms: 200,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(15_000).await;
    let (_, paid) = w.pay(&order, upi("success@razorpay")).await;
    let id = paid["payment"]["id"].as_str().expect("id").to_string();
    let returned = w
        .api_until(&format!("/v1/payments/{id}"), |p| p["status"] == "refunded")
        .await;
    assert_eq!(
        (
            &returned["captured"],
            &returned["amount_refunded"],
            &returned["refund_status"]
        ),
        (&json!(false), &json!(15_000), &json!("full")),
        "returned without ever being captured"
    );
    let names: Vec<String> = w
        .receiver
        .wait_for(3)
        .await
        .iter()
        .map(common::Received::event)
        .collect();
    assert_eq!(
        names,
        ["payment.authorized", "refund.created", "refund.processed"]
    );
    let (status, error) = w
        .api(
            Method::POST,
            &format!("/v1/payments/{id}/capture"),
            Some(json!({"amount": 15_000, "currency": "INR"})),
        )
        .await;
    assert_eq!(status, 400, "too late to capture: {error}");
}

#[tokio::test]
async fn a_pending_payment_stays_created_then_the_bank_answers() {
    let w = world(Faults {
        pending_ms: 300,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let (_, paid) = w.pay(&order, upi("success@razorpay")).await;
    assert_eq!(
        (
            &paid["payment"]["status"],
            &paid["pending"],
            &paid["callback"]
        ),
        (&json!("created"), &json!(true), &Value::Null)
    );
    let id = paid["payment"]["id"].as_str().expect("id").to_string();
    let (_, listed) = w
        .api(Method::GET, &format!("/v1/orders/{order}/payments"), None)
        .await;
    assert_eq!(listed["items"][0]["status"], "created");
    assert!(w.receiver.received().is_empty(), "no webhook while created");
    let done = w
        .api_until(&format!("/v1/payments/{id}"), |p| p["status"] == "captured")
        .await;
    assert_eq!(done["captured"], true);
    assert_eq!(
        w.receiver.wait_for(3).await[0].event(),
        "payment.authorized"
    );
}

#[tokio::test]
async fn a_pending_payment_times_out_as_failed() {
    let w = world(Faults::default()).await;
    w.set_faults(json!({"pending_ms": 60_000, "pending_outcome": "timeout"}))
        .await;
    let order = w.create_order(10_000).await;
    let (_, paid) = w.pay(&order, upi("success@razorpay")).await;
    let id = paid["payment"]["id"].as_str().expect("id").to_string();
    // The bank's silence, now rather than in a minute.
    let (status, failed) = w
        .control(
            &format!("/_fake/payments/{id}/resolve"),
            json!({"outcome": "timeout"}),
        )
        .await;
    assert_eq!(
        (status, &failed["status"], &failed["error_reason"]),
        (200, &json!("failed"), &json!("payment_timed_out"))
    );
    assert_eq!(w.receiver.wait_for(1).await[0].event(), "payment.failed");
    let (status, _) = w
        .control(&format!("/_fake/payments/{id}/resolve"), json!({}))
        .await;
    assert_eq!(status, 400, "answered once");
}

#[tokio::test]
async fn late_authorisation_on_a_paid_order_is_refunded_at_once() {
    let w = world(Faults::default()).await;
    let order = w.create_order(30_000).await;
    let (_, first) = w
        .pay(
            &order,
            json!({"method": "upi", "vpa": "success@razorpay", "late_authorization": true}),
        )
        .await;
    assert_eq!(first["payment"]["status"], "failed");
    let (_, second) = w
        .pay(
            &order,
            json!({"method": "netbanking", "bank": "HDFC", "outcome": "success"}),
        )
        .await;
    assert_eq!(second["payment"]["status"], "captured", "a retry paid it");
    w.receiver.wait_for(4).await;
    let late = first["payment"]["id"].as_str().expect("id");
    let (status, authorised) = w
        .control(&format!("/_fake/payments/{late}/authorize"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &authorised["status"],
            &authorised["captured"],
            &authorised["amount_refunded"]
        ),
        (&json!("refunded"), &json!(false), &json!(30_000))
    );
    let names: Vec<String> = w
        .receiver
        .wait_for(7)
        .await
        .iter()
        .skip(4)
        .map(common::Received::event)
        .collect();
    assert_eq!(
        names,
        ["payment.authorized", "refund.created", "refund.processed"]
    );
    let (_, payments) = w
        .api(Method::GET, &format!("/v1/orders/{order}/payments"), None)
        .await;
    assert_eq!(payments["count"], 2, "two payments on one order");
}

#[tokio::test]
async fn refunds_are_pending_first_then_processed_pending_or_failed() {
    let w = world(Faults {
        refund_outcome: fake_razorpay::RefundOutcome::Pending,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let (_, paid) = w.pay(&order, upi("success@razorpay")).await;
    let id = paid["payment"]["id"].as_str().expect("id").to_string();
    let (_, held) = refund(&w, &id, json!({"amount": 4_000}), "refund-held-0001").await;
    assert_eq!(held["status"], "pending");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let rid = held["id"].as_str().expect("id").to_string();
    let (_, still) = w
        .api(Method::GET, &format!("/v1/refunds/{rid}"), None)
        .await;
    assert_eq!(still["status"], "pending", "stays pending until told");
    let (status, failed) = w
        .control(
            &format!("/_fake/refunds/{rid}/process"),
            json!({"outcome": "failed"}),
        )
        .await;
    assert_eq!((status, &failed["status"]), (200, &json!("failed")));
    let after = payment(&w, &id).await;
    assert_eq!(
        (
            &after["amount_refunded"],
            &after["refund_status"],
            &after["status"]
        ),
        (&json!(0), &Value::Null, &json!("captured")),
        "a failed refund gives nothing back"
    );
    let (status, _) = w
        .control(
            &format!("/_fake/refunds/{rid}/process"),
            json!({"outcome": "processed"}),
        )
        .await;
    assert_eq!(status, 400, "a refund ends once");
    let refund_events: Vec<String> = w
        .receiver
        .wait_for(5)
        .await
        .iter()
        .map(common::Received::event)
        .filter(|e| e.starts_with("refund."))
        .collect();
    assert_eq!(refund_events, ["refund.created", "refund.failed"]);

    // Failed on its own, after the delay.
    w.set_faults(json!({"refund_outcome": "failed", "refund_delay_ms": 50}))
        .await;
    let (_, doomed) = refund(&w, &id, json!({"amount": 2_000}), "refund-doom-0001").await;
    assert_eq!(doomed["status"], "pending");
    let rid = doomed["id"].as_str().expect("id");
    w.api_until(&format!("/v1/refunds/{rid}"), |r| r["status"] == "failed")
        .await;

    // Processed on its own, by default.
    w.set_faults(json!({})).await;
    let (_, done) = refund(&w, &id, json!({"amount": 2_000}), "refund-done-0001").await;
    let rid = done["id"].as_str().expect("id");
    w.api_until(&format!("/v1/refunds/{rid}"), |r| {
        r["status"] == "processed"
    })
    .await;
    assert_eq!(payment(&w, &id).await["amount_refunded"], 2_000);
}

#[tokio::test]
async fn an_upi_payment_over_one_lakh_is_refused() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000_001).await;
    let (status, error) = w.pay(&order, upi("success@razorpay")).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["error"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("₹1,00,000")),
        "{error}"
    );
    let (status, card) = w
        .pay(
            &order,
            json!({"method": "card", "number": "4100280000001007", "otp": "1234"}),
        )
        .await;
    assert_eq!(
        (status, &card["payment"]["status"]),
        (200, &json!("captured"))
    );
    // The checkout does not offer UPI above the limit.
    let big = w.create_order(20_000_000).await;
    let html = w
        .http
        .post(w.url("/v1/checkout/embedded"))
        .form(&[
            ("key_id", KEY_ID),
            ("order_id", big.as_str()),
            ("callback_url", "http://shop.example/cb"),
        ])
        .send()
        .await
        .expect("open")
        .text()
        .await
        .expect("html");
    assert!(html.contains("UPI payments are limited to ₹1,00,000 each"));
    assert!(!html.contains("/upi\""), "no link to UPI");
}

/// With `failure_callback` off, a failed attempt posts nothing back: the customer stays on the
/// checkout and pays again with another method, on the same order.
#[tokio::test]
async fn after_a_failure_the_checkout_offers_a_retry_on_the_same_order() {
    let w = world(Faults {
        failure_callback: false,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(50_000).await;
    let html = w
        .http
        .post(w.url("/v1/checkout/embedded"))
        .form(&[
            ("key_id", KEY_ID),
            ("order_id", order.as_str()),
            ("amount", "50000"),
            ("callback_url", "http://shop.example/cb"),
        ])
        .send()
        .await
        .expect("open")
        .text()
        .await
        .expect("html");
    let sid = session_id(&html);
    let failed = w
        .http
        .post(w.url(&format!("/checkout/{sid}/upi")))
        .form(&[("vpa", "failure@razorpay")])
        .send()
        .await
        .expect("pay")
        .text()
        .await
        .expect("html");
    assert!(failed.contains("id=\"retry\""), "{failed}");
    assert!(
        !failed.contains("id=\"callback\""),
        "nothing is posted back to the merchant"
    );
    let paid = w
        .http
        .post(w.url(&format!("/checkout/{sid}/wallet/payzapp")))
        .form(&[("outcome", "success")])
        .send()
        .await
        .expect("pay")
        .text()
        .await
        .expect("html");
    let fields = hidden_fields(&paid);
    assert!(fields.iter().any(|(k, _)| k == "razorpay_signature"));
    let (_, payments) = w
        .api(Method::GET, &format!("/v1/orders/{order}/payments"), None)
        .await;
    let statuses: Vec<&str> = payments["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["status"].as_str())
        .collect();
    assert_eq!(statuses, ["failed", "captured"]);
}

#[tokio::test]
async fn the_checkout_waits_for_a_pending_payment_and_then_shows_its_result() {
    let w = world(Faults {
        pending_ms: 200,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let html = w
        .http
        .post(w.url("/v1/checkout/embedded"))
        .form(&[
            ("key_id", KEY_ID),
            ("order_id", order.as_str()),
            ("callback_url", "http://shop.example/cb"),
        ])
        .send()
        .await
        .expect("open")
        .text()
        .await
        .expect("html");
    let sid = session_id(&html);
    let waiting = w
        .http
        .post(w.url(&format!("/checkout/{sid}/upi")))
        .form(&[("vpa", "success@razorpay")])
        .send()
        .await
        .expect("pay")
        .text()
        .await
        .expect("html");
    assert!(waiting.contains("Waiting for your bank"), "{waiting}");
    let mut result = String::new();
    for _ in 0..100 {
        result = w
            .http
            .get(w.url(&format!("/checkout/{sid}/waiting")))
            .send()
            .await
            .expect("poll")
            .text()
            .await
            .expect("html");
        if result.contains("id=\"callback\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(result.contains("Payment successful"), "{result}");
    assert!(
        hidden_fields(&result)
            .iter()
            .any(|(k, _)| k == "razorpay_signature")
    );
}

/// Two attempts that both succeed at the bank: a second payment captured on a paid order
/// (`second_payment`), which the merchant must refund.
#[tokio::test]
async fn a_second_payment_can_be_captured_on_a_paid_order() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    let (_, first) = w.pay(&order, upi("success@razorpay")).await;
    assert_eq!(first["payment"]["status"], "captured");
    let (status, refused) = w.pay(&order, upi("success@razorpay")).await;
    assert_eq!(
        (status, refused["error"]["reason"].as_str()),
        (400, Some("order_already_paid")),
        "an ordinary attempt on a paid order is refused"
    );
    let (status, second) = w
        .pay(
            &order,
            json!({"method": "upi", "vpa": "success@razorpay", "second_payment": true}),
        )
        .await;
    assert_eq!(
        (status, &second["payment"]["status"]),
        (200, &json!("captured"))
    );
    let (_, payments) = w
        .api(Method::GET, &format!("/v1/orders/{order}/payments"), None)
        .await;
    assert_eq!(payments["count"], 2);
}
