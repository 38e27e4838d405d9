//! The REST API against Razorpay's documented behaviour and samples.

mod common;

use common::{KEY_ID, redact, world};
use fake_razorpay::Faults;
use reqwest::Method;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../fixtures/razorpay/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON")
}

#[tokio::test]
async fn basic_auth_is_required_and_checked() {
    let w = world(Faults::default()).await;
    let none = w
        .http
        .get(w.url("/v1/orders"))
        .send()
        .await
        .expect("request");
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.expect("json");
    assert_eq!(body["error"]["code"], "BAD_REQUEST_ERROR");
    for (id, secret, message) in [
        (
            "rzp_test_wrong",
            common::KEY_SECRET,
            "The api key provided is invalid",
        ),
        (KEY_ID, "wrong", "The api secret provided is invalid"),
    ] {
        let response = w
            .http
            .get(w.url("/v1/orders"))
            .basic_auth(id, Some(secret))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["description"], message);
    }
}

#[tokio::test]
async fn orders_look_like_razorpays_sample() {
    let w = world(Faults::default()).await;
    let (status, mut order) = w
        .api(Method::POST, "/v1/orders", Some(json!({"amount": 5000, "currency": "INR", "receipt": "receipt#1", "notes": {"key1": "value3"}})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(keys(&order), keys(&sample("order_created.json")));
    let id = order["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("order_") && id.len() == 20, "{id}");
    let (_, fetched) = w.api(Method::GET, &format!("/v1/orders/{id}"), None).await;
    assert_eq!(fetched, order);
    redact(&mut order);
    insta::assert_json_snapshot!("order_created", order);

    let (_, empty) = w
        .api(
            Method::POST,
            "/v1/orders",
            Some(json!({"amount": 100, "currency": "INR"})),
        )
        .await;
    assert_eq!(empty["notes"], json!([]));
    assert_eq!(empty["receipt"], Value::Null);
}

#[tokio::test]
async fn order_rules_and_messages_are_razorpays() {
    let w = world(Faults::default()).await;
    let notes: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({"amount": 99, "currency": "INR"}),
            "The amount must be at least INR 1.00",
            Some("amount"),
        ),
        (
            json!({"amount": 100.5, "currency": "INR"}),
            "The amount must be an integer.",
            Some("amount"),
        ),
        (
            json!({"amount": "abc", "currency": "INR"}),
            "The amount must be an integer.",
            Some("amount"),
        ),
        (
            json!({"currency": "INR"}),
            "The amount field is required.",
            Some("amount"),
        ),
        (
            json!({"amount": 100}),
            "The currency field is required.",
            Some("currency"),
        ),
        (
            json!({"amount": 100, "currency": "INR", "receipt": "r".repeat(41)}),
            // The wording integrators report from real Razorpay.
            "receipt: the length must be no more than 40.",
            Some("receipt"),
        ),
        (
            json!({"amount": 100, "currency": "INR", "notes": notes}),
            "Number of notes fields should be less than or equal to 15",
            Some("notes"),
        ),
        (
            json!({"amount": 100, "currency": "INR", "colour": "blue"}),
            "colour is/are not required and should not be sent",
            Some("colour"),
        ),
    ];
    for (body, message, field) in cases {
        let (status, error) = w.api(Method::POST, "/v1/orders", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["description"], message, "{body}");
        assert_eq!(error["error"]["field"].as_str(), field, "{body}");
    }
    let receipt = json!({"amount": 100, "currency": "INR", "receipt": "topup_unique_1"});
    let (status, _) = w
        .api(Method::POST, "/v1/orders", Some(receipt.clone()))
        .await;
    assert_eq!(status, 200);
    let (status, error) = w.api(Method::POST, "/v1/orders", Some(receipt)).await;
    assert_eq!(
        (
            status,
            error["error"]["description"].as_str(),
            error["error"]["field"].as_str()
        ),
        (
            400,
            Some("An order with the same receipt value has already been created"),
            Some("receipt")
        ),
        "a receipt is unique per account"
    );
    let (status, error) = w
        .api(Method::GET, "/v1/orders/order_DoesNotExist01", None)
        .await;
    assert_eq!(
        (status, error["error"]["description"].as_str()),
        (400, Some("The id provided does not exist"))
    );
    let (status, error) = w.api(Method::GET, "/v1/payments/nonsense", None).await;
    assert_eq!(
        (status, error["error"]["description"].as_str()),
        (400, Some("nonsense is not a valid id"))
    );
    let (status, error) = w.api(Method::GET, "/v1/nowhere", None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("BAD_REQUEST_ERROR"))
    );
    let mut error = error;
    redact(&mut error);
    insta::assert_json_snapshot!("error_envelope", error);
}

#[tokio::test]
async fn payments_move_orders_through_their_states() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (_, failed) = w
        .pay(&order, json!({"method": "upi", "vpa": "failure@razorpay"}))
        .await;
    assert_eq!(failed["payment"]["status"], "failed");
    assert_eq!(failed["payment"]["fee"], Value::Null);
    let (_, attempted) = w
        .api(Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(
        (attempted["status"].as_str(), attempted["attempts"].as_i64()),
        (Some("attempted"), Some(1))
    );

    let (_, paid) = w
        .pay(&order, json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    let mut payment = paid["payment"].clone();
    assert_eq!(payment["status"], "captured");
    assert_eq!(
        (payment["fee"].as_i64(), payment["tax"].as_i64()),
        (Some(1000), Some(152))
    );
    assert_eq!(
        keys(&payment).len(),
        keys(&payment)
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    for key in keys(&sample("payment_captured_upi.json")) {
        assert!(payment.get(&key).is_some(), "the payment lacks {key}");
    }
    let (_, order_now) = w
        .api(Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(order_now["status"], "paid");
    assert_eq!(
        (
            order_now["amount_paid"].as_i64(),
            order_now["amount_due"].as_i64(),
            order_now["attempts"].as_i64()
        ),
        (Some(50_000), Some(0), Some(2))
    );
    let (_, list) = w
        .api(Method::GET, &format!("/v1/orders/{order}/payments"), None)
        .await;
    let statuses: Vec<_> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["status"].clone())
        .collect();
    assert_eq!(
        (list["entity"].as_str(), statuses),
        (Some("collection"), vec![json!("failed"), json!("captured")])
    );
    let (status, again) = w
        .pay(&order, json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    assert_eq!(
        (status, again["error"]["reason"].as_str()),
        (400, Some("order_already_paid"))
    );
    redact(&mut payment);
    insta::assert_json_snapshot!("payment_captured_upi", payment);
}

#[tokio::test]
async fn manual_capture_orders_wait_for_capture() {
    let w = world(Faults::default()).await;
    let (_, order) = w
        .api(
            Method::POST,
            "/v1/orders",
            Some(json!({"amount": 1000, "currency": "INR", "payment": {"capture": "manual"}})),
        )
        .await;
    let order = order["id"].as_str().expect("id").to_string();
    let (_, paid) = w
        .pay(&order, json!({"method": "netbanking", "bank": "HDFC"}))
        .await;
    let payment = paid["payment"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            paid["payment"]["status"].as_str(),
            paid["payment"]["fee"].clone()
        ),
        (Some("authorized"), Value::Null)
    );
    let capture = |amount: i64| json!({"amount": amount, "currency": "INR"});
    let (status, error) = w
        .api(
            Method::POST,
            &format!("/v1/payments/{payment}/capture"),
            Some(capture(999)),
        )
        .await;
    assert_eq!(
        (status, error["error"]["description"].as_str()),
        (
            400,
            Some("Capture amount must be equal to the amount authorized")
        )
    );
    let (status, captured) = w
        .api(
            Method::POST,
            &format!("/v1/payments/{payment}/capture"),
            Some(capture(1000)),
        )
        .await;
    assert_eq!(
        (
            status,
            captured["status"].as_str(),
            captured["captured"].as_bool()
        ),
        (200, Some("captured"), Some(true))
    );
    assert_eq!(captured["fee"].as_i64(), Some(20));
    let (status, error) = w
        .api(
            Method::POST,
            &format!("/v1/payments/{payment}/capture"),
            Some(capture(1000)),
        )
        .await;
    assert_eq!(
        (status, error["error"]["description"].as_str()),
        (400, Some("This payment has already been captured"))
    );
    let (_, order_now) = w
        .api(Method::GET, &format!("/v1/orders/{order}"), None)
        .await;
    assert_eq!(order_now["status"], "paid");
}

#[tokio::test]
async fn refunds_full_partial_and_idempotent() {
    let w = world(Faults::default()).await;
    let order = w.create_order(10_000).await;
    let (_, paid) = w
        .pay(&order, json!({"method": "wallet", "wallet": "payzapp"}))
        .await;
    let payment = paid["payment"]["id"].as_str().expect("id").to_string();
    let refund = |body: Value, key: &str| {
        let w = &w;
        let path = format!("/v1/payments/{payment}/refund");
        let key = key.to_string();
        async move {
            let response = w
                .http
                .post(w.url(&path))
                .basic_auth(KEY_ID, Some(common::KEY_SECRET))
                .header("X-Refund-Idempotency", key)
                .json(&body)
                .send()
                .await
                .expect("refund");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("json"),
            )
        }
    };
    let (status, first) = refund(json!({"amount": 4000}), "refund-key-0001").await;
    assert_eq!(
        (status, first["status"].as_str(), first["amount"].as_i64()),
        (200, Some("pending"), Some(4000)),
        "answered pending, like a normal-speed refund"
    );
    let (_, replay) = refund(json!({"amount": 4000}), "refund-key-0001").await;
    assert_eq!(
        replay["id"], first["id"],
        "same key, same body: the same refund"
    );
    let (status, reused) = refund(json!({"amount": 5000}), "refund-key-0001").await;
    assert_eq!(
        (status, reused["error"]["description"].as_str()),
        (
            409,
            Some("Different request with the same idempotency key has already been processed.")
        ),
        "same key, different body"
    );
    let (status, error) = refund(json!({"amount": 7000}), "refund-key-0002").await;
    assert_eq!(
        (status, error["error"]["description"].as_str()),
        (
            400,
            Some("The refund amount provided is greater than amount captured.")
        )
    );
    let (_, partial) = w
        .api(Method::GET, &format!("/v1/payments/{payment}"), None)
        .await;
    assert_eq!(
        (
            partial["status"].as_str(),
            partial["refund_status"].as_str(),
            partial["amount_refunded"].as_i64()
        ),
        (Some("captured"), Some("partial"), Some(4000))
    );
    let (status, rest) = refund(json!({}), "refund-key-0003").await;
    assert_eq!((status, rest["amount"].as_i64()), (200, Some(6000)));
    let (_, full) = w
        .api(Method::GET, &format!("/v1/payments/{payment}"), None)
        .await;
    assert_eq!(
        (full["status"].as_str(), full["refund_status"].as_str()),
        (Some("refunded"), Some("full"))
    );
    let fetched = w
        .api_until(
            &format!("/v1/refunds/{}", first["id"].as_str().expect("id")),
            |r| r["status"] == "processed",
        )
        .await;
    assert_eq!(
        (&fetched["id"], &fetched["amount"]),
        (&first["id"], &first["amount"])
    );
    assert_eq!(keys(&fetched), keys(&sample("refund_processed.json")));
    let (status, again) = refund(json!({}), "refund-key-0004").await;
    assert_eq!(
        (status, again["error"]["description"].as_str()),
        (400, Some("The payment has been fully refunded already."))
    );
    let (status, _) = refund(json!({}), "short").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn lists_paginate_newest_first() {
    let w = world(Faults::default()).await;
    let mut ids = Vec::new();
    for amount in [100, 200, 300] {
        ids.push(w.create_order(amount).await);
    }
    let (_, page) = w.api(Method::GET, "/v1/orders?count=2&skip=1", None).await;
    let got: Vec<_> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(got, vec![ids[1].clone(), ids[0].clone()]);
    assert_eq!(page["count"], 2);
    let (status, _) = w.api(Method::GET, "/v1/orders?count=101", None).await;
    assert_eq!(status, 400);
    let (_, none) = w
        .api(Method::GET, "/v1/payments?from=4000000000", None)
        .await;
    assert_eq!(none["count"], 0);
}

#[tokio::test]
async fn our_own_client_works_against_the_fake() {
    use razorpay::{Client, ClientConfig, Paise, Secret, wire::CreateOrder};
    let w = world(Faults::default()).await;
    let client = Client::new(ClientConfig::new(
        w.fake.url(),
        KEY_ID,
        Secret::new(common::KEY_SECRET),
    ))
    .expect("client");
    let order = client
        .create_order(&CreateOrder::inr(Paise(25_000)))
        .await
        .expect("order");
    let (_, paid) = w
        .pay(
            &order.id,
            json!({"method": "card", "number": "5500670000001002", "otp": "1234"}),
        )
        .await;
    let payment = client
        .fetch_payment(paid["payment"]["id"].as_str().expect("id"))
        .await
        .expect("payment");
    assert_eq!(payment.amount, Paise(25_000));
    let err = client
        .fetch_order("order_DoesNotExist01")
        .await
        .expect_err("unknown");
    assert!(matches!(err, razorpay::Error::NotFound(_)), "{err:?}");
}
