//! Webhooks: Razorpay's envelope and headers, signatures over the exact bytes, retries, and every
//! fault switch; plus the API faults.

mod common;

use std::time::{Duration, Instant};

use common::{WEBHOOK_SECRET, world};
use fake_razorpay::{DeliveryStatus, Faults};
use razorpay::{Secret, WebhookSecrets, signature::verify_webhook_signature, wire::WebhookEvent};
use serde_json::json;

const UPI_SUCCESS: &str = r#"{"method":"upi","vpa":"success@razorpay"}"#;

fn upi_success() -> serde_json::Value {
    serde_json::from_str(UPI_SUCCESS).expect("json")
}

#[tokio::test]
async fn a_payment_sends_signed_compact_webhooks_with_razorpays_headers() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    w.pay(&order, upi_success()).await;
    let got = w.receiver.wait_for(3).await;
    let mut events: Vec<String> = got.iter().map(|r| r.event()).collect();
    events.sort();
    assert_eq!(
        events,
        vec!["order.paid", "payment.authorized", "payment.captured"]
    );
    let secrets = WebhookSecrets {
        current: Secret::new(WEBHOOK_SECRET),
        previous: None,
    };
    let mut ids = std::collections::HashSet::new();
    for r in &got {
        assert!(
            verify_webhook_signature(&r.body, r.header("x-razorpay-signature"), &secrets).is_ok()
        );
        assert_eq!(r.header("user-agent"), "Razorpay-Webhook/v1");
        assert_eq!(r.header("content-type"), "application/json");
        let id = r.header("x-razorpay-event-id");
        assert!(
            id.len() == 14 && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{id}"
        );
        ids.insert(id.to_string());
        assert!(
            !r.body.contains(&b'\n') && !r.body.windows(2).any(|w| w == b": "),
            "compact JSON"
        );
        let event: WebhookEvent = serde_json::from_slice(&r.body).expect("Razorpay's envelope");
        assert_eq!(event.entity, "event");
        assert_eq!(
            event.payment().and_then(|p| p.order_id.as_deref()),
            Some(order.as_str())
        );
    }
    assert_eq!(ids.len(), 3, "one id per event");
    let paid = got
        .iter()
        .find(|r| r.event() == "order.paid")
        .expect("order.paid");
    assert_eq!(paid.json()["contains"], json!(["payment", "order"]));
    assert_eq!(paid.json()["payload"]["order"]["entity"]["status"], "paid");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_event_id() {
    let w = world(Faults::default()).await;
    *w.receiver.fail.lock().expect("lock") = 2;
    let order = w.create_order(10_000).await;
    w.pay(&order, json!({"method": "upi", "vpa": "failure@razorpay"}))
        .await;
    let got = w.receiver.wait_for(1).await;
    assert_eq!(got[0].event(), "payment.failed");
    // The receiver has the event as soon as it answers 200; the fake records that answer a
    // moment later (seen once under load): wait for the log to settle.
    for _ in 0..100 {
        if w.fake
            .fake
            .deliveries()
            .iter()
            .all(|d| d.status != DeliveryStatus::Pending)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let log = w.fake.fake.deliveries();
    assert_eq!(log.len(), 1);
    let statuses: Vec<_> = log[0].attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(200)]);
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!(got[0].header("x-razorpay-event-id"), log[0].event_id);
    // The log is served as JSON too.
    let served: serde_json::Value = w
        .http
        .get(w.url("/_fake/webhooks"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(served[0]["attempts"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn deliveries_give_up_after_the_last_attempt() {
    let w = world(Faults::default()).await;
    *w.receiver.fail.lock().expect("lock") = 100;
    let order = w.create_order(10_000).await;
    w.pay(&order, json!({"method": "upi", "vpa": "failure@razorpay"}))
        .await;
    for _ in 0..200 {
        if w.fake
            .fake
            .deliveries()
            .first()
            .is_some_and(|d| d.status == DeliveryStatus::Failed)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = w.fake.fake.deliveries();
    assert_eq!(
        (log[0].status, log[0].attempts.len()),
        (DeliveryStatus::Failed, 5)
    );
}

#[tokio::test]
async fn duplicates_deliver_each_event_again_with_its_id() {
    let w = world(Faults {
        webhook_duplicates: 2,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    w.pay(&order, upi_success()).await;
    let got = w.receiver.wait_for(9).await;
    let mut by_id = std::collections::HashMap::<String, usize>::new();
    for r in &got {
        *by_id
            .entry(r.header("x-razorpay-event-id").to_string())
            .or_default() += 1;
    }
    assert_eq!(by_id.len(), 3);
    assert!(by_id.values().all(|n| *n == 3));
}

#[tokio::test]
async fn reordering_and_early_delivery() {
    let w = world(Faults {
        webhook_reorder: true,
        webhooks_before_callback: true,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    w.pay(&order, upi_success()).await;
    // Delivered before the pay call (the browser's callback) answered, in reverse order.
    assert_eq!(
        w.receiver.events(),
        vec!["order.paid", "payment.captured", "payment.authorized"]
    );
}

#[tokio::test]
async fn delayed_and_fail_first_deliveries() {
    let w = world(Faults {
        webhook_delay_ms: 300,
        webhook_fail_first: 2,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let started = Instant::now();
    w.pay(&order, upi_success()).await;
    assert!(w.receiver.received().is_empty(), "nothing before the delay");
    w.receiver.wait_for(3).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        w.receiver.received().len(),
        3,
        "each event reached the receiver once"
    );
    for delivery in w.fake.fake.deliveries() {
        let simulated: Vec<_> = delivery.attempts.iter().map(|a| a.simulated).collect();
        assert_eq!(simulated, vec![true, true, false]);
    }
}

#[tokio::test]
async fn late_authorisation_reports_failure_then_captures() {
    let w = world(Faults {
        late_authorization: true,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let (_, result) = w.pay(&order, upi_success()).await;
    assert_eq!(result["payment"]["status"], "failed");
    assert_eq!(result["callback"]["error[reason]"], "payment_timed_out");
    w.receiver.wait_for(1).await;
    let payment = result["payment"]["id"].as_str().expect("id");
    let response = w
        .http
        .post(w.url(&format!("/_fake/payments/{payment}/authorize")))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), 200);
    w.receiver.wait_for(4).await;
    let mut events = w.receiver.events();
    events.sort();
    assert_eq!(
        events,
        vec![
            "order.paid",
            "payment.authorized",
            "payment.captured",
            "payment.failed"
        ]
    );
    let (_, order_now) = w
        .api(reqwest::Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(order_now["status"], "paid");
}

#[tokio::test]
async fn late_authorisation_can_happen_on_its_own() {
    let w = world(Faults {
        late_authorization: true,
        late_authorization_delay_ms: 100,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(10_000).await;
    let (_, result) = w.pay(&order, upi_success()).await;
    assert_eq!(
        result["payment"]["status"], "failed",
        "reported failed first"
    );
    w.receiver.wait_for(4).await;
    assert_eq!(
        w.receiver.events(),
        vec![
            "payment.failed",
            "payment.authorized",
            "payment.captured",
            "order.paid"
        ],
        "then authorised and captured on its own"
    );
}

#[tokio::test]
async fn closing_the_tab_still_sends_webhooks() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    let (_, result) = w
        .pay(
            &order,
            json!({"method": "upi", "vpa": "success@razorpay", "close_tab": true}),
        )
        .await;
    assert!(result["callback"].is_null());
    assert_eq!(result["payment"]["status"], "captured");
    w.receiver.wait_for(3).await;
}

#[tokio::test]
async fn refunds_send_refund_webhooks() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    let (_, paid) = w.pay(&order, upi_success()).await;
    w.receiver.wait_for(3).await;
    let payment = paid["payment"]["id"].as_str().expect("id");
    let (status, _) = w
        .api(
            reqwest::Method::POST,
            &format!("/v1/payments/{payment}/refund"),
            Some(json!({"amount": 2500})),
        )
        .await;
    assert_eq!(status, 200);
    let got = w.receiver.wait_for(5).await;
    let refund_events: Vec<_> = got
        .iter()
        .filter(|r| r.event().starts_with("refund."))
        .collect();
    assert_eq!(refund_events.len(), 2);
    for r in refund_events {
        assert_eq!(r.json()["contains"], json!(["refund", "payment"]));
        assert_eq!(r.json()["payload"]["refund"]["entity"]["amount"], 2500);
    }
}

#[tokio::test]
async fn api_faults_answer_500_or_hang() {
    let w = world(Faults {
        api_error_percent: 100,
        ..Faults::default()
    })
    .await;
    let (status, body) = w.api(reqwest::Method::GET, "/v1/orders", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (500, Some("SERVER_ERROR"))
    );
    let faults = json!({"api_timeout_percent": 100, "api_timeout_ms": 300});
    let r = w
        .http
        .post(w.url("/_fake/faults"))
        .json(&faults)
        .send()
        .await
        .expect("faults");
    assert_eq!(r.status(), 200);
    let started = Instant::now();
    let (status, _) = w.api(reqwest::Method::GET, "/v1/orders", None).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let r = w
        .http
        .post(w.url("/_fake/faults"))
        .json(&json!({"nonsense": 1}))
        .send()
        .await
        .expect("faults");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_pay_control_refuses_bad_requests_in_razorpays_shape() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    for body in [
        json!({"method": "bitcoin"}),
        json!({"method": "upi", "vpa": "nope"}),
        json!({"method": "card", "number": "1234", "otp": "1234"}),
        json!({"method": "netbanking", "bank": "NOPE"}),
    ] {
        let (status, error) = w.pay(&order, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["code"], "BAD_REQUEST_ERROR", "{body}");
    }
    let (status, _) = w.pay("order_DoesNotExist01", upi_success()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn reset_forgets_everything_and_the_dashboard_lists_it_all() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    w.pay(&order, upi_success()).await;
    w.receiver.wait_for(3).await;
    let page = w
        .http
        .get(w.url("/_fake/"))
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("html");
    assert!(page.contains(&order) && page.contains("payment.captured"));
    let r = w
        .http
        .post(w.url("/_fake/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(r.status(), 204);
    let (status, _) = w
        .api(reqwest::Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(status, 400);
    assert!(w.fake.fake.deliveries().is_empty());
}
