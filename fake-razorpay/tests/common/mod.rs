//! A fake on a free port, a client for it, and a receiver that records webhooks.
#![allow(dead_code)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use fake_razorpay::{FakeSettings, Faults, RunningFake};
use serde_json::Value;

pub const KEY_ID: &str = "rzp_test_FakeTests00001";
pub const KEY_SECRET: &str = "fake_tests_key_secret";
pub const WEBHOOK_SECRET: &str = "fake_tests_webhook_secret";

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn event(&self) -> String {
        self.json()["event"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Records every webhook; answers 500 to the first `fail` requests.
#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<Received>>>,
    pub fail: Arc<Mutex<u32>>,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.received().iter().map(Received::event).collect()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} webhooks, got {:?}", self.events());
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut fail = r.fail.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    r.got.lock().expect("lock").push(Received { headers, body });
    StatusCode::OK
}

pub struct World {
    pub fake: RunningFake,
    pub receiver: Receiver,
    pub http: reqwest::Client,
}

pub async fn world(faults: Faults) -> World {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new()
        .route("/webhooks", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
    let settings = FakeSettings {
        key_id: KEY_ID.into(),
        key_secret: KEY_SECRET.into(),
        webhook_url: Some(format!("http://{addr}/webhooks")),
        webhook_secret: WEBHOOK_SECRET.into(),
        webhook_backoff: Duration::from_millis(20),
        webhook_max_attempts: 5,
        ..FakeSettings::default()
    };
    let fake = fake_razorpay::spawn(settings, faults)
        .await
        .expect("fake starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    World {
        fake,
        receiver,
        http,
    }
}

impl World {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.url())
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .basic_auth(KEY_ID, Some(KEY_SECRET));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let json = response.json::<Value>().await.expect("JSON answer");
        (status, json)
    }

    /// An order with a receipt of its own (Razorpay keeps receipts unique per account).
    pub async fn create_order(&self, amount: i64) -> String {
        static RECEIPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let receipt = format!(
            "topup_{}",
            RECEIPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (status, order) = self
            .api(
                reqwest::Method::POST,
                "/v1/orders",
                Some(serde_json::json!({"amount": amount, "currency": "INR", "receipt": receipt})),
            )
            .await;
        assert_eq!(status, 200, "{order}");
        order["id"].as_str().expect("order id").to_string()
    }

    /// Switches the faults while running, as `POST /_fake/faults` does.
    pub async fn set_faults(&self, faults: Value) {
        let r = self
            .http
            .post(self.url("/_fake/faults"))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert_eq!(r.status(), 200);
    }

    /// Posts to the control API and returns the status and JSON answer.
    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("control");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }

    /// Polls `GET path` until `done` holds for the answer (up to 5 s).
    pub async fn api_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..250 {
            let (_, value) = self.api(reqwest::Method::GET, path, None).await;
            if done(&value) {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{path} never reached the expected state");
    }

    pub async fn pay(&self, order: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/_fake/orders/{order}/pay")))
            .json(&body)
            .send()
            .await
            .expect("pay");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }
}

/// Replaces values that change from run to run, for snapshots.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let volatile = matches!(
                    key.as_str(),
                    "id" | "order_id"
                        | "payment_id"
                        | "card_id"
                        | "created_at"
                        | "auth_code"
                        | "rrn"
                        | "upi_transaction_id"
                        | "bank_transaction_id"
                        | "transaction_id"
                        | "account_id"
                );
                if volatile && !v.is_null() {
                    *v = Value::String(format!("[{key}]"));
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Reads `<input type="hidden" name=… value=…>` pairs out of a page.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            part.split_once(&format!("{name}=\""))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(v, _)| unescape(v))
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The checkout session id in a page's links.
pub fn session_id(html: &str) -> String {
    let start = html.find("/checkout/chk_").expect("a checkout link") + "/checkout/".len();
    html[start..start + 18].to_string()
}
