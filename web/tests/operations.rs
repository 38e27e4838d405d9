//! Ready to operate (issue 20): readiness, structured logs with request ids.

mod common;

use std::io::{BufRead, BufReader};

use common::TestApp;
use reqwest::StatusCode;
use web::startup::Application;

on_both_backends!(
    ready_when_serving_and_not_while_migrations_are_missing,
    readiness_fails_from_the_first_moment_of_shutdown,
    old_operational_rows_are_purged_and_nothing_else,
    backup_copies_a_sqlite_database_that_restores_and_audits_clean,
);

// One scenario per backend, one after the other: the metrics recorder is one per process, and
// the counters this test reads must move only by what it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_appear_and_move_with_a_top_up_and_a_charge() {
    let _serial = METRICS.lock().await;
    let app = common::spawn_app(common::Backend::Sqlite)
        .await
        .expect("app");
    top_up_and_charge_move_the_counters(app).await;
    if let Some(app) = common::spawn_app(common::Backend::Postgres).await {
        top_up_and_charge_move_the_counters(app).await;
    }
}

static METRICS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The sum of a metric's series whose labels contain every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|want| l.contains(want))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/plain"))
    );
    r.text().await.expect("text")
}

async fn top_up_and_charge_move_the_counters(app: TestApp) {
    app.sign_up("metrics@example.com").await;
    let before = scrape(&app).await;
    let (_, answer) = app
        .pay_directly(
            "100",
            serde_json::json!({"method": "upi", "vpa": "success@razorpay"}),
        )
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    let (_, page) = app.get_html("/api-keys").await;
    let r = app
        .post_form(
            "/api-keys",
            &[("csrf", &common::csrf_of(&page)), ("name", "sender")],
        )
        .await;
    let page = r.text().await.expect("page");
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).expect("the key is shown") + marker.len();
    let key = page[start..].split('<').next().expect("key").to_string();
    let charged = common::browser()
        .post(app.at("/api/v1/charges"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "metrics-1")
        .json(&serde_json::json!({"service": "email", "quantity": 3}))
        .send()
        .await
        .expect("charge");
    assert_eq!(charged.status(), StatusCode::CREATED);
    app.eventually("webhooks to settle", || app.webhooks_settled())
        .await;
    let after = scrape(&app).await;
    let moved =
        |name: &str, labels: &[&str]| value(&after, name, labels) - value(&before, name, labels);
    assert_eq!(moved("kalp_topups_created_total", &[]), 1.0);
    assert_eq!(
        moved("kalp_topup_payments_total", &["outcome=\"credited\""]),
        1.0
    );
    assert_eq!(
        moved("kalp_credits_total", &["direction=\"credited\""]),
        1_000.0
    );
    assert_eq!(moved("kalp_charges_total", &["result=\"charged\""]), 1.0);
    assert!(moved("kalp_credits_total", &["direction=\"debited\""]) > 0.0);
    assert!(moved("kalp_charge_batch_size_count", &[]) >= 1.0);
    assert!(moved("kalp_webhook_events_total", &["result=\"stored\""]) >= 1.0);
    assert!(
        moved(
            "kalp_razorpay_requests_total",
            &["endpoint=\"POST /v1/orders\"", "status=\"200\""]
        ) >= 1.0
    );
    assert!(
        moved(
            "kalp_http_requests_total",
            &[
                "route=\"/billing/topups/{id}/callback\"",
                "method=\"POST\"",
                "status=\"303\""
            ]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("kalp_http_request_duration_seconds_bucket"),
        "{after}"
    );
    assert!(
        after.contains("kalp_db_connections_open{pool=\"write\"}"),
        "{after}"
    );
    assert!(after.contains("kalp_outbox_depth"), "{after}");
    assert!(
        after.contains("kalp_webhook_oldest_unprocessed_age_seconds 0"),
        "{after}"
    );

    // With a token, only its bearer reads them.
    let (_, url) = app
        .another_instance_with(|s| s.metrics.token = razorpay::Secret::new("scrape-token-123"))
        .await;
    let client = common::browser();
    let refused = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("GET");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = client
        .get(format!("{url}/metrics"))
        .bearer_auth("scrape-token-12")
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let allowed = client
        .get(format!("{url}/metrics"))
        .bearer_auth("scrape-token-123")
        .send()
        .await
        .expect("GET");
    assert_eq!(allowed.status(), StatusCode::OK);
}

async fn readyz(app: &TestApp) -> (StatusCode, serde_json::Value) {
    let r = app.get("/readyz").await;
    let status = r.status();
    (status, r.json().await.expect("readyz answers JSON"))
}

async fn ready_when_serving_and_not_while_migrations_are_missing(app: TestApp) {
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    // A newer migration this binary knows is missing (as if the database were restored from an
    // older backup): alive, but not ready.
    app.tamper("DELETE FROM web_migrations WHERE version = 'm0006_retention'")
        .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("migrations not applied: m0006_retention")),
        "{body}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    app.tamper(&format!(
        "INSERT INTO web_migrations (version, applied_at) VALUES ('m0006_retention', {})",
        chrono::Utc::now().timestamp()
    ))
    .await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_database_does_not_answer() {
    let app = common::spawn_app(common::Backend::Sqlite)
        .await
        .expect("app");
    // A ledger of its own on the same database, whose connections are then closed: the reads
    // it hands out get no answer, as when the database goes away.
    let mut config = ledger::ConnectConfig::new(app.settings.database.url.clone());
    config.pg_schema = app.settings.database.schema.clone();
    let gone = ledger::Ledger::connect(&config).await.expect("connect");
    let reads = gone.reads();
    assert!(
        web::readiness::check(&app.state.readiness, &reads, &[])
            .await
            .ready
    );
    gone.close().await.expect("close");
    let report = web::readiness::check(&app.state.readiness, &reads, &[]).await;
    assert!(!report.ready);
    assert!(
        report.problems[0].starts_with("the database does not answer"),
        "{report:?}"
    );
    // And a stopped batcher is named too.
    let report =
        web::readiness::check(&app.state.readiness, &app.state.reads, &["charge batcher"]).await;
    assert_eq!(
        report.problems,
        vec!["the charge batcher is not running".to_string()]
    );
}

async fn readiness_fails_from_the_first_moment_of_shutdown(app: TestApp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let mut settings = app.settings.clone();
    settings.server.public_url = url.clone();
    let instance = Application::build_on(settings, listener)
        .await
        .expect("instance");
    let state = instance.state.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(instance.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let r = common::browser()
        .get(format!("{url}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        web::readiness::check(&state.readiness, &state.reads, &state.stopped_queues())
            .await
            .ready
    );
    let _ = stop.send(());
    app.eventually("shutdown to begin", || {
        let state = state.clone();
        async move { state.readiness.is_draining() }
    })
    .await;
    let report =
        web::readiness::check(&state.readiness, &state.reads, &state.stopped_queues()).await;
    assert!(!report.ready);
    assert!(
        report.problems.contains(&"shutting down".to_string()),
        "{report:?}"
    );
    running.await.expect("joined").expect("stopped cleanly");
}

/// The app as a process, logging JSON to a pipe; returns the child and its URL.
fn start_with_json_logs(app: &TestApp) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_web"));
    command
        .env("KALP__SERVER__PORT", port.to_string())
        .env(
            "KALP__SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("KALP__DATABASE__URL", &app.settings.database.url)
        .env("KALP__RAZORPAY__BASE_URL", app.fake.url())
        .env("KALP__RECONCILE__INTERVAL_SECS", "0")
        .env("KALP__LOG__FORMAT", "json")
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(schema) = &app.settings.database.schema {
        command.env("KALP__DATABASE__SCHEMA", schema);
    }
    (
        command.spawn().expect("web starts"),
        format!("http://127.0.0.1:{port}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_and_no_secret() {
    let app = common::spawn_app(common::Backend::Sqlite)
        .await
        .expect("app");
    let (mut child, url) = start_with_json_logs(&app);
    let client = common::browser();
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "the app came up");
    let given = client
        .get(format!("{url}/billing"))
        .header("x-request-id", "req-test-42")
        .send()
        .await
        .expect("GET");
    assert_eq!(given.headers()["x-request-id"], "req-test-42");
    // A request id that could forge log lines is replaced by one of ours.
    let forged = client
        .get(format!("{url}/healthz"))
        .header("x-request-id", "a\"b c")
        .send()
        .await
        .expect("GET");
    let ours = forged.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(ours.len(), 16, "{ours}");
    let _ = child.kill();
    let stderr = child.stderr.take().expect("stderr");
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(!lines.is_empty());
    let mut seen = Vec::new();
    for line in &lines {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            parsed["timestamp"].is_string() && parsed["level"].is_string(),
            "{line}"
        );
        if let Some(id) = parsed["span"]["request_id"].as_str() {
            seen.push((id.to_string(), parsed["fields"]["message"].to_string()));
        }
        for secret in [
            app.settings.razorpay.key_secret.expose(),
            app.settings.razorpay.webhook_secret.expose(),
        ] {
            assert!(!line.contains(secret), "a secret in the logs: {line}");
        }
    }
    assert!(
        seen.iter()
            .any(|(id, m)| id == "req-test-42" && m.contains("request")),
        "{lines:#?}"
    );
    assert!(seen.iter().any(|(id, _)| *id == ours), "{lines:#?}");
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = app
        .state
        .reads
        .query_one_raw(sea_orm::Statement::from_string(
            app.state.reads.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

async fn old_operational_rows_are_purged_and_nothing_else(app: TestApp) {
    app.sign_up("keeper@example.com").await;
    let now = chrono::Utc::now().timestamp_micros();
    let day = 86_400_000_000_i64;
    let user = web::store::users::by_email(&app.state.reads, "keeper@example.com")
        .await
        .expect("read")
        .expect("user")
        .id;
    app.tamper(&format!(
        "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ('old-session', {user}, {}, {})",
        now - 40 * day,
        now - 10 * day
    ))
    .await;
    app.tamper(&format!(
        "INSERT INTO web_auth_attempts (key, window_start, attempts) VALUES ('old@example.com', {}, 3), ('recent@example.com', {now}, 1)",
        now - 3 * day
    ))
    .await;
    app.tamper(&format!(
        "INSERT INTO web_webhook_events (event_id, event, body, received_at, processed_at, attempts) VALUES \
         ('evt_old', 'payment.captured', '{{}}', {old}, {old}, 1), \
         ('evt_recent', 'payment.captured', '{{}}', {now}, {now}, 1), \
         ('evt_never_processed', 'payment.captured', '{{}}', {old}, NULL, 20)",
        old = now - 60 * day
    ))
    .await;
    let (sessions, attempts, events) = (
        count(&app, "web_sessions").await,
        count(&app, "web_auth_attempts").await,
        count(&app, "web_webhook_events").await,
    );
    let purged = web::retention::purge_once(&app.state, &app.settings.retention)
        .await
        .expect("purge");
    assert_eq!(
        purged,
        web::retention::Purged {
            sessions: 1,
            auth_attempts: 1,
            webhook_events: 1
        }
    );
    assert_eq!(count(&app, "web_sessions").await, sessions - 1);
    assert_eq!(count(&app, "web_auth_attempts").await, attempts - 1);
    assert_eq!(count(&app, "web_webhook_events").await, events - 1);
    // The live session still works; an unprocessed event is never purged.
    assert_eq!(app.get("/billing").await.status(), StatusCode::OK);
    assert!(
        web::store::webhook_events::find(&app.state.reads, "evt_never_processed")
            .await
            .expect("read")
            .is_some()
    );
    // Bounded: one row per table per round when the batch is 1.
    let mut small = app.settings.retention.clone();
    small.batch = 1;
    app.tamper(&format!(
        "INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ('a', {user}, 0, 1), ('b', {user}, 0, 1)"
    ))
    .await;
    let purged = web::retention::purge_once(&app.state, &small)
        .await
        .expect("purge");
    assert_eq!(purged.sessions, 1);
}

/// Runs `web backup PATH` against the test's database.
fn backup_command(app: &TestApp, path: &str) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_web"));
    command
        .args(["backup", path])
        .env("KALP__DATABASE__URL", &app.settings.database.url)
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error");
    if let Some(schema) = &app.settings.database.schema {
        command.env("KALP__DATABASE__SCHEMA", schema);
    }
    command.output().expect("web backup runs")
}

async fn backup_copies_a_sqlite_database_that_restores_and_audits_clean(app: TestApp) {
    app.sign_up("saved@example.com").await;
    let (_, answer) = app
        .pay_directly(
            "250",
            serde_json::json!({"method": "upi", "vpa": "success@razorpay"}),
        )
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("copy.db");
    let path = path.to_str().expect("utf-8 path");
    let made = backup_command(&app, path);
    if app.settings.database.schema.is_some() {
        assert!(!made.status.success());
        assert!(
            String::from_utf8_lossy(&made.stderr).contains("pg_dump"),
            "{made:?}"
        );
        return;
    }
    assert!(made.status.success(), "{made:?}");
    assert!(String::from_utf8_lossy(&made.stdout).contains("backup written"));
    let again = backup_command(&app, path);
    assert!(!again.status.success(), "never over an existing file");
    // Restored: the ledger opens it, its audit is clean and the balance is the same.
    let restored = ledger::Ledger::connect(&ledger::ConnectConfig::new(format!(
        "sqlite://{path}?mode=rw"
    )))
    .await
    .expect("the copy opens");
    assert!(restored.audit().await.expect("audit").is_clean());
    let wallet = restored
        .find_wallet("user:saved@example.com")
        .await
        .expect("read")
        .expect("wallet");
    assert_eq!(
        restored.balance(wallet).await.expect("balance").available,
        2_500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_working_setup_and_names_what_to_fix() {
    let app = common::spawn_app(common::Backend::Sqlite)
        .await
        .expect("app");
    // Against fake-razorpay, with the app running behind its public URL: healthy, with the
    // development warnings (plain http, committed secrets).
    let report = web::doctor::examine(&app.settings).await;
    assert!(report.healthy(), "{report}");
    let text = report.to_string();
    assert!(text.contains("accepts key"), "{text}");
    assert!(text.contains("production would refuse"), "{text}");
    assert!(
        text.contains(&format!("{}/webhooks/razorpay", app.url)),
        "{text}"
    );
    assert!(
        text.contains("payment.captured") && text.contains("refund.failed"),
        "{text}"
    );
    assert!(
        !text.contains(app.settings.razorpay.key_secret.expose()),
        "{text}"
    );
    assert!(text.contains("no SMTP server is set"), "{text}");

    // An SMTP server that answers, and one that does not (its password never printed).
    let mailbox = mailbox::start("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("mailbox");
    let mut settings = app.settings.clone();
    settings.email.smtp_url = razorpay::Secret::new(mailbox.smtp_url());
    let report = web::doctor::examine(&settings).await;
    assert!(
        report.to_string().contains("the SMTP server answers"),
        "{report}"
    );
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    settings.email.smtp_url =
        razorpay::Secret::new(format!("smtp://mailer:hunter2secret@127.0.0.1:{closed}"));
    let report = web::doctor::examine(&settings).await;
    assert!(
        report
            .problems()
            .iter()
            .any(|p| p.contains("KALP__EMAIL__SMTP_URL")),
        "{report}"
    );
    assert!(!report.to_string().contains("hunter2secret"), "{report}");

    // Razorpay refuses the keys (401), or fails (5xx): each named, with what to do.
    let razorpay = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/v1/payments"))
        .respond_with(
            wiremock::ResponseTemplate::new(401).set_body_json(serde_json::json!({
                "error": {"code": "BAD_REQUEST_ERROR", "description": "Authentication failed"}
            })),
        )
        .mount(&razorpay)
        .await;
    let mut settings = app.settings.clone();
    settings.razorpay.base_url = razorpay.uri();
    let report = web::doctor::examine(&settings).await;
    assert!(!report.healthy());
    assert!(
        report
            .problems()
            .iter()
            .any(|p| p.contains("KALP__RAZORPAY__KEY_ID")),
        "{report}"
    );
    let failing = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(503).set_body_json(serde_json::json!({
                "error": {"code": "SERVER_ERROR", "description": "down"}
            })),
        )
        .mount(&failing)
        .await;
    settings.razorpay.base_url = failing.uri();
    let report = web::doctor::examine(&settings).await;
    assert!(
        report
            .problems()
            .iter()
            .any(|p| p.contains("could not be reached or failed")),
        "{report}"
    );

    // No webhook secret, and a public URL where no app answers.
    let mut settings = app.settings.clone();
    settings.razorpay.webhook_secret = razorpay::Secret::new("");
    settings.server.public_url = "http://127.0.0.1:9".into();
    let report = web::doctor::examine(&settings).await;
    let problems = report.problems().join("\n");
    assert!(
        problems.contains("KALP__RAZORPAY__WEBHOOK_SECRET"),
        "{problems}"
    );
    assert!(problems.contains("/healthz does not answer"), "{problems}");

    // A database that cannot be opened.
    let mut settings = app.settings.clone();
    settings.database.url = "sqlite:///nonexistent-directory/kalp.db".into();
    let report = web::doctor::examine(&settings).await;
    assert!(
        report
            .problems()
            .iter()
            .any(|p| p.contains("KALP__DATABASE__URL")),
        "{report}"
    );

    // The command exits non-zero on a problem.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_web"))
        .arg("doctor")
        .env("KALP__DATABASE__URL", &app.settings.database.url)
        .env("KALP__RAZORPAY__BASE_URL", razorpay.uri())
        .env("KALP__SERVER__PUBLIC_URL", &app.url)
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("doctor runs");
    assert!(!status.success());
}
