//! Ready to operate (issue 20): readiness, structured logs with request ids.

mod common;

use std::io::{BufRead, BufReader};

use common::TestApp;
use reqwest::StatusCode;
use web::startup::Application;

on_both_backends!(
    ready_when_serving_and_not_while_migrations_are_missing,
    readiness_fails_from_the_first_moment_of_shutdown,
);

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
    app.tamper("DELETE FROM web_migrations WHERE version = 'm0005_operators'")
        .await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("migrations not applied: m0005_operators")),
        "{body}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    app.tamper(&format!(
        "INSERT INTO web_migrations (version, applied_at) VALUES ('m0005_operators', {})",
        chrono::Utc::now().timestamp()
    ))
    .await;
    assert_eq!(readyz(&app).await.0, StatusCode::OK);
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
        web::readiness::check(&state.readiness, &state.reads, state.charger.is_running())
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
        web::readiness::check(&state.readiness, &state.reads, state.charger.is_running()).await;
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
