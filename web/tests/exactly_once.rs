//! A customer who paid gets their credits once, always: whichever of the callback, Razorpay's
//! webhooks (duplicated, reordered, early, late, retried) or reconciliation reports the payment
//! first, or all of them at once; across restarts and with two instances on one database.

mod common;

use common::{Backend, Pay, TestApp, spawn_app_with};
use fake_razorpay::Faults;
use reqwest::StatusCode;
use serde_json::json;

const UPI_OK: &str = "success@razorpay";

async fn app_with(backend: Backend, faults: Faults) -> Option<TestApp> {
    spawn_app_with(backend, faults).await
}

/// Runs `scenario(app)` on both backends with the given faults.
macro_rules! with_faults {
    ($($name:ident => $faults:expr),+ $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = app_with(Backend::Sqlite, $faults).await.expect("app");
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = app_with(Backend::Postgres, $faults).await else { return };
                super::$name(app).await;
            }
        }
    )+};
}

/// A signed-webhook body as Razorpay sends it about `payment`.
fn payment_event(event: &str, payment: &serde_json::Value) -> String {
    json!({
        "entity": "event", "account_id": "acc_KalpFake000001", "event": event,
        "contains": ["payment"], "payload": {"payment": {"entity": payment}}, "created_at": 1_700_000_000
    })
    .to_string()
}

async fn assert_credited_once(app: &TestApp, email: &str, credits: i64) {
    app.eventually("webhooks to settle", || app.webhooks_settled())
        .await;
    assert_eq!(app.credits_of(email).await, credits, "{email}");
    let (_, history) = app.get_html("/billing/history?type=topups").await;
    let rows = history.matches("class=\"num plus\"").count();
    assert_eq!(
        rows,
        usize::from(credits > 0),
        "one Credit History row per payment"
    );
    app.audit_clean().await;
}

with_faults!(
    webhooks_before_the_callback => Faults { webhooks_before_callback: true, ..Faults::default() },
    five_deliveries_of_every_webhook => Faults { webhook_duplicates: 4, ..Faults::default() },
    reordered_webhooks => Faults { webhook_reorder: true, webhooks_before_callback: true, ..Faults::default() },
    webhook_endpoint_failing_then_back => Faults { webhook_fail_first: 3, close_tab: true, ..Faults::default() },
    late_authorisation_credits_after_a_failure => Faults { late_authorization: true, ..Faults::default() },
);

async fn webhooks_before_the_callback(app: TestApp) {
    app.sign_up("early@example.com").await;
    let (_, page) = app.top_up("1000", Pay::UpiId(UPI_OK)).await;
    assert!(page.contains("Payment successful"));
    assert_credited_once(&app, "early@example.com", 10_000).await;
}

async fn five_deliveries_of_every_webhook(app: TestApp) {
    app.sign_up("dup@example.com").await;
    app.top_up(
        "500",
        Pay::Card {
            number: "4100280000001007",
            otp: "1234",
        },
    )
    .await;
    app.eventually("15 deliveries", || async {
        app.fake.fake.deliveries().len() == 15
    })
    .await;
    assert_credited_once(&app, "dup@example.com", 5_000).await;
    // payment.authorized, payment.captured and order.paid: three events stored once each.
    let stored = web::store::webhook_events::stored(&app.state.reads)
        .await
        .expect("count");
    assert_eq!(stored, 3);
}

async fn reordered_webhooks(app: TestApp) {
    app.sign_up("reorder@example.com").await;
    app.top_up(
        "250",
        Pay::Netbanking {
            bank: "HDFC",
            success: true,
        },
    )
    .await;
    assert_credited_once(&app, "reorder@example.com", 2_500).await;
}

/// The customer closed the tab (no callback ever), and the webhook endpoint failed its first
/// three attempts: Razorpay's retries credit the top-up.
async fn webhook_endpoint_failing_then_back(app: TestApp) {
    app.sign_up("closed@example.com").await;
    let (path, answer) = app
        .pay_directly("300", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    assert!(
        answer["callback"].is_null(),
        "the tab was closed: no callback"
    );
    app.eventually("the retried webhooks to credit", || async {
        app.credits_of("closed@example.com").await == 3_000
    })
    .await;
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Payment successful"));
    assert!(
        app.fake
            .fake
            .deliveries()
            .iter()
            .all(|d| d.attempts.len() == 4)
    );
    assert_credited_once(&app, "closed@example.com", 3_000).await;
}

/// Razorpay reported the payment failed, then authorised it days later.
async fn late_authorisation_credits_after_a_failure(app: TestApp) {
    app.sign_up("late@example.com").await;
    let (path, page) = app.top_up("400", Pay::UpiId(UPI_OK)).await;
    assert!(page.contains("Payment failed"), "first reported failed");
    assert_eq!(app.credits_of("late@example.com").await, 0);
    app.eventually("payment.failed to be processed", || app.webhooks_settled())
        .await;
    let payment = app.fake.fake.deliveries()[0]
        .payment_id
        .clone()
        .expect("payment id");
    let r = app
        .client
        .post(format!(
            "{}/_fake/payments/{payment}/authorize",
            app.fake.url()
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::OK);
    app.eventually("the late authorisation to credit", || async {
        app.credits_of("late@example.com").await == 4_000
    })
    .await;
    let (_, page) = app.get_html(&path).await;
    assert!(
        page.contains("Payment successful"),
        "failed moved forward to paid"
    );
    assert_credited_once(&app, "late@example.com", 4_000).await;
}

on_both_backends!(
    reconciliation_credits_what_no_one_reported,
    reconciliation_finds_late_authorisations_and_expires_dead_top_ups,
    every_report_at_once_credits_once,
    a_webhook_for_a_credited_payment_is_stored_as_handled,
    webhooks_delivered_together_are_stored_once_each,
    forged_and_malformed_webhooks_are_refused,
    a_callback_replayed_by_another_user_credits_nothing_more,
    refunds_take_credits_back_as_far_as_they_go,
    a_restart_between_capture_and_credit_still_credits_once,
);

/// The webhook endpoint was down for good (no URL at Razorpay) and the tab closed:
/// reconciliation finds the captured payment.
async fn reconciliation_credits_what_no_one_reported(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("recon@example.com").await;
    let (path, answer) = app
        .pay_directly(
            "700",
            json!({"method": "wallet", "wallet": "payzapp", "close_tab": true}),
        )
        .await;
    assert_eq!(answer["payment"]["status"], "captured");
    assert_eq!(app.credits_of("recon@example.com").await, 0);
    let report = app.reconcile().await;
    assert_eq!((report.checked, report.credited), (1, 1), "{report}");
    let again = app.reconcile().await;
    assert_eq!(again.checked, 0, "a paid top-up is not checked again");
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Payment successful"));
    assert_credited_once(&app, "recon@example.com", 7_000).await;
}

async fn reconciliation_finds_late_authorisations_and_expires_dead_top_ups(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("late2@example.com").await;
    let (_, answer) = app
        .pay_directly(
            "100",
            json!({"method": "upi", "vpa": UPI_OK, "late_authorization": true}),
        )
        .await;
    assert_eq!(
        app.post_callback(&answer).await,
        StatusCode::OK,
        "a failure gets the neutral page"
    );
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.client
        .post(format!(
            "{}/_fake/payments/{payment}/authorize",
            app.fake.url()
        ))
        .send()
        .await
        .expect("authorize");
    let report = app.reconcile().await;
    assert_eq!(report.credited, 1, "{report}");
    assert_eq!(app.credits_of("late2@example.com").await, 1_000);

    // A top-up nobody paid: expired once it is old enough, and nothing else changes.
    let (status, _) = app.add_credits("200").await;
    assert_eq!(status, StatusCode::OK);
    let report = web::reconcile::run_once(
        &app.state,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    )
    .await
    .expect("reconcile");
    assert_eq!(report.expired, 1, "{report}");
    let (_, billing) = app.get_html("/billing").await;
    assert!(billing.contains(">Expired<"));
    assert_credited_once(&app, "late2@example.com", 1_000).await;
}

/// The callback five times, every webhook body re-sent five times, and reconciliation twice,
/// all at the same moment.
async fn every_report_at_once_credits_once(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("storm@example.com").await;
    let (_, answer) = app
        .pay_directly("900", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    let order = answer["order_id"].as_str().expect("order").to_string();
    let payment = answer["payment"].clone();
    let mut events = Vec::new();
    for (i, event) in ["payment.authorized", "payment.captured", "order.paid"]
        .iter()
        .enumerate()
    {
        let body = payment_event(event, &payment);
        events.push((format!("EvtStorm{i:06}"), body));
    }
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let a = app.clone();
        let answer = answer.clone();
        tasks.push(tokio::spawn(async move {
            a.post_callback(&answer).await == StatusCode::SEE_OTHER
        }));
        for (id, body) in events.clone() {
            let a = app.clone();
            tasks.push(tokio::spawn(async move {
                a.send_webhook(&a.url, &id, &body, fake_razorpay::DEV_WEBHOOK_SECRET)
                    .await
                    == StatusCode::OK
            }));
        }
    }
    for _ in 0..2 {
        let a = app.clone();
        tasks.push(tokio::spawn(async move {
            web::reconcile::run_once(
                &a.state,
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(3600),
            )
            .await
            .is_ok()
        }));
    }
    for task in tasks {
        assert!(task.await.expect("task"), "every report is answered");
    }
    assert!(!order.is_empty());
    assert_credited_once(&app, "storm@example.com", 9_000).await;
}

/// The callback credited the payment; Razorpay's webhook about it arrives afterwards. It is stored
/// (deduplication, the record) already handled: no trip through the worker, nothing moves.
async fn a_webhook_for_a_credited_payment_is_stored_as_handled(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("late-hook@example.com").await;
    let (_, answer) = app
        .pay_directly("300", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    assert_eq!(app.credits_of("late-hook@example.com").await, 3_000);
    let mut payment = answer["payment"].clone();
    payment["status"] = json!("captured");
    payment["captured"] = json!(true);
    let body = payment_event("payment.captured", &payment);
    let sent = app
        .send_webhook(
            &app.url,
            "EvtLateHook0001",
            &body,
            fake_razorpay::DEV_WEBHOOK_SECRET,
        )
        .await;
    assert_eq!(sent, StatusCode::OK);
    let event = web::store::webhook_events::find(&app.state.reads, "EvtLateHook0001")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(event.attempts, 0, "never handed to the worker");
    assert!(event.processed_at.is_some(), "stored as handled");
    assert_credited_once(&app, "late-hook@example.com", 3_000).await;
}

/// Razorpay's deliveries arrive together and are stored together (`webhooks::intake`): each
/// event is stored once whatever batch its copies land in, each delivery is told whether it was
/// new, and the payment they report credits once.
async fn webhooks_delivered_together_are_stored_once_each(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("together@example.com").await;
    let (_, answer) = app
        .pay_directly("400", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    let mut payment = answer["payment"].clone();
    payment["status"] = json!("captured");
    payment["captured"] = json!(true);
    let app = std::sync::Arc::new(app);
    let mut deliveries = Vec::new();
    for _ in 0..3 {
        for (i, event) in [
            "payment.authorized",
            "payment.captured",
            "order.paid",
            "payment.captured",
        ]
        .iter()
        .enumerate()
        {
            let body = payment_event(event, &payment);
            let (a, id) = (app.clone(), format!("EvtTogether{i:04}"));
            deliveries.push(tokio::spawn(async move {
                let answer = a
                    .webhook_answer(&a.url, &id, &body, fake_razorpay::DEV_WEBHOOK_SECRET)
                    .await;
                (id, answer)
            }));
        }
    }
    let mut answers: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for delivery in deliveries {
        let (id, (status, body)) = delivery.await.expect("delivery");
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
        answers
            .entry(id)
            .or_default()
            .push(body["status"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(answers.len(), 4, "four events");
    for (id, mut said) in answers {
        said.sort();
        assert_eq!(said, ["duplicate", "duplicate", "stored"], "{id}");
        let event = web::store::webhook_events::find(&app.state.reads, &id)
            .await
            .expect("read");
        assert!(event.is_some(), "{id} is stored");
    }
    let stored = web::store::webhook_events::stored(&app.state.reads)
        .await
        .expect("count");
    assert_eq!(stored, 4, "four events stored, twelve deliveries");
    assert_credited_once(&app, "together@example.com", 4_000).await;

    // One batch holding an event twice, beside one already stored and a new one.
    use web::{group_commit::BatchCommitter, webhooks::intake};
    let received = |id: &str| intake::ReceivedWebhook {
        event_id: id.to_string(),
        kind: "payment.captured".to_string(),
        body: "{}".to_string(),
        received_at: 1,
        handled: true,
    };
    let batch = vec![
        received("EvtBatch0001"),
        received("EvtTogether0000"),
        received("EvtBatch0001"),
        received("EvtBatch0002"),
    ];
    let answers = intake::WebhookEventBatches::new(app.state.ledger.clone())
        .commit(batch)
        .await;
    let new: Vec<bool> = answers.into_iter().map(|a| a.expect("stored")).collect();
    assert_eq!(new, [true, false, false, true]);
    let stored = web::store::webhook_events::stored(&app.state.reads)
        .await
        .expect("count");
    assert_eq!(stored, 6);
}

async fn forged_and_malformed_webhooks_are_refused(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("forge@example.com").await;
    let (_, answer) = app
        .pay_directly(
            "100",
            json!({"method": "upi", "vpa": UPI_OK, "close_tab": true}),
        )
        .await;
    let body = json!({
        "entity": "event", "event": "payment.captured", "contains": ["payment"],
        "payload": {"payment": {"entity": answer["payment"]}}, "created_at": 1_700_000_000
    })
    .to_string();
    let post = |signature: Option<String>, event_id: Option<&str>, body: String| {
        let url = app.at("/webhooks/razorpay");
        let event_id = event_id.map(str::to_string);
        async move {
            let mut r = common::browser()
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(s) = signature {
                r = r.header("x-razorpay-signature", s);
            }
            if let Some(e) = event_id {
                r = r.header("x-razorpay-event-id", e);
            }
            let r = r.send().await.expect("post");
            (r.status(), r.text().await.expect("body"))
        }
    };
    let sign = |secret: &str, body: &str| {
        razorpay::signature::webhook_signature(body.as_bytes(), &razorpay::Secret::new(secret))
    };
    let (status, text) = post(None, Some("Evt00000000001"), body.clone()).await;
    assert_eq!(
        (status, text.contains("missing_signature")),
        (StatusCode::BAD_REQUEST, true)
    );
    let (status, text) = post(
        Some(sign("wrong secret", &body)),
        Some("Evt00000000002"),
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, text.contains("invalid_signature")),
        (StatusCode::BAD_REQUEST, true)
    );
    let (status, _) = post(Some("zz".repeat(32)), Some("Evt00000000003"), body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let tampered = body.replace("\"amount\":10000", "\"amount\":99999900");
    let (status, _) = post(
        Some(sign(fake_razorpay::DEV_WEBHOOK_SECRET, &body)),
        Some("Evt00000000004"),
        tampered,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "signed bytes must be the bytes received"
    );
    let (status, _) = post(
        Some(sign(fake_razorpay::DEV_WEBHOOK_SECRET, &body)),
        None,
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an event id is required");
    let junk = "{\"not\": \"an event\"}".to_string();
    let (status, text) = post(
        Some(sign(fake_razorpay::DEV_WEBHOOK_SECRET, &junk)),
        Some("Evt00000000005"),
        junk,
    )
    .await;
    assert_eq!(
        (status, text.contains("malformed_body")),
        (StatusCode::BAD_REQUEST, true)
    );
    let huge = "x".repeat(300 * 1024);
    let signature = sign(fake_razorpay::DEV_WEBHOOK_SECRET, &huge);
    let (status, _, _) = app
        .post_head_only(
            "/webhooks/razorpay",
            &[
                ("x-razorpay-signature", &signature),
                ("x-razorpay-event-id", "Evt00000000006"),
            ],
            huge.len(),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let stored = web::store::webhook_events::stored(&app.state.reads)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing stored");
    assert_eq!(app.credits_of("forge@example.com").await, 0);

    // The real event, signed with the previous secret during a rotation, is accepted.
    let (status, _) = post(
        Some(sign("previous_webhook_secret", &body)),
        Some("Evt00000000007"),
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.eventually("the rotated-secret webhook to credit", || async {
        app.credits_of("forge@example.com").await == 1_000
    })
    .await;
    assert_credited_once(&app, "forge@example.com", 1_000).await;
}

async fn a_callback_replayed_by_another_user_credits_nothing_more(app: TestApp) {
    app.sign_up("owner@example.com").await;
    let (path, answer) = app
        .pay_directly("100", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    let thief = TestApp::fresh_browser(&app);
    thief.sign_up("thief@example.com").await;
    let form: Vec<(String, String)> = answer["callback"]
        .as_object()
        .expect("fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let r = thief
        .client
        .post(answer["callback_url"].as_str().expect("url"))
        .form(&form)
        .send()
        .await
        .expect("replay");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _) = thief.get_html(&path).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the thief can't see the owner's top-up"
    );
    assert_eq!(app.credits_of("thief@example.com").await, 0);
    assert_credited_once(&app, "owner@example.com", 1_000).await;
}

/// A refund from Razorpay's dashboard: the credits it bought are taken back from what is left;
/// what was already spent becomes a shortfall for an operator, never a negative balance.
async fn refunds_take_credits_back_as_far_as_they_go(app: TestApp) {
    app.sign_up("refund@example.com").await;
    let (_, answer) = app
        .pay_directly("1000", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    app.post_callback(&answer).await;
    assert_eq!(app.credits_of("refund@example.com").await, 10_000);
    let wallet = app
        .state
        .ledger
        .find_wallet("user:refund@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    app.state
        .ledger
        .debit(ledger::Debit {
            wallet,
            amount: ledger::Credits::new(7_000).expect("credits"),
            kind: ledger::DebitKind::UsageEmail,
            key: ledger::IdempotencyKey::new("campaign-1").expect("key"),
            reference: Some("campaign-1".into()),
            memo: None,
        })
        .await
        .expect("spend");
    let payment = answer["payment"]["id"].as_str().expect("id");
    let refund = |amount: i64, key: &'static str| {
        let url = format!("{}/v1/payments/{payment}/refund", app.fake.url());
        async move {
            common::browser()
                .post(url)
                .basic_auth(
                    fake_razorpay::DEV_KEY_ID,
                    Some(fake_razorpay::DEV_KEY_SECRET),
                )
                .header("X-Refund-Idempotency", key)
                .json(&json!({"amount": amount}))
                .send()
                .await
                .expect("refund")
                .status()
        }
    };
    assert_eq!(refund(20_000, "refund-part-0001").await, StatusCode::OK);
    app.eventually("the partial refund", || async {
        app.credits_of("refund@example.com").await == 1_000
    })
    .await;
    assert_eq!(refund(80_000, "refund-rest-0002").await, StatusCode::OK);
    app.eventually("the rest of the refund", || async {
        app.credits_of("refund@example.com").await == 0
    })
    .await;
    app.eventually("webhooks to settle", || app.webhooks_settled())
        .await;
    let shortfall: i64 = web::store::refunds::with_shortfall(&app.state.reads)
        .await
        .expect("read")
        .iter()
        .map(|r| r.shortfall)
        .sum();
    assert_eq!(
        shortfall, 7_000,
        "spent credits are recorded, not clawed below zero"
    );
    let (_, history) = app.get_html("/billing/history?type=refunds").await;
    assert_eq!(history.matches("class=\"num minus\"").count(), 2);
    let outcome = web::audit::run(&app.state, 0, chrono::Utc::now().timestamp() + 60)
        .await
        .expect("audit");
    assert!(outcome.is_clean(), "{:?}", outcome.differences);
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("could not be taken back")),
        "{:?}",
        outcome.notes
    );
}

/// The app "crashes" after Razorpay captured the payment and before anything credited it (no
/// callback, webhooks lost); a fresh instance on the same database reconciles it, once.
async fn a_restart_between_capture_and_credit_still_credits_once(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("crash@example.com").await;
    let (_, answer) = app.pay_directly("600", json!({"method": "card", "number": "5500670000001002", "otp": "4321", "close_tab": true})).await;
    assert_eq!(answer["payment"]["status"], "captured");
    let (restarted, url) = app.another_instance().await;
    let report = web::reconcile::run_once(
        &restarted,
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(3600),
    )
    .await
    .expect("reconcile");
    assert_eq!(report.credited, 1, "{report}");
    assert_credited_once(&app, "crash@example.com", 6_000).await;
    // The customer's callback arrives late, correctly signed, at both instances: it finds the
    // payment credited and changes nothing.
    let (order_id, payment_id) = (
        answer["order_id"].as_str().expect("order"),
        answer["payment"]["id"].as_str().expect("payment"),
    );
    let signature = razorpay::signature::payment_signature(
        order_id,
        payment_id,
        &razorpay::Secret::new(fake_razorpay::DEV_KEY_SECRET),
    );
    let callback = answer["callback_url"].as_str().expect("callback url");
    for base in [app.url.as_str(), url.as_str()] {
        let late = common::browser()
            .post(callback.replace(&app.url, base))
            .form(&[
                ("razorpay_payment_id", payment_id),
                ("razorpay_order_id", order_id),
                ("razorpay_signature", signature.as_str()),
            ])
            .send()
            .await
            .expect("late callback");
        assert!(
            late.status().is_success() || late.status().is_redirection(),
            "the late callback is answered: {}",
            late.status()
        );
    }
    assert_credited_once(&app, "crash@example.com", 6_000).await;
}

/// Two app instances on one PostgreSQL receive the same callback and the same webhooks at the
/// same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_credit_once() {
    let Some(app) = common::spawn_app(Backend::Postgres).await else {
        return;
    };
    app.fake.fake.set_webhook(None, None);
    app.sign_up("twins@example.com").await;
    let (_, answer) = app
        .pay_directly("800", json!({"method": "upi", "vpa": UPI_OK}))
        .await;
    let (_, second) = app.another_instance().await;
    let payment = answer["payment"].clone();
    let body = json!({
        "entity": "event", "event": "payment.captured", "contains": ["payment"],
        "payload": {"payment": {"entity": payment}}, "created_at": 1_700_000_000
    })
    .to_string();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for base in [app.url.clone(), second.clone()] {
        let mut on_this_instance = answer.clone();
        let callback_url = answer["callback_url"]
            .as_str()
            .expect("url")
            .replace(&app.url, &base);
        on_this_instance["callback_url"] = serde_json::Value::String(callback_url);
        for _ in 0..4 {
            let (a, base, body, answer) = (
                app.clone(),
                base.clone(),
                body.clone(),
                on_this_instance.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let callback = a.post_callback(&answer).await;
                let hook = a
                    .send_webhook(
                        &base,
                        "EvtTwins0000001",
                        &body,
                        fake_razorpay::DEV_WEBHOOK_SECRET,
                    )
                    .await;
                callback == StatusCode::SEE_OTHER && hook == StatusCode::OK
            }));
        }
    }
    for task in tasks {
        assert!(task.await.expect("task"));
    }
    assert_credited_once(&app, "twins@example.com", 8_000).await;
}
