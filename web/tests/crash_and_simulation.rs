//! Crashes and randomized interleavings.
//!
//! - The real `web` binary is killed with SIGKILL at several moments of a top-up (payment just
//!   captured, webhooks in flight, processing under way), restarted, and reconciled: every
//!   captured payment ends credited exactly once and the audit is clean.
//! - A seeded simulation (TigerBeetle's approach, scaled down) drives random top-ups, methods,
//!   faults (manual capture, banks that do not answer, no failure callback), replayed callbacks,
//!   re-sent webhooks, reconciliation, restarts (at another price), late authorisations,
//!   second payments on one order, strangers' failure posts, and refunds (full or partial,
//!   processed, pending or failed), and checks after every step that the money audit against
//!   Razorpay is clean. `KALP_SIM_SEEDS=N` runs more seeds.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{Backend, TestApp};
use fake_razorpay::{Faults, RefundOutcome};
use reqwest::StatusCode;
use serde_json::json;

/// Every captured payment of ours credited exactly once, and the ledger's invariants hold.
async fn assert_consistent(state: &web::state::AppState, context: &str) {
    let outcome = web::audit::run(state, 0, chrono::Utc::now().timestamp() + 60)
        .await
        .expect("audit runs");
    assert!(outcome.ledger.is_clean(), "{context}: {}", outcome.ledger);
    assert!(
        outcome.differences.is_empty(),
        "{context}: {:?}",
        outcome.differences
    );
}

struct Server {
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn start_server(database: &str, fake: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_web"))
        .env("KALP__SERVER__PORT", port.to_string())
        .env(
            "KALP__SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env("KALP__DATABASE__URL", database)
        .env("KALP__RAZORPAY__BASE_URL", fake)
        .env("KALP__RECONCILE__INTERVAL_SECS", "0")
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("web starts");
    Server { child }
}

async fn wait_up(url: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{url}/healthz"))
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not come up");
}

impl Server {
    fn kill(mut self) {
        // SIGKILL: no shutdown hooks, no flushing, as a crash.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_step_then_restart_credits_every_payment_once() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("kalp.db").display());
    let settings = fake_razorpay::FakeSettings {
        webhook_backoff: Duration::from_millis(100),
        webhook_max_attempts: 8,
        ..fake_razorpay::FakeSettings::default()
    };
    let fake = fake_razorpay::spawn(
        settings,
        Faults {
            close_tab: true,
            ..Faults::default()
        },
    )
    .await
    .expect("fake");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    fake.fake
        .set_webhook(Some(format!("{url}/webhooks/razorpay")), None);
    let browser = common::browser();
    let mut server = start_server(&database, &fake.url(), port);
    wait_up(&url).await;
    let signup = browser
        .get(format!("{url}/signup"))
        .send()
        .await
        .expect("signup page")
        .text()
        .await
        .expect("html");
    let csrf = common::csrf_of(&signup);
    browser
        .post(format!("{url}/signup"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "crash@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("signup");
    // Kill the server at different moments after the payment was captured.
    for (round, delay_ms) in [0u64, 3, 15, 60, 250].into_iter().enumerate() {
        let page = browser
            .get(format!("{url}/billing/topup"))
            .send()
            .await
            .expect("form")
            .text()
            .await
            .expect("html");
        let csrf = common::csrf_of(&page);
        let redirect = browser
            .post(format!("{url}/billing/topups"))
            .form(&[("csrf", csrf.as_str()), ("amount", "100")])
            .send()
            .await
            .expect("add credits")
            .text()
            .await
            .expect("html");
        let order = common::field(&common::hidden_fields(&redirect), "order_id");
        let paid = browser
            .post(format!("{}/_fake/orders/{order}/pay", fake.url()))
            .json(&json!({"method": "upi", "vpa": "success@razorpay"}))
            .send()
            .await
            .expect("pay");
        assert_eq!(paid.status(), StatusCode::OK, "round {round}");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill();
        server = start_server(&database, &fake.url(), port);
        wait_up(&url).await;
    }
    // Webhook retries reach the restarted server; reconciliation covers anything they miss.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = Command::new(env!("CARGO_BIN_EXE_web"))
        .arg("reconcile")
        .env("KALP__DATABASE__URL", &database)
        .env("KALP__RAZORPAY__BASE_URL", fake.url())
        .env("KALP__RECONCILE__MIN_AGE_SECS", "0")
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .status()
        .expect("reconcile runs");
    assert!(status.success());
    server.kill();
    let mut settings = web::configuration::Settings::with_overrides(&[
        ("database.url", database.clone()),
        ("razorpay.base_url", fake.url()),
    ])
    .expect("settings");
    settings.reconcile.interval_secs = 0;
    let state = web::startup::connect(settings).await.expect("reopen");
    let wallet = state
        .ledger
        .find_wallet("user:crash@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    assert_eq!(
        state
            .ledger
            .balance(wallet)
            .await
            .expect("balance")
            .available,
        5 * 1_000,
        "five payments, five credits"
    );
    assert_consistent(&state, "after the crashes").await;
}

/// The simulation's draws: seeded, so a failing seed replays exactly.
struct Draws(rand::rngs::Xoshiro256PlusPlus);

impl Draws {
    fn seeded(seed: u64) -> Draws {
        use rand::SeedableRng;
        Draws(rand::rngs::Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    fn below(&mut self, n: u64) -> u64 {
        use rand::RngExt;
        self.0.random_range(0..n)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

async fn simulate(seed: u64, steps: usize) {
    let mut rng = Draws::seeded(seed);
    let app = common::spawn_app(Backend::Sqlite).await.expect("app");
    app.sign_up("sim@example.com").await;
    let mut instances: Vec<(web::state::AppState, String)> =
        vec![(app.state.clone(), app.url.clone())];
    let mut answers: Vec<serde_json::Value> = Vec::new();
    let mut refunds: Vec<String> = Vec::new();
    for step in 0..steps {
        let action = rng.below(13);
        let context = format!("seed {seed}, step {step}, action {action}");
        match action {
            // A new top-up, paid with random method, outcome and faults: late authorisation,
            // manual capture, a bank that has not answered, no failure callback.
            0..=2 => {
                let faults = Faults {
                    webhook_duplicates: rng.below(3) as u32,
                    webhook_reorder: rng.chance(30),
                    webhooks_before_callback: rng.chance(30),
                    webhook_fail_first: rng.below(3) as u32,
                    close_tab: rng.chance(25),
                    late_authorization: rng.chance(15),
                    manual_capture: rng.chance(20),
                    pending_ms: if rng.chance(15) { 600_000 } else { 0 },
                    failure_callback: rng.chance(80),
                    ..Faults::default()
                };
                app.fake.fake.set_faults(faults);
                let pay = match rng.below(5) {
                    0 => json!({"method": "upi", "vpa": "success@razorpay"}),
                    1 => json!({"method": "upi", "vpa": "failure@razorpay"}),
                    2 => {
                        json!({"method": "card", "number": "4100280000001007", "otp": if rng.chance(80) { "1234" } else { "12" }})
                    }
                    3 => {
                        json!({"method": "netbanking", "bank": "HDFC", "outcome": if rng.chance(75) { "success" } else { "failure" }})
                    }
                    _ => json!({"method": "wallet", "wallet": "payzapp"}),
                };
                let amount = format!("{}", 100 + 10 * rng.below(50));
                let (_, answer) = app.pay_directly(&amount, pay).await;
                if !answer["callback"].is_null() {
                    app.post_callback(&answer).await;
                }
                answers.push(answer);
            }
            // The browser's callback again, to a random instance.
            3 if !answers.is_empty() => {
                let mut answer = answers[rng.below(answers.len() as u64) as usize].clone();
                if !answer["callback"].is_null() {
                    let (_, base) = &instances[rng.below(instances.len() as u64) as usize];
                    let url = answer["callback_url"]
                        .as_str()
                        .unwrap_or_default()
                        .replace(&app.url, base);
                    answer["callback_url"] = json!(url);
                    app.post_callback(&answer).await;
                }
            }
            // Reconciliation on a random instance.
            4 => {
                let (state, _) = &instances[rng.below(instances.len() as u64) as usize];
                web::reconcile::run_once(state, Duration::ZERO, Duration::from_secs(3600))
                    .await
                    .expect("reconcile");
            }
            // A restart: another instance on the same database, sometimes with a new price.
            5 if instances.len() < 3 => {
                let price = if rng.chance(50) { 20 } else { 10 };
                instances.push(
                    app.another_instance_with(|s| s.billing.paise_per_credit = price)
                        .await,
                )
            }
            // Late authorisation of a failed payment (on a paid order, Razorpay returns it).
            6 if !answers.is_empty() => {
                let answer = &answers[rng.below(answers.len() as u64) as usize];
                if let Some(id) = answer["payment"]["id"].as_str() {
                    let _ = app
                        .fake_control(&format!("/_fake/payments/{id}/authorize"), json!({}))
                        .await;
                }
            }
            // A refund from Razorpay's side of a random payment, full or partial, which may
            // stay pending or fail later.
            7 if !answers.is_empty() => {
                let answer = &answers[rng.below(answers.len() as u64) as usize];
                let mut faults = app.fake.fake.faults();
                faults.refund_outcome = match rng.below(3) {
                    0 => RefundOutcome::Processed,
                    1 => RefundOutcome::Pending,
                    _ => RefundOutcome::Failed,
                };
                app.fake.fake.set_faults(faults);
                if let Some(id) = answer["payment"]["id"].as_str() {
                    let body = if rng.chance(50) {
                        json!({})
                    } else {
                        json!({"amount": 100 + 10 * rng.below(900)})
                    };
                    let refund: serde_json::Value = app
                        .client
                        .post(format!("{}/v1/payments/{id}/refund", app.fake.url()))
                        .basic_auth(
                            fake_razorpay::DEV_KEY_ID,
                            Some(fake_razorpay::DEV_KEY_SECRET),
                        )
                        .json(&body)
                        .send()
                        .await
                        .expect("refund")
                        .json()
                        .await
                        .unwrap_or_default();
                    if let Some(rid) = refund["id"].as_str() {
                        refunds.push(rid.to_string());
                    }
                }
            }
            // A pending refund is processed or fails.
            8 if !refunds.is_empty() => {
                let rid = &refunds[rng.below(refunds.len() as u64) as usize];
                let outcome = if rng.chance(60) {
                    "processed"
                } else {
                    "failed"
                };
                let _ = app
                    .fake_control(
                        &format!("/_fake/refunds/{rid}/process"),
                        json!({ "outcome": outcome }),
                    )
                    .await;
            }
            // The bank answers a payment left pending, or never does.
            9 if !answers.is_empty() => {
                let answer = &answers[rng.below(answers.len() as u64) as usize];
                if let Some(id) = answer["payment"]["id"].as_str() {
                    let outcome = if rng.chance(70) {
                        "complete"
                    } else {
                        "timeout"
                    };
                    let _ = app
                        .fake_control(
                            &format!("/_fake/payments/{id}/resolve"),
                            json!({ "outcome": outcome }),
                        )
                        .await;
                }
            }
            // A second payment captured on an order (paid or not).
            10 if !answers.is_empty() => {
                let answer = &answers[rng.below(answers.len() as u64) as usize];
                if let Some(order) = answer["order_id"].as_str() {
                    let _ = app
                        .client
                        .post(format!("{}/_fake/orders/{order}/pay", app.fake.url()))
                        .json(&json!({"method": "wallet", "wallet": "payzapp", "second_payment": true}))
                        .send()
                        .await;
                }
            }
            // A stranger posts failure fields for a random top-up, naming a random payment.
            11 if !answers.is_empty() => {
                let target = &answers[rng.below(answers.len() as u64) as usize];
                let named = &answers[rng.below(answers.len() as u64) as usize];
                let metadata =
                    json!({"payment_id": named["payment"]["id"], "order_id": target["order_id"]});
                let _ = common::browser()
                    .post(target["callback_url"].as_str().unwrap_or_default())
                    .form(&[
                        ("error[code]", "BAD_REQUEST_ERROR"),
                        ("error[description]", "pay me at http://evil.example"),
                        ("error[metadata]", metadata.to_string().as_str()),
                    ])
                    .send()
                    .await;
            }
            _ => {}
        }
        app.eventually(&context, || app.webhooks_settled()).await;
        // Reports still in flight (late webhooks) are caught up by one reconciliation.
        web::reconcile::run_once(&app.state, Duration::ZERO, Duration::from_secs(3600))
            .await
            .expect("reconcile");
        assert_consistent(&app.state, &context).await;
    }
    let _: &TestApp = &app;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_simulation_keeps_every_payment_credited_once() {
    let seeds: u64 = std::env::var("KALP_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    for seed in 1..=seeds {
        simulate(seed, 14).await;
    }
}
