//! zero2prod-style test harness: the real app on a random port with a fresh database (SQLite in a
//! temp file, or a fresh PostgreSQL schema when KALP_TEST_POSTGRES_URL is set), fake-razorpay
//! in-process, and a browser-like client (cookies kept, redirects not followed).
#![allow(dead_code)]

use fake_razorpay::{Faults, RunningFake};
use reqwest::{Client, Response, StatusCode};
use web::{configuration::Settings, startup::Application, state::AppState};

pub struct TestApp {
    pub url: String,
    pub fake: RunningFake,
    pub state: AppState,
    /// Stops this app and every other instance it started, when the test ends (a simulation
    /// starts hundreds; left running, their workers slow everything after them).
    stop: tokio::sync::watch::Sender<bool>,
    pub client: Client,
    pub settings: Settings,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Starts the app on `backend`; `None` when PostgreSQL was asked for and is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Faults::default()).await
}

pub async fn spawn_app_with(backend: Backend, faults: Faults) -> Option<TestApp> {
    spawn_app_configured(backend, faults, &[]).await
}

/// [`spawn_app_with`], with some settings of the app replaced (keys like `server.port`).
pub async fn spawn_app_configured(
    backend: Backend,
    faults: Faults,
    settings: &[(&str, &str)],
) -> Option<TestApp> {
    let fake_settings = fake_razorpay::FakeSettings {
        webhook_backoff: std::time::Duration::from_millis(50),
        webhook_max_attempts: 6,
        ..fake_razorpay::FakeSettings::default()
    };
    let fake = fake_razorpay::spawn(fake_settings, faults)
        .await
        .expect("fake-razorpay");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let (database, schema, dir, pg) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let db = format!("sqlite://{}?mode=rwc", dir.path().join("kalp.db").display());
            (db, None, Some(dir), None)
        }
        Backend::Postgres => {
            let pg_url = postgres_url()?;
            let schema = format!(
                "w_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            );
            (
                pg_url.clone(),
                Some(schema.clone()),
                None,
                Some((pg_url, schema)),
            )
        }
    };
    let mut overrides = vec![
        ("server.public_url", url.clone()),
        ("database.url", database),
        ("razorpay.base_url", fake.url()),
        // Tests run reconciliation themselves, when they mean to.
        ("reconcile.interval_secs", "0".to_string()),
        (
            "razorpay.webhook_previous_secret",
            "previous_webhook_secret".to_string(),
        ),
        // Tests speak for several clients from one machine (limits are per address).
        ("server.client_ip_header", "x-forwarded-for".to_string()),
        // No SMTP server: emails wait in the outbox, and the tests about email send them.
        ("email.smtp_url", String::new()),
        // Retries a second apart (then doubling), parked after three attempts.
        ("email.retry_base_secs", "1".to_string()),
        ("email.max_attempts", "3".to_string()),
    ];
    if let Some(schema) = schema {
        overrides.push(("database.schema", schema));
    }
    for (key, value) in settings {
        overrides.retain(|(k, _)| k != key);
        overrides.push((key, value.to_string()));
    }
    let settings = Settings::with_overrides(&overrides).expect("settings");
    let app = Application::build_on(settings.clone(), listener)
        .await
        .expect("app builds");
    let state = app.state.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run_until_stopped(until_stopped(stopped)));
    fake.fake
        .set_webhook(Some(format!("{url}/webhooks/razorpay")), None);
    Some(TestApp {
        stop,
        url,
        fake,
        state,
        client: browser(),
        settings,
        _dir: dir,
        pg,
    })
}

pub fn postgres_url() -> Option<String> {
    let url = std::env::var("KALP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("KALP_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "KALP_REQUIRE_POSTGRES=1 but KALP_TEST_POSTGRES_URL is not set"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set KALP_TEST_POSTGRES_URL to run the PostgreSQL variant"
        );
    }
    url
}

/// Resolves once the test app is told to stop (or dropped).
async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some((url, schema)) = self.pg.take() {
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    use sea_orm::ConnectionTrait;
                    if let Ok(db) = sea_orm::Database::connect(url).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs an async scenario `fn(TestApp)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::spawn_app($crate::common::Backend::Sqlite).await.expect("app");
                super::$scenario(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::common::spawn_app($crate::common::Backend::Postgres).await else { return };
                super::$scenario(app).await;
            }
        }
    )+};
}

/// `name="csrf" value="…"` from a page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..start + 64].to_string()
}

pub fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// `<input type="hidden" name=… value=…>` pairs of a page.
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

/// The `action` of the form with the given id.
pub fn form_action(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let form_start = html[..html.find(&marker).expect("the form")]
        .rfind("<form")
        .expect("form tag");
    let tag = &html[form_start..];
    let action = tag
        .split_once("action=\"")
        .expect("action")
        .1
        .split_once('"')
        .expect("quote")
        .0;
    unescape(action)
}

pub fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// How a person pays on the checkout.
#[derive(Debug, Clone)]
pub enum Pay {
    UpiId(&'static str),
    UpiQr,
    Card {
        number: &'static str,
        otp: &'static str,
    },
    Netbanking {
        bank: &'static str,
        success: bool,
    },
    Wallet {
        wallet: &'static str,
        success: bool,
    },
}

impl TestApp {
    /// The same app and fake, seen by another browser (another person).
    pub fn fresh_browser(app: &TestApp) -> Visitor {
        Visitor {
            url: app.url.clone(),
            client: browser(),
            state: app.state.clone(),
            fake_url: app.fake.url(),
        }
    }
}

/// Another person using the same app.
pub struct Visitor {
    pub url: String,
    pub client: Client,
    pub state: AppState,
    pub fake_url: String,
}

macro_rules! browsing {
    ($t:ty) => {
        impl $t {
            pub fn at(&self, path: &str) -> String {
                format!("{}{path}", self.url)
            }

            pub async fn get(&self, path: &str) -> Response {
                self.client.get(self.at(path)).send().await.expect("GET")
            }

            pub async fn get_html(&self, path: &str) -> (StatusCode, String) {
                let r = self.get(path).await;
                (r.status(), r.text().await.expect("body"))
            }

            pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
                self.client
                    .post(self.at(path))
                    .form(form)
                    .send()
                    .await
                    .expect("POST")
            }

            /// Signs up as `email` (password `correct horse battery`) and stays signed in.
            pub async fn sign_up(&self, email: &str) {
                let (_, page) = self.get_html("/signup").await;
                let csrf = csrf_of(&page);
                let r = self
                    .post_form(
                        "/signup",
                        &[
                            ("csrf", &csrf),
                            ("email", email),
                            ("password", "correct horse battery"),
                        ],
                    )
                    .await;
                assert_eq!(
                    r.status(),
                    StatusCode::SEE_OTHER,
                    "{}",
                    r.text().await.unwrap_or_default()
                );
            }

            /// The balance shown as My Credits on Billing.
            pub async fn balance_on_billing(&self) -> String {
                let (_, page) = self.get_html("/billing").await;
                let marker = "data-testid=\"balance\">";
                let start = page.find(marker).expect("My Credits") + marker.len();
                page[start..]
                    .split('<')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }
        }
    };
}

browsing!(TestApp);
browsing!(Visitor);

impl TestApp {
    /// Another instance of the app on the same database (a second server, or the app restarted
    /// after a crash). Returns its state and URL; it serves until the test ends.
    pub async fn another_instance(&self) -> (AppState, String) {
        self.another_instance_with(|_| {}).await
    }

    /// [`TestApp::another_instance`], with some settings changed.
    pub async fn another_instance_with(
        &self,
        change: impl FnOnce(&mut Settings),
    ) -> (AppState, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let mut settings = self.settings.clone();
        change(&mut settings);
        settings.server.public_url = url.clone();
        let app = Application::build_on(settings, listener)
            .await
            .expect("instance builds");
        let state = app.state.clone();
        tokio::spawn(app.run_until_stopped(until_stopped(self.stop.subscribe())));
        (state, url)
    }

    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..200 {
            if check().await {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// The wallet balance of the signed-in person, from the ledger.
    pub async fn credits_of(&self, email: &str) -> i64 {
        let wallet = self
            .state
            .ledger
            .find_wallet(&format!("user:{email}"))
            .await
            .expect("wallet")
            .expect("exists");
        self.state
            .ledger
            .balance(wallet)
            .await
            .expect("balance")
            .available
    }

    /// Runs reconciliation now, for every top-up regardless of age.
    pub async fn reconcile(&self) -> web::reconcile::ReconcileReport {
        web::reconcile::run_once(
            &self.state,
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(86_400),
        )
        .await
        .expect("reconciliation")
    }

    /// Sends a Razorpay-signed webhook straight to `url`'s endpoint.
    pub async fn send_webhook(
        &self,
        url: &str,
        event_id: &str,
        body: &str,
        secret: &str,
    ) -> StatusCode {
        self.webhook_answer(url, event_id, body, secret).await.0
    }

    /// Sends a Razorpay-signed webhook straight to `url`'s endpoint: its status and JSON answer.
    pub async fn webhook_answer(
        &self,
        url: &str,
        event_id: &str,
        body: &str,
        secret: &str,
    ) -> (StatusCode, serde_json::Value) {
        let signature =
            razorpay::signature::webhook_signature(body.as_bytes(), &razorpay::Secret::new(secret));
        let answer = browser()
            .post(format!("{url}/webhooks/razorpay"))
            .header("content-type", "application/json")
            .header("x-razorpay-signature", signature)
            .header("x-razorpay-event-id", event_id)
            .body(body.to_string())
            .send()
            .await
            .expect("webhook");
        let status = answer.status();
        (status, answer.json().await.unwrap_or_default())
    }

    /// Every webhook event stored and processed.
    pub async fn webhooks_settled(&self) -> bool {
        // Deliveries first: once none is pending, every event delivered is stored (the app
        // stores an event before it answers), so the count below sees them all.
        let delivered = self
            .fake
            .fake
            .deliveries()
            .iter()
            .all(|d| d.status != fake_razorpay::DeliveryStatus::Pending);
        let pending = web::store::webhook_events::unprocessed(&self.state.reads)
            .await
            .expect("count");
        delivered && pending == 0
    }

    /// Add Credits, then pay the order with the fake's control API (no browser): returns the
    /// top-up page path and the fake's answer (payment and callback fields).
    pub async fn pay_directly(
        &self,
        amount: &str,
        body: serde_json::Value,
    ) -> (String, serde_json::Value) {
        let (status, page) = self.add_credits(amount).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let fields = hidden_fields(&page);
        let order = field(&fields, "order_id");
        let callback = field(&fields, "callback_url");
        let answer: serde_json::Value = self
            .client
            .post(format!("{}/_fake/orders/{order}/pay", self.fake.url()))
            .json(&body)
            .send()
            .await
            .expect("pay")
            .json()
            .await
            .expect("json");
        let path = callback
            .trim_start_matches(&self.url)
            .trim_end_matches("/callback")
            .to_string();
        let mut answer = answer;
        answer["callback_url"] = serde_json::Value::String(callback);
        answer["order_id"] = serde_json::Value::String(order);
        (path, answer)
    }

    /// Posts the callback fields the fake returned, as the browser would.
    pub async fn post_callback(&self, answer: &serde_json::Value) -> StatusCode {
        let form: Vec<(String, String)> = answer["callback"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        browser()
            .post(answer["callback_url"].as_str().expect("callback url"))
            .form(&form)
            .send()
            .await
            .expect("callback")
            .status()
    }

    pub async fn csrf(&self) -> String {
        let (_, page) = self.get_html("/billing/topup").await;
        csrf_of(&page)
    }

    /// Add Credits with `amount`: the redirect page that hands the browser to Razorpay.
    pub async fn add_credits(&self, amount: &str) -> (StatusCode, String) {
        let csrf = self.csrf().await;
        let r = self
            .post_form("/billing/topups", &[("csrf", &csrf), ("amount", amount)])
            .await;
        (r.status(), r.text().await.expect("body"))
    }

    /// The whole journey from Add Credits to the page Razorpay's callback leads to.
    /// Returns the top-up's page path and its HTML.
    pub async fn top_up(&self, amount: &str, pay: Pay) -> (String, String) {
        let (status, redirect) = self.add_credits(amount).await;
        assert_eq!(status, StatusCode::OK, "{redirect}");
        assert!(redirect.contains("Redirecting you to Razorpay"));
        let action = form_action(&redirect, "checkout");
        assert_eq!(action, format!("{}/v1/checkout/embedded", self.fake.url()));
        let fields = hidden_fields(&redirect);
        let checkout = self
            .client
            .post(&action)
            .form(&fields)
            .send()
            .await
            .expect("checkout");
        assert_eq!(checkout.status(), StatusCode::OK);
        let page = checkout.text().await.expect("checkout page");
        let start = page.find("/checkout/chk_").expect("checkout session") + "/checkout/".len();
        let sid = &page[start..start + 18];
        let fake = self.fake.url();
        let post = |path: String, form: Vec<(&'static str, String)>| {
            let client = self.client.clone();
            async move { client.post(path).form(&form).send().await.expect("pay") }
        };
        let result = match pay {
            Pay::UpiId(vpa) => {
                post(
                    format!("{fake}/checkout/{sid}/upi"),
                    vec![("vpa", vpa.into())],
                )
                .await
            }
            Pay::UpiQr => post(format!("{fake}/checkout/{sid}/upi/scan"), vec![]).await,
            Pay::Card { number, otp } => {
                let card = vec![
                    ("number", number.into()),
                    ("expiry", "12/34".into()),
                    ("cvv", "123".into()),
                    ("name", "Asha Rao".into()),
                ];
                let r = post(format!("{fake}/checkout/{sid}/card"), card).await;
                assert_eq!(r.status(), StatusCode::SEE_OTHER);
                post(
                    format!("{fake}/checkout/{sid}/otp"),
                    vec![("otp", otp.into())],
                )
                .await
            }
            Pay::Netbanking { bank, success } => {
                let outcome = if success { "success" } else { "failure" };
                post(
                    format!("{fake}/checkout/{sid}/netbanking/{bank}"),
                    vec![("outcome", outcome.into())],
                )
                .await
            }
            Pay::Wallet { wallet, success } => {
                let outcome = if success { "success" } else { "failure" };
                post(
                    format!("{fake}/checkout/{sid}/wallet/{wallet}"),
                    vec![("outcome", outcome.into())],
                )
                .await
            }
        };
        let html = result.text().await.expect("result page");
        let callback = form_action(&html, "callback");
        let fields = hidden_fields(&html);
        // The browser posts the result to our callback (a cross-site POST: no cookies go along).
        let back = browser()
            .post(&callback)
            .form(&fields)
            .send()
            .await
            .expect("callback");
        let location = match back.status() {
            // A verified success: on to the top-up's page.
            StatusCode::SEE_OTHER => back
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("location")
                .to_string(),
            // A failure (unsigned): a neutral page, which links the top-up's page.
            StatusCode::OK => {
                let html = back.text().await.expect("page");
                assert!(html.contains("The payment did not complete"), "{html}");
                let path = callback
                    .trim_start_matches(&self.url)
                    .trim_end_matches("/callback")
                    .to_string();
                assert!(html.contains(&format!("href=\"{path}\"")), "{html}");
                path
            }
            other => panic!("{other}: {}", back.text().await.unwrap_or_default()),
        };
        let (status, page) = self.get_html(&location).await;
        assert_eq!(status, StatusCode::OK);
        (location, page)
    }

    /// Runs SQL on the test's database behind the app's back, on a connection of its own: for
    /// tests that break a row on purpose (the app itself writes only through its store).
    pub async fn tamper(&self, sql: &str) {
        use sea_orm::ConnectionTrait;
        let mut options = sea_orm::ConnectOptions::new(self.settings.database.url.clone());
        if let Some(schema) = &self.settings.database.schema {
            options.set_schema_search_path(schema.clone());
        }
        let db = sea_orm::Database::connect(options)
            .await
            .expect("a connection of the test's own");
        db.execute_unprepared(sql).await.expect("tamper");
        db.close().await.expect("close");
    }

    pub async fn audit_clean(&self) {
        let report = self.state.ledger.audit().await.expect("audit");
        assert!(report.is_clean(), "{report}");
    }

    /// `web audit`'s check: the ledger's invariants, and every payment and refund Razorpay lists
    /// against our ledger and records.
    pub async fn money_audit(&self) -> web::audit::AuditOutcome {
        web::audit::run(&self.state, 0, chrono::Utc::now().timestamp() + 60)
            .await
            .expect("audit runs")
    }

    pub async fn money_audit_clean(&self) {
        let outcome = self.money_audit().await;
        assert!(outcome.ledger.is_clean(), "{}", outcome.ledger);
        assert!(
            outcome.differences.is_empty(),
            "differences: {:#?}",
            outcome.differences
        );
    }

    /// A refund made on Razorpay's side (its dashboard, its API), as support would.
    pub async fn razorpay_refund(
        &self,
        payment_id: &str,
        amount: Option<i64>,
    ) -> serde_json::Value {
        let body = match amount {
            Some(amount) => serde_json::json!({"amount": amount}),
            None => serde_json::json!({}),
        };
        let response = browser()
            .post(format!(
                "{}/v1/payments/{payment_id}/refund",
                self.fake.url()
            ))
            .basic_auth(
                fake_razorpay::DEV_KEY_ID,
                Some(fake_razorpay::DEV_KEY_SECRET),
            )
            .json(&body)
            .send()
            .await
            .expect("refund");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("refund json")
    }

    /// A payment as Razorpay reports it now.
    pub async fn razorpay_payment(&self, payment_id: &str) -> serde_json::Value {
        browser()
            .get(format!("{}/v1/payments/{payment_id}", self.fake.url()))
            .basic_auth(
                fake_razorpay::DEV_KEY_ID,
                Some(fake_razorpay::DEV_KEY_SECRET),
            )
            .send()
            .await
            .expect("payment")
            .json()
            .await
            .expect("payment json")
    }

    /// Pays `order` again through the fake's control API.
    pub async fn pay_order(&self, order: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(format!("{}/_fake/orders/{order}/pay", self.fake.url()))
            .json(&body)
            .send()
            .await
            .expect("pay");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// Posts to the fake's control API.
    pub async fn fake_control(&self, path: &str, body: serde_json::Value) -> StatusCode {
        self.client
            .post(format!("{}{path}", self.fake.url()))
            .json(&body)
            .send()
            .await
            .expect("control")
            .status()
    }

    /// POSTs only a request's head, announcing a body of `announced` bytes, and reads the
    /// answer: its status, Content-Type and body. A client sending the whole body races the
    /// server's early 413 and can fail writing it (a broken pipe, seen in CI), so a refusal by
    /// size is tested the way a careful client meets it: before the body is sent.
    pub async fn post_head_only(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        announced: usize,
    ) -> (StatusCode, String, String) {
        let length = announced.to_string();
        let mut headers = headers.to_vec();
        headers.push(("content-length", &length));
        self.post_raw(path, &headers, &[]).await
    }

    /// POSTs `body` as one chunk of a chunked body that never ends, so the server can only
    /// judge its size by reading it, and reads the answer as `post_head_only` does. Nothing
    /// follows the chunk's last byte: a server refusing there leaves nothing unread, so its
    /// close cannot reset the connection before the answer is read.
    pub async fn post_chunk_unannounced(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (StatusCode, String, String) {
        let mut chunk = format!("{:x}\r\n", body.len()).into_bytes();
        chunk.extend_from_slice(body);
        let mut headers = headers.to_vec();
        headers.push(("transfer-encoding", "chunked"));
        self.post_raw(path, &headers, &chunk).await
    }

    async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (StatusCode, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.url.trim_start_matches("http://");
        let mut request = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        stream.write_all(&request).await.expect("request");
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered without the rest of the body")
        .expect("read");
        let answer = String::from_utf8(answer).expect("utf-8");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .expect("a status");
        let header = |name: &str| {
            head.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        (status, header("content-type"), body)
    }
}

/// The payload of an HTTP/1.1 chunked body.
fn dechunk(mut chunked: &str) -> String {
    let mut payload = String::new();
    while let Some((size, rest)) = chunked.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        payload.push_str(&rest[..size]);
        chunked = rest[size..].trim_start_matches("\r\n");
    }
    payload
}

/// A top-up of `amount` paid by UPI and called back: its page's path and the payment's id.
pub async fn paid(app: &TestApp, amount: &str) -> (String, String) {
    let (path, answer) = app
        .pay_directly(
            amount,
            serde_json::json!({"method": "upi", "vpa": "success@razorpay"}),
        )
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    (
        path,
        answer["payment"]["id"].as_str().expect("id").to_string(),
    )
}

/// The numbers of every voucher issued to `email`'s account, sorted.
pub async fn voucher_numbers(app: &TestApp, email: &str) -> Vec<String> {
    let user = web::store::users::by_email(&app.state.reads, email)
        .await
        .expect("read")
        .expect("user");
    let mut numbers: Vec<String> = web::store::vouchers::of_user(&app.state.reads, user.id)
        .await
        .expect("vouchers")
        .into_iter()
        .map(|v| v.number)
        .collect();
    numbers.sort();
    numbers
}
