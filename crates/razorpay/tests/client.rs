//! The client against a mock Razorpay (wiremock): every endpoint, status and error shape,
//! retries (and that unsafe writes are not retried), and timeouts.

use std::time::Duration;

use razorpay::{
    Client, ClientConfig, Error, Paise, RetryPolicy, Secret,
    wire::{
        CaptureRequest, CreateOrder, CreateRefund, ListQuery, Notes, OrderStatus, PaymentMethod,
        PaymentStatus, RefundState,
    },
};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path, query_param},
};

const KEY_ID: &str = "rzp_test_1DP5mmOlF5G5ag";
const KEY_SECRET: &str = "thisisasecretkey";
// base64("rzp_test_1DP5mmOlF5G5ag:thisisasecretkey")
const BASIC_AUTH: &str = "Basic cnpwX3Rlc3RfMURQNW1tT2xGNUc1YWc6dGhpc2lzYXNlY3JldGtleQ==";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../fixtures/razorpay/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    }
}

fn client_for(server: &MockServer) -> Client {
    let mut config = ClientConfig::new(server.uri(), KEY_ID, Secret::new(KEY_SECRET));
    config.retry = fast_retries();
    config.request_timeout = Duration::from_millis(500);
    Client::new(config).expect("client")
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording is on")
}

#[tokio::test]
async fn creates_an_order_with_basic_auth_and_only_the_fields_razorpay_accepts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/orders"))
        .and(header("authorization", BASIC_AUTH))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({
            "amount": 5000, "currency": "INR", "receipt": "receipt#1", "notes": {"key1": "value3"}
        })))
        .respond_with(json(200, "order_created.json"))
        .expect(1)
        .mount(&server)
        .await;
    let mut request = CreateOrder::inr(Paise(5000));
    request.receipt = Some("receipt#1".into());
    request.notes = Notes::new().with("key1", "value3");
    let order = client_for(&server)
        .create_order(&request)
        .await
        .expect("order");
    assert_eq!(order.id, "order_RB58MiP5SPFYyM");
    assert_eq!(order.amount, Paise(5000));
    assert_eq!(order.status, OrderStatus::Created);
    let sent = requests(&server).await;
    insta::assert_snapshot!(
        "create_order_request",
        String::from_utf8_lossy(&sent[0].body)
    );
}

#[tokio::test]
async fn fetches_orders_payments_and_refunds() {
    let server = MockServer::start().await;
    for (route, file) in [
        ("/v1/orders/order_DaaS6LOUAASb7Y", "order_paid.json"),
        (
            "/v1/orders/order_JIjgzcBIYkkDo0/payments",
            "order_payments.json",
        ),
        (
            "/v1/payments/pay_29QQoUBi66xm2f",
            "payment_captured_netbanking.json",
        ),
        ("/v1/refunds/rfnd_FP8QHiV938haTz", "refund_processed.json"),
        (
            "/v1/payments/pay_29QQoUBi66xm2f/refunds",
            "refunds_of_a_payment.json",
        ),
    ] {
        Mock::given(method("GET"))
            .and(path(route))
            .and(header("authorization", BASIC_AUTH))
            .respond_with(json(200, file))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client_for(&server);
    let order = client
        .fetch_order("order_DaaS6LOUAASb7Y")
        .await
        .expect("order");
    assert_eq!(
        (order.status, order.amount_paid, order.amount_due),
        (OrderStatus::Paid, Paise(100_000), Paise(0))
    );

    let payments = client
        .order_payments("order_JIjgzcBIYkkDo0")
        .await
        .expect("payments");
    let statuses: Vec<_> = payments.items.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        vec![PaymentStatus::Failed, PaymentStatus::Captured]
    );

    let payment = client
        .fetch_payment("pay_29QQoUBi66xm2f")
        .await
        .expect("payment");
    assert_eq!(payment.method, PaymentMethod::Netbanking);
    assert_eq!(payment.bank.as_deref(), Some("HDFC"));

    let refund = client
        .fetch_refund("rfnd_FP8QHiV938haTz")
        .await
        .expect("refund");
    assert_eq!(refund.status, RefundState::Processed);

    let refunds = client
        .payment_refunds("pay_29QQoUBi66xm2f")
        .await
        .expect("refunds");
    let states: Vec<_> = refunds.items.iter().map(|r| r.status).collect();
    assert_eq!(states, vec![RefundState::Pending, RefundState::Processed]);
}

#[tokio::test]
async fn lists_orders_and_payments_with_pagination() {
    let server = MockServer::start().await;
    for route in ["/v1/orders", "/v1/payments", "/v1/refunds"] {
        Mock::given(method("GET"))
            .and(path(route))
            .and(query_param("from", "1700000000"))
            .and(query_param("to", "1700086400"))
            .and(query_param("count", "100"))
            .and(query_param("skip", "200"))
            .respond_with(json(200, "collection_empty.json"))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client_for(&server);
    let query = ListQuery {
        from: Some(1_700_000_000),
        to: Some(1_700_086_400),
        count: Some(100),
        skip: Some(200),
    };
    assert_eq!(client.list_orders(&query).await.expect("orders").count, 0);
    assert!(
        client
            .list_payments(&query)
            .await
            .expect("payments")
            .items
            .is_empty()
    );
    assert_eq!(client.list_refunds(&query).await.expect("refunds").count, 0);
    let bad = ListQuery {
        count: Some(101),
        ..ListQuery::default()
    };
    assert!(matches!(
        client.list_payments(&bad).await,
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn captures_and_refunds_with_an_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payments/pay_G8VQzjPLoAvm6D/capture"))
        .and(body_json(
            serde_json::json!({"amount": 1000, "currency": "INR"}),
        ))
        .respond_with(json(200, "payment_captured_upi.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payments/pay_29QQoUBi66xm2f/refund"))
        .and(header("x-refund-idempotency", "refund-topup-42"))
        .and(body_json(
            serde_json::json!({"amount": 500100, "speed": "normal"}),
        ))
        .respond_with(json(200, "refund_processed.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_for(&server);
    let capture = CaptureRequest {
        amount: Paise(1000),
        currency: "INR".into(),
    };
    let captured = client
        .capture_payment("pay_G8VQzjPLoAvm6D", &capture)
        .await
        .expect("capture");
    assert_eq!(captured.status, PaymentStatus::Captured);
    let refund = CreateRefund {
        amount: Some(Paise(500_100)),
        speed: Some(razorpay::wire::RefundSpeed::Normal),
        ..CreateRefund::default()
    };
    let made = client
        .refund_payment("pay_29QQoUBi66xm2f", &refund, Some("refund-topup-42"))
        .await
        .expect("refund");
    assert_eq!(made.amount, Paise(500_100));
    let err = client
        .refund_payment("pay_29QQoUBi66xm2f", &refund, Some("short"))
        .await;
    assert!(matches!(err, Err(Error::InvalidRequest(_))), "{err:?}");
}

#[tokio::test]
async fn each_error_shape_becomes_its_typed_error() {
    let server = MockServer::start().await;
    let cases = [
        (
            "/v1/orders/order_aaaaaaaaaaaaaa",
            json(400, "error_id_does_not_exist.json"),
        ),
        (
            "/v1/orders/order_bbbbbbbbbbbbbb",
            json(401, "error_authentication.json"),
        ),
        (
            "/v1/orders/order_cccccccccccccc",
            json(400, "error_amount_too_small.json"),
        ),
        (
            "/v1/orders/order_dddddddddddddd",
            json(429, "error_server.json").insert_header("retry-after", "0"),
        ),
        (
            "/v1/orders/order_eeeeeeeeeeeeee",
            json(500, "error_server.json"),
        ),
        (
            "/v1/orders/order_ffffffffffffff",
            ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"),
        ),
        (
            "/v1/orders/order_gggggggggggggg",
            ResponseTemplate::new(200).set_body_string("not json"),
        ),
        (
            "/v1/orders/order_hhhhhhhhhhhhhh",
            ResponseTemplate::new(400).set_body_string(""),
        ),
        (
            "/v1/orders/order_iiiiiiiiiiiiii",
            json(200, "order_payments.json"),
        ),
    ];
    for (route, response) in cases {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let mut config = ClientConfig::new(server.uri(), KEY_ID, Secret::new(KEY_SECRET));
    config.retry = RetryPolicy::none();
    let client = Client::new(config).expect("client");
    let fetch = |id: &'static str| {
        let client = client.clone();
        async move { client.fetch_order(id).await.expect_err("an error") }
    };

    let e = fetch("order_aaaaaaaaaaaaaa").await;
    assert!(
        matches!(&e, Error::NotFound(api) if api.status == 400),
        "{e:?}"
    );
    let e = fetch("order_bbbbbbbbbbbbbb").await;
    assert!(
        matches!(&e, Error::Authentication(api) if api.description.contains("api key")),
        "{e:?}"
    );
    let e = fetch("order_cccccccccccccc").await;
    match &e {
        Error::BadRequest(api) => {
            assert_eq!(api.code, "BAD_REQUEST_ERROR");
            assert_eq!(api.field.as_deref(), Some("amount"));
            assert_eq!(api.source.as_deref(), Some("business"));
            assert_eq!(api.step.as_deref(), Some("payment_initiation"));
            assert_eq!(api.reason.as_deref(), Some("input_validation_failed"));
        }
        other => panic!("{other:?}"),
    }
    let e = fetch("order_dddddddddddddd").await;
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::ZERO),
        "{e:?}"
    );
    let e = fetch("order_eeeeeeeeeeeeee").await;
    assert!(
        matches!(&e, Error::Server(api) if api.code == "SERVER_ERROR"),
        "{e:?}"
    );
    let e = fetch("order_ffffffffffffff").await;
    assert!(
        matches!(&e, Error::Gateway(api) if api.status == 502),
        "{e:?}"
    );
    let e = fetch("order_gggggggggggggg").await;
    assert!(
        matches!(e, Error::UnexpectedBody { status: 200, .. }),
        "{e:?}"
    );
    let e = fetch("order_hhhhhhhhhhhhhh").await;
    assert!(
        matches!(e, Error::UnexpectedBody { status: 400, .. }),
        "{e:?}"
    );
    // A collection where an order belongs is not what Razorpay documents.
    let e = fetch("order_iiiiiiiiiiiiii").await;
    assert!(
        matches!(e, Error::UnexpectedBody { status: 200, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn reads_are_retried_through_server_errors() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/pay_29QQoUBi66xm2f"))
        .respond_with(json(503, "error_server.json"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payments/pay_29QQoUBi66xm2f"))
        .respond_with(json(200, "payment_captured_netbanking.json"))
        .mount(&server)
        .await;
    let payment = client_for(&server)
        .fetch_payment("pay_29QQoUBi66xm2f")
        .await
        .expect("third try");
    assert_eq!(payment.id, "pay_29QQoUBi66xm2f");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn reads_give_up_after_the_attempt_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(500, "error_server.json"))
        .mount(&server)
        .await;
    let err = client_for(&server)
        .fetch_order("order_RB58MiP5SPFYyM")
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn unsafe_writes_are_not_retried_once_they_may_have_reached_razorpay() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(500, "error_server.json"))
        .mount(&server)
        .await;
    let client = client_for(&server);
    let err = client
        .create_order(&CreateOrder::inr(Paise(10_000)))
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    let capture = CaptureRequest {
        amount: Paise(1000),
        currency: "INR".into(),
    };
    let err = client
        .capture_payment("pay_G8VQzjPLoAvm6D", &capture)
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    let err = client
        .refund_payment("pay_29QQoUBi66xm2f", &CreateRefund::default(), None)
        .await
        .expect_err("fails");
    assert!(matches!(err, Error::Server(_)), "{err:?}");
    assert_eq!(
        requests(&server).await.len(),
        3,
        "one request each, no retries"
    );
}

#[tokio::test]
async fn idempotent_refunds_are_retried_with_the_same_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(409).set_body_raw(
            r#"{"error":{"code":"BAD_REQUEST_ERROR","description":"Request is being processed"}}"#,
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(502, "error_server.json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(200, "refund_processed.json"))
        .mount(&server)
        .await;
    let refund = client_for(&server)
        .refund_payment(
            "pay_29QQoUBi66xm2f",
            &CreateRefund::default(),
            Some("refund-pay_29QQoUBi66xm2f"),
        )
        .await
        .expect("third try");
    assert_eq!(refund.id, "rfnd_FP8QHiV938haTz");
    let sent = requests(&server).await;
    assert_eq!(sent.len(), 3);
    for request in sent {
        let key = request
            .headers
            .get("x-refund-idempotency")
            .and_then(|v| v.to_str().ok());
        assert_eq!(key, Some("refund-pay_29QQoUBi66xm2f"));
    }
}

#[tokio::test]
async fn timeouts_are_typed_and_retried_only_for_reads() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(200, "order_created.json").set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(200, "order_created.json").set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut config = ClientConfig::new(server.uri(), KEY_ID, Secret::new(KEY_SECRET));
    config.retry = fast_retries();
    config.request_timeout = Duration::from_millis(100);
    let client = Client::new(config).expect("client");
    let err = client
        .fetch_order("order_RB58MiP5SPFYyM")
        .await
        .expect_err("slow");
    assert!(matches!(err, Error::Timeout), "{err:?}");
    let err = client
        .create_order(&CreateOrder::inr(Paise(10_000)))
        .await
        .expect_err("slow");
    assert!(matches!(err, Error::Timeout), "{err:?}");
    let sent = requests(&server).await;
    let gets = sent
        .iter()
        .filter(|r| r.method == wiremock::http::Method::GET)
        .count();
    let posts = sent
        .iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .count();
    assert_eq!((gets, posts), (3, 1));
}

#[tokio::test]
async fn a_write_that_could_not_connect_is_retried_and_reported_as_such() {
    // Nothing listens on this port: the request provably never reached anyone.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut config = ClientConfig::new(
        format!("http://127.0.0.1:{port}"),
        KEY_ID,
        Secret::new(KEY_SECRET),
    );
    config.retry = fast_retries();
    let started = std::time::Instant::now();
    let err = Client::new(config)
        .expect("client")
        .create_order(&CreateOrder::inr(Paise(10_000)))
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    // Two retries: at least the two shortest backoffs (3.75 ms + 7.5 ms) went by.
    assert!(started.elapsed() >= Duration::from_millis(10));
}

#[tokio::test]
async fn bad_ids_and_settings_are_refused_before_sending() {
    let server = MockServer::start().await;
    let client = client_for(&server);
    for id in ["", "../v1/orders", "pay_1?x=1", "pay 1", "pay_1/capture"] {
        assert!(
            matches!(
                client.fetch_payment(id).await,
                Err(Error::InvalidRequest(_))
            ),
            "{id:?}"
        );
    }
    let mut long_receipt = CreateOrder::inr(Paise(100));
    long_receipt.receipt = Some("r".repeat(41));
    assert!(matches!(
        client.create_order(&long_receipt).await,
        Err(Error::InvalidRequest(_))
    ));
    assert!(requests(&server).await.is_empty());

    for (base, key, secret) in [
        ("not a url", KEY_ID, KEY_SECRET),
        ("ftp://example.com", KEY_ID, KEY_SECRET),
        ("http://127.0.0.1:1", "", KEY_SECRET),
        ("http://127.0.0.1:1", "rzp_test_x ", KEY_SECRET),
        ("http://127.0.0.1:1", KEY_ID, "secret\n"),
    ] {
        let config = ClientConfig::new(base, key, Secret::new(secret));
        assert!(
            matches!(Client::new(config), Err(Error::Config(_))),
            "{base} {key:?}"
        );
    }
}

#[tokio::test]
async fn the_key_secret_never_prints() {
    let config = ClientConfig::new("https://api.razorpay.com", KEY_ID, Secret::new(KEY_SECRET));
    assert!(!format!("{config:?}").contains(KEY_SECRET));
    let client = Client::new(config).expect("client");
    assert!(!format!("{client:?}").contains(KEY_SECRET));
}
