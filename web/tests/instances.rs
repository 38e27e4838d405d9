//! Several instances on one database (issue 20): three app instances, requests spread across
//! them. Top-ups paid through one, webhooks to another, reconciliation on the third, charges on
//! all three at once: credited exactly once, never overdrawn, a clean audit; a key revoked on
//! one stops working on all three within the key cache's bound.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, csrf_of};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(three_instances_share_one_database_without_doubling_anything);

async fn new_key(app: &TestApp) -> (String, String) {
    let (_, page) = app.get_html("/api-keys").await;
    let r = app
        .post_form("/api-keys", &[("csrf", &csrf_of(&page)), ("name", "fleet")])
        .await;
    let page = r.text().await.expect("page");
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).expect("the key is shown") + marker.len();
    let key = page[start..].split('<').next().expect("key").to_string();
    let id = page
        .split("/api-keys/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("revoke form")
        .to_string();
    (key, id)
}

async fn charge(url: &str, key: &str, idempotency: &str) -> StatusCode {
    common::browser()
        .post(format!("{url}/api/v1/charges"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency)
        .json(&json!({"service": "sms", "quantity": 10}))
        .send()
        .await
        .expect("charge")
        .status()
}

async fn three_instances_share_one_database_without_doubling_anything(app: TestApp) {
    let (b, b_url) = app.another_instance().await;
    let (c, c_url) = app.another_instance().await;
    let urls = [app.url.clone(), b_url.clone(), c_url.clone()];
    app.sign_up("fleet@example.com").await;
    // Webhooks go to B; the browser's callbacks come back to A (its public URL).
    app.fake
        .fake
        .set_webhook(Some(format!("{b_url}/webhooks/razorpay")), None);
    let mut payments = Vec::new();
    for amount in ["100", "200", "300"] {
        let (_, answer) = app
            .pay_directly(amount, json!({"method": "upi", "vpa": "success@razorpay"}))
            .await;
        payments.push(answer);
    }
    // Two callbacks are lost; reconciliation on C and on A race for them while B's webhook
    // worker works through the same payments.
    assert_eq!(app.post_callback(&payments[0]).await, StatusCode::SEE_OTHER);
    let (from_c, from_a) = tokio::join!(
        web::reconcile::run_once(&c, Duration::ZERO, Duration::from_secs(86_400)),
        web::reconcile::run_once(&app.state, Duration::ZERO, Duration::from_secs(86_400)),
    );
    from_c.expect("reconcile on C");
    from_a.expect("reconcile on A");
    app.eventually("B's webhook worker", || async {
        web::store::webhook_events::unprocessed(&b.reads)
            .await
            .is_ok_and(|n| n == 0)
            && app.webhooks_settled().await
    })
    .await;
    // Exactly once: ₹600 at 10 paise a credit.
    assert_eq!(app.credits_of("fleet@example.com").await, 6_000);
    let wallet = app
        .state
        .ledger
        .find_wallet("user:fleet@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    let credits = app
        .state
        .ledger
        .history(wallet, &ledger::HistoryQuery::default())
        .await
        .expect("history")
        .entries
        .iter()
        .filter(|t| t.kind == ledger::TransferKind::Purchase)
        .count();
    assert_eq!(credits, 3, "one credit per payment, whoever reported it");
    // One receipt voucher per payment, numbered 1, 2, 3 whichever instance credited it.
    let numbers = common::voucher_numbers(&app, "fleet@example.com").await;
    let year = web::gst::voucher_number::FinancialYear::of(chrono::Utc::now()).label();
    assert_eq!(
        numbers,
        (1..=3)
            .map(|n| format!("KS/{year}/{n:06}"))
            .collect::<Vec<_>>()
    );
    // The three instances' senders drain the outbox at once: each receipt goes out once.
    let mailbox = mailbox::start("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("mailbox");
    let settings = web::configuration::EmailSettings {
        smtp_url: razorpay::Secret::new(mailbox.smtp_url()),
        ..app.settings.email.clone()
    };
    let mailer = web::emails::mailer::Mailer::from_settings(&settings)
        .expect("url")
        .expect("mailer");
    let (sa, sb, sc) = tokio::join!(
        web::emails::outbox_sender::send_due(&app.state.services, &mailer),
        web::emails::outbox_sender::send_due(&b.services, &mailer),
        web::emails::outbox_sender::send_due(&c.services, &mailer),
    );
    let sent = [sa, sb, sc]
        .into_iter()
        .map(|r| r.expect("a round").sent)
        .sum::<usize>();
    assert_eq!(sent, 3);
    assert_eq!(mailbox.inbox.messages().len(), 3, "no receipt sent twice");

    // Charges of 30 credits on all three at once: 6,000 pay for exactly 200 of them. Each key
    // is also sent twice to two instances (a client's retry landing elsewhere).
    let (key, key_id) = new_key(&app).await;
    for url in &urls {
        assert_eq!(
            charge(url, &key, &format!("warm-{url}")).await,
            StatusCode::CREATED
        );
    }
    let tasks: Vec<_> = (0..240)
        .flat_map(|i| {
            let key = key.clone();
            let (first, second) = (urls[i % 3].clone(), urls[(i + 1) % 3].clone());
            [first, second].map(|url| {
                let key = key.clone();
                tokio::spawn(async move { charge(&url, &key, &format!("c-{i}")).await })
            })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // 3 warm-ups + 197 distinct charges fit; every retry answered like its original.
    assert_eq!(app.credits_of("fleet@example.com").await, 0);
    assert_eq!(created % 2, 0, "a retry answers as its original did");
    assert_eq!(created / 2, 197, "{created} created, {refused} refused");
    app.audit_clean().await;
    app.money_audit_clean().await;

    // Revoked on A: B and C stop accepting it within the key cache's bound.
    let bound = Duration::from_secs(app.settings.usage.key_cache_secs + 1);
    let csrf = app.csrf().await;
    let r = app
        .post_form(&format!("/api-keys/{key_id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let revoked_at = Instant::now();
    for url in &urls {
        loop {
            let status = charge(url, &key, "after-revoke").await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(
                revoked_at.elapsed() <= bound,
                "{url} still accepted a revoked key after {:?}",
                revoked_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(revoked_at.elapsed() <= bound);
}
