//! The app against people without an account: every rejection in its audience's shape, the
//! headers every page carries, rate limits, slow and greedy clients, bounded password hashing,
//! and a graceful stop on SIGTERM.

mod common;

use std::time::Duration;

use common::{Backend, TestApp, csrf_of, spawn_app_configured};
use fake_razorpay::Faults;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    api_rejections_are_json_with_a_code,
    webhook_rejections_are_json,
    password_requests_per_address_are_limited,
    page_rejections_are_the_error_page,
    pages_carry_csp_no_store_and_a_favicon,
    api_answers_carry_rate_limit_headers_and_unknown_keys_are_limited,
);

async fn new_key(app: &TestApp) -> String {
    let (_, page) = app.get_html("/api-keys").await;
    let page = app
        .post_form(
            "/api-keys",
            &[("csrf", &csrf_of(&page)), ("name", "hardening")],
        )
        .await
        .text()
        .await
        .expect("page");
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).expect("the key") + marker.len();
    page[start..].split('<').next().expect("key").to_string()
}

async fn assert_json_error(response: reqwest::Response, status: StatusCode, code: &str) {
    let got = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_string();
    let body = response.text().await.expect("body");
    assert_json_error_parts((got, content_type, body), status, code);
}

/// The same check on an answer read in parts (`TestApp::post_head_only`).
fn assert_json_error_parts(
    (got, content_type, body): (StatusCode, String, String),
    status: StatusCode,
    code: &str,
) {
    assert_eq!(got, status, "{code}");
    assert!(
        content_type.starts_with("application/json"),
        "{code}: {content_type}"
    );
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Under `/api/`, every refusal is the API's JSON error, whoever made it (our handlers, or the
/// framework: a wrong method, a body too large, an unknown path).
async fn api_rejections_are_json_with_a_code(app: TestApp) {
    app.sign_up("api@example.com").await;
    let key = new_key(&app).await;
    let http = common::browser();
    // A client per request: after a 413 the server closes the connection, which a pooled client
    // would only notice on its next request.
    let post = |path: &str| common::browser().post(app.at(path)).bearer_auth(&key);
    assert_json_error(
        post("/api/v1/charges")
            .header("idempotency-key", "k-400")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .expect("400"),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_json_error(
        http.get(app.at("/api/v1/balance"))
            .send()
            .await
            .expect("401"),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_json_error(
        http.get(app.at("/api/v1/nowhere"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("404"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_json_error(
        http.get(app.at("/api/nope")).send().await.expect("404"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let wrong_method = http
        .delete(app.at("/api/v1/charges"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("405");
    assert!(wrong_method.headers().contains_key("allow"));
    assert_json_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let bearer = format!("Bearer {key}");
    assert_json_error_parts(
        app.post_head_only(
            "/api/v1/charges",
            &[
                ("authorization", &bearer),
                ("idempotency-key", "k-413"),
                ("content-type", "application/json"),
            ],
            5 * 1024 * 1024,
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert_json_error(
        post("/api/v1/charges")
            .header("idempotency-key", "k-415")
            .header("content-type", "text/plain")
            .body(r#"{"service": "email", "quantity": 1}"#)
            .send()
            .await
            .expect("415"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_json_error(
        post("/api/v1/charges")
            .header("idempotency-key", "k-422")
            .json(&json!({"service": "email", "quantity": -3}))
            .send()
            .await
            .expect("422"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
    )
    .await;
    assert_json_error(
        post("/api/v1/charges")
            .header("idempotency-key", "k-402")
            .json(&json!({"service": "email", "quantity": 1}))
            .send()
            .await
            .expect("402"),
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_credits",
    )
    .await;
}

/// Razorpay, at the webhook endpoint, gets JSON too.
async fn webhook_rejections_are_json(app: TestApp) {
    let url = app.at("/webhooks/razorpay");
    assert_json_error(
        common::browser().get(&url).send().await.expect("405"),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_json_error_parts(
        app.post_head_only(
            "/webhooks/razorpay",
            &[("x-razorpay-signature", "00")],
            300 * 1024,
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    // Unannounced (chunked), the size is found by reading: cut off just past the limit.
    assert_json_error_parts(
        app.post_chunk_unannounced(
            "/webhooks/razorpay",
            &[("x-razorpay-signature", "00")],
            &[b'{'; 256 * 1024 + 1],
        )
        .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    assert_json_error(
        common::browser()
            .post(&url)
            .body("{}")
            .send()
            .await
            .expect("400"),
        StatusCode::BAD_REQUEST,
        "missing_signature",
    )
    .await;
}

/// Password requests from one address are limited whatever accounts they name (30 a minute).
///
/// The limiter refills one request every two seconds, and 30 password checks on a debug
/// build take a few seconds, so the test allows for the refill that elapsed rather than
/// counting on a fast machine.
async fn password_requests_per_address_are_limited(app: TestApp) {
    let (_, page) = app.get_html("/login").await;
    let csrf = csrf_of(&page);
    let started = std::time::Instant::now();
    let mut admitted = 0u64;
    let mut limited = false;
    for i in 0..80 {
        let r = app
            .client
            .post(app.at("/login"))
            .header("x-forwarded-for", "192.0.2.77")
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", &format!("someone{i}@example.com")),
                ("password", "not the password"),
            ])
            .send()
            .await
            .expect("log in");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            assert!(
                r.text()
                    .await
                    .expect("page")
                    .contains("Too many attempts from your network")
            );
            limited = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        admitted += 1;
    }
    let refilled = started.elapsed().as_secs() / 2 + 1;
    assert!(limited, "an address is stopped after thirty a minute");
    assert!(
        (30..=30 + refilled).contains(&admitted),
        "thirty a minute from one address (plus {refilled} refilled), admitted {admitted}"
    );
    let r = app
        .client
        .post(app.at("/login"))
        .header("x-forwarded-for", "192.0.2.78")
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "else@example.com"),
            ("password", "not the password"),
        ])
        .send()
        .await
        .expect("log in");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "another address is not limited"
    );
}

async fn assert_error_page(response: reqwest::Response, status: StatusCode, words: &str) {
    assert_eq!(response.status(), status, "{words}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_string();
    assert!(
        content_type.starts_with("text/html"),
        "{words}: {content_type}"
    );
    let page = response.text().await.expect("page");
    assert!(
        page.contains("Kalp Studio") && page.contains(words),
        "{words}: {page}"
    );
    assert!(
        !page.contains("Cannot parse") && !page.contains("Failed to deserialize"),
        "{page}"
    );
}

/// For people, every refusal is the app's error page: never the framework's raw text.
async fn page_rejections_are_the_error_page(app: TestApp) {
    app.sign_up("pages@example.com").await;
    assert_error_page(
        app.get("/billing/topups/abc").await,
        StatusCode::BAD_REQUEST,
        "could not be read",
    )
    .await;
    assert_error_page(
        app.get("/billing/history?from=2026-01-01&from=2026-02-01")
            .await,
        StatusCode::BAD_REQUEST,
        "could not be read",
    )
    .await;
    assert_error_page(
        app.get("/nowhere").await,
        StatusCode::NOT_FOUND,
        "Page not found",
    )
    .await;
    assert_error_page(
        app.client
            .put(app.at("/billing"))
            .send()
            .await
            .expect("405"),
        StatusCode::METHOD_NOT_ALLOWED,
        "does not accept PUT",
    )
    .await;
    let (_, page) = app.get_html("/billing/topup").await;
    let csrf = csrf_of(&page);
    let big = "9".repeat(20 * 1024);
    assert_error_page(
        app.post_form("/billing/topups", &[("csrf", &csrf), ("amount", &big)])
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than",
    )
    .await;
    assert_error_page(
        app.client
            .post(app.at("/billing/topups"))
            .json(&json!({"csrf": csrf, "amount": "100"}))
            .send()
            .await
            .expect("415"),
        StatusCode::BAD_REQUEST,
        "could not be read",
    )
    .await;
    assert_error_page(
        app.post_form("/billing/topups", &[("csrf", &csrf), ("amount", "ten")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Enter the amount",
    )
    .await;
}

/// Every page carries a Content-Security-Policy that allows no inline script, is never cached,
/// and has a favicon (as does the fake's checkout).
async fn pages_carry_csp_no_store_and_a_favicon(app: TestApp) {
    let (_, login) = app.get_html("/login").await;
    assert!(login.contains("rel=\"icon\"") && !login.contains("<script>"));
    app.sign_up("headers@example.com").await;
    for path in [
        "/dashboard",
        "/billing",
        "/billing/topup",
        "/api-keys",
        "/account",
    ] {
        let r = app.get(path).await;
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(
            csp.contains(&format!("form-action 'self' {}", app.fake.url())),
            "{csp}"
        );
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        let html = r.text().await.expect("page");
        assert!(html.contains("rel=\"icon\""), "{path}");
        assert!(!html.contains("<script>"), "{path} has an inline script");
    }
    let (_, redirect) = app.add_credits("100").await;
    assert!(!redirect.contains("<script>") && redirect.contains("/static/redirect.js"));
    for url in [
        app.at("/static/favicon.svg"),
        app.at("/favicon.ico"),
        format!("{}/favicon.svg", app.fake.url()),
    ] {
        let r = common::browser().get(&url).send().await.expect("favicon");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml", "{url}");
    }
    assert!(
        !app.get("/login")
            .await
            .headers()
            .contains_key("strict-transport-security"),
        "no HSTS over plain http"
    );
}

async fn api_answers_carry_rate_limit_headers_and_unknown_keys_are_limited(app: TestApp) {
    app.sign_up("limits@example.com").await;
    let key = new_key(&app).await;
    let r = common::browser()
        .get(app.at("/api/v1/balance"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("balance");
    assert_eq!(r.status(), StatusCode::OK);
    for header in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.headers().contains_key(header), "{header}");
    }
    assert_eq!(r.headers()["ratelimit-limit"], "400");
    // Made-up keys from one address: 60 lookups a minute (one more each second that
    // passes), then 429 without a lookup.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..70 {
        let r = common::browser()
            .get(app.at("/api/v1/balance"))
            .header("x-forwarded-for", "203.0.113.50")
            .bearer_auth(format!("kalp_live_madeup{i}"))
            .send()
            .await
            .expect("guess");
        assert!(r.headers().contains_key("ratelimit-remaining"));
        statuses.push(r.status());
    }
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let refilled = started.elapsed().as_secs() as usize + 1;
    assert_eq!(
        unauthorized + limited,
        70,
        "every guess is answered 401 or 429"
    );
    assert!(
        (60..=60 + refilled).contains(&unauthorized) && limited >= 1,
        "60 guesses a minute (plus {refilled} refilled): {unauthorized} looked up, {limited} limited"
    );
    // The real key, from the same address, still works (its own limit).
    let r = common::browser()
        .get(app.at("/api/v1/balance"))
        .header("x-forwarded-for", "203.0.113.50")
        .bearer_auth(&key)
        .send()
        .await
        .expect("balance");
    assert_eq!(r.status(), StatusCode::OK);
}

/// Served over https: HSTS, and every cookie Secure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_deployments_get_hsts_and_secure_cookies() {
    let app = spawn_app_configured(
        Backend::Sqlite,
        Faults::default(),
        &[("server.public_url", "https://credits.example.com")],
    )
    .await
    .expect("app");
    let r = app.get("/login").await;
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .expect("hsts")
            .contains("max-age=")
    );
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    assert!(!cookies.is_empty());
    assert!(
        cookies
            .iter()
            .all(|c| c.contains("Secure") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
}

/// A client that opens a connection and never finishes its headers is disconnected after the
/// header-read timeout; the app keeps answering others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let app = spawn_app_configured(
        Backend::Sqlite,
        Faults::default(),
        &[("server.header_read_timeout_secs", "1")],
    )
    .await
    .expect("app");
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("partial headers");
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer))
        .await
        .expect("closed within 5 s");
    assert!(
        matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buffer).contains("408"),
        "dropped: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// Beyond the connection cap, new connections are closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed() {
    let app = spawn_app_configured(
        Backend::Sqlite,
        Faults::default(),
        &[
            ("server.max_connections", "3"),
            ("server.header_read_timeout_secs", "30"),
        ],
    )
    .await
    .expect("app");
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect"),
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buffer))
        .await
        .expect("answered or closed at once");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, not served: {read:?}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "served again"
    );
}

/// A request that takes longer than the request timeout (Razorpay hanging) gets 408, as a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_gets_408() {
    let app = spawn_app_configured(
        Backend::Sqlite,
        Faults {
            api_timeout_percent: 100,
            api_timeout_ms: 5_000,
            ..Faults::default()
        },
        &[("server.request_timeout_secs", "1")],
    )
    .await
    .expect("app");
    app.sign_up("slow@example.com").await;
    let started = std::time::Instant::now();
    let (status, page) = app.add_credits("100").await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{page}");
    assert!(page.contains("took too long"), "{page}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// More log-ins at once than hashing workers and queue: the rest get 503 with Retry-After, at
/// once, instead of piling up memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_beyond_the_queue_answers_503() {
    let app = spawn_app_configured(
        Backend::Sqlite,
        Faults::default(),
        &[
            ("security.password_hash_workers", "1"),
            ("security.password_hash_queue", "1"),
        ],
    )
    .await
    .expect("app");
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let visitor = TestApp::fresh_browser(&app);
                let (_, page) = visitor.get_html("/login").await;
                let r = visitor
                    .client
                    .post(visitor.at("/login"))
                    .header("x-forwarded-for", format!("198.18.0.{i}"))
                    .form(&[
                        ("csrf", csrf_of(&page).as_str()),
                        ("email", &format!("nobody{i}@example.com")),
                        ("password", "not a real password"),
                    ])
                    .send()
                    .await
                    .expect("log in");
                (r.status(), r.headers().get("retry-after").is_some())
            })
        })
        .collect();
    let mut busy = 0;
    for task in tasks {
        match task.await.expect("task") {
            (StatusCode::UNAUTHORIZED, _) => {}
            (StatusCode::SERVICE_UNAVAILABLE, true) => busy += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(busy > 0, "some were turned away");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

/// SIGTERM while charges are in flight: the server stops accepting, answers what it accepted,
/// commits it, and exits 0. Every charge answered 201 is in the ledger; none other is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_answers_and_commits_the_charges_in_flight() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("kalp.db").display());
    let fake = fake_razorpay::spawn(fake_razorpay::FakeSettings::default(), Faults::default())
        .await
        .expect("fake");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let url = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_web"))
        .env("KALP__SERVER__PORT", port.to_string())
        .env("KALP__SERVER__PUBLIC_URL", &url)
        .env("KALP__DATABASE__URL", &database)
        .env("KALP__RAZORPAY__BASE_URL", fake.url())
        .env("KALP__RECONCILE__INTERVAL_SECS", "0")
        .env("KALP__USAGE__RATE_PER_SEC", "100000")
        .env("KALP__USAGE__RATE_BURST", "100000")
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("web starts");
    let client = common::browser();
    for _ in 0..200 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An account with credits and a key.
    let page = client
        .get(format!("{url}/signup"))
        .send()
        .await
        .expect("signup")
        .text()
        .await
        .expect("html");
    client
        .post(format!("{url}/signup"))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("email", "term@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("sign up");
    let settings = web::configuration::Settings::with_overrides(&[
        ("database.url", database.clone()),
        ("reconcile.interval_secs", "0".into()),
    ])
    .expect("settings");
    {
        let state = web::startup::connect(settings.clone()).await.expect("db");
        let wallet = state
            .ledger
            .find_wallet("user:term@example.com")
            .await
            .expect("wallet")
            .expect("exists");
        state
            .ledger
            .credit(ledger::Credit {
                wallet,
                amount: ledger::Credits::new(1_000_000).expect("credits"),
                kind: ledger::CreditKind::Grant,
                key: ledger::IdempotencyKey::new("term-grant").expect("key"),
                reference: None,
                memo: None,
                expires_at: None,
            })
            .await
            .expect("grant");
    }
    let keys_page = client
        .get(format!("{url}/api-keys"))
        .send()
        .await
        .expect("keys")
        .text()
        .await
        .expect("html");
    let created = client
        .post(format!("{url}/api-keys"))
        .form(&[("csrf", csrf_of(&keys_page).as_str()), ("name", "term")])
        .send()
        .await
        .expect("key")
        .text()
        .await
        .expect("html");
    let marker = "data-testid=\"new-key\">";
    let start = created.find(marker).expect("key") + marker.len();
    let key = created[start..].split('<').next().expect("key").to_string();

    // Eight clients charging as fast as they can; SIGTERM in the middle.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..8)
        .map(|client_no| {
            let (url, key, stop) = (url.clone(), key.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut charged = 0u64;
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    let sent = http
                        .post(format!("{url}/api/v1/charges"))
                        .bearer_auth(&key)
                        .header("idempotency-key", format!("term-{client_no}-{n}"))
                        .json(&json!({"service": "email", "quantity": 1}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::CREATED => charged += 1,
                        Ok(r) => panic!("a charge answered {}", r.status()),
                        Err(_) => break,
                    }
                }
                charged
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait")
        .expect("exit status");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(exited.success(), "exits cleanly: {exited}");
    let mut answered = 0;
    for task in tasks {
        answered += task.await.expect("task");
    }
    assert!(answered > 0, "charges were in flight");
    let state = web::startup::connect(settings).await.expect("reopen");
    let wallet = state
        .ledger
        .find_wallet("user:term@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    let spent = 1_000_000
        - state
            .ledger
            .balance(wallet)
            .await
            .expect("balance")
            .available;
    assert_eq!(spent as u64, answered, "every 201 committed, nothing else");
    assert!(state.ledger.audit().await.expect("audit").is_clean());
}
