//! Money right on every path Razorpay can take, not only the happy one: refunds before the
//! credit, second captured payments, late authorisation on a paid order, manual capture (and
//! two instances racing to capture), payments pending at the bank, refunds that stay pending or
//! fail, a price change between Add Credits and payment, a stranger's failure post, and a retry
//! inside the checkout. Each on SQLite and PostgreSQL, each ending with a clean money audit.

mod common;

use common::{Backend, TestApp, spawn_app_with};
use fake_razorpay::{Faults, PendingOutcome, RefundOutcome};
use reqwest::StatusCode;
use serde_json::{Value, json};

const UPI_OK: &str = "success@razorpay";

fn upi_ok() -> Value {
    json!({"method": "upi", "vpa": UPI_OK})
}

/// Runs `scenario(app)` on both backends with the given faults.
macro_rules! with_faults {
    ($($name:ident => $faults:expr),+ $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = spawn_app_with(Backend::Sqlite, $faults).await.expect("app");
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = spawn_app_with(Backend::Postgres, $faults).await else { return };
                super::$name(app).await;
            }
        }
    )+};
}

/// The Credit History page, all activity.
async fn history(app: &TestApp) -> String {
    app.get_html("/billing/history").await.1
}

async fn settled(app: &TestApp) {
    app.eventually("webhooks to settle", || app.webhooks_settled())
        .await;
}

with_faults!(
    a_full_refund_before_the_credit_nets_to_zero => Faults::default(),
    a_partial_refund_before_the_credit_credits_only_the_rest => Faults::default(),
    a_second_captured_payment_on_a_paid_order_is_refunded_not_credited => Faults::default(),
    late_authorisation_on_a_paid_order_is_recorded_not_credited => Faults::default(),
    the_app_captures_an_authorised_payment => Faults { manual_capture: true, ..Faults::default() },
    two_instances_racing_to_capture_credit_once => Faults { manual_capture: true, ..Faults::default() },
    an_uncaptured_payment_returned_by_razorpay_is_not_credited => Faults { manual_capture: true, capture_window_ms: 150, ..Faults::default() },
    a_payment_pending_at_the_bank_shows_pending_then_credits => Faults { pending_ms: 60_000, ..Faults::default() },
    a_payment_pending_at_the_bank_then_timed_out_fails => Faults { pending_ms: 60_000, pending_outcome: PendingOutcome::Timeout, ..Faults::default() },
    a_pending_refund_takes_credits_at_once_and_is_followed_until_processed => Faults { refund_outcome: RefundOutcome::Pending, ..Faults::default() },
    a_failed_refund_returns_the_credits_it_took => Faults { refund_outcome: RefundOutcome::Pending, ..Faults::default() },
    a_strangers_failure_post_changes_nothing => Faults::default(),
    a_failure_without_a_callback_then_a_retry_in_the_same_checkout => Faults { failure_callback: false, ..Faults::default() },
    refunds_apply_once_to_the_payment_that_credited => Faults::default(),
);

/// The callback and every webhook were lost; support refunded the whole payment from Razorpay's
/// dashboard; then reconciliation found it. The credit and the take-back commit together.
async fn a_full_refund_before_the_credit_nets_to_zero(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("refunded@example.com").await;
    let (path, answer) = app
        .pay_directly(
            "500",
            json!({"method": "upi", "vpa": UPI_OK, "close_tab": true}),
        )
        .await;
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.razorpay_refund(&payment, None).await;
    let report = app.reconcile().await;
    assert_eq!(report.credited, 1, "{report}");
    assert_eq!(app.credits_of("refunded@example.com").await, 0);
    let history = history(&app).await;
    assert!(
        history.contains("+5,000") && history.contains("−5,000"),
        "{history}"
    );
    assert!(
        history.contains("Refunded before it was credited"),
        "{history}"
    );
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Payment refunded"), "{page}");
    // Reported again (the refund's webhooks after all, another pass): nothing more moves.
    app.reconcile().await;
    assert_eq!(app.credits_of("refunded@example.com").await, 0);
    app.money_audit_clean().await;
}

async fn a_partial_refund_before_the_credit_credits_only_the_rest(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("partial@example.com").await;
    let (_, answer) = app
        .pay_directly("1000", json!({"method": "card", "number": "4100280000001007", "otp": "1234", "close_tab": true}))
        .await;
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.razorpay_refund(&payment, Some(25_050)).await;
    app.reconcile().await;
    // ₹250.50 of ₹1,000 refunded at 10 paise a credit: 2,505 credits taken back.
    assert_eq!(app.credits_of("partial@example.com").await, 7_495);
    // The rest refunded later, through the webhooks this time: every credit is taken back.
    app.fake
        .fake
        .set_webhook(Some(format!("{}/webhooks/razorpay", app.url)), None);
    app.razorpay_refund(&payment, None).await;
    settled(&app).await;
    assert_eq!(app.credits_of("partial@example.com").await, 0);
    app.money_audit_clean().await;
}

/// Two attempts both succeeded at the bank: the first credits, the second is refunded in full
/// through Razorpay and shown in Credit History, never credited.
async fn a_second_captured_payment_on_a_paid_order_is_refunded_not_credited(app: TestApp) {
    app.sign_up("twice@example.com").await;
    let (path, answer) = app.pay_directly("300", upi_ok()).await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    settled(&app).await;
    assert_eq!(app.credits_of("twice@example.com").await, 3_000);
    let order = answer["order_id"].as_str().expect("order");
    let second = app
        .pay_order(
            order,
            json!({"method": "wallet", "wallet": "payzapp", "second_payment": true}),
        )
        .await;
    assert_eq!(second["payment"]["status"], "captured");
    let second_id = second["payment"]["id"].as_str().expect("id").to_string();
    app.eventually("the duplicate to be refunded", || async {
        app.razorpay_payment(&second_id).await["status"] == "refunded"
    })
    .await;
    settled(&app).await;
    assert_eq!(
        app.credits_of("twice@example.com").await,
        3_000,
        "never credited"
    );
    // Its callback, replayed: still nothing.
    let mut again = answer.clone();
    again["callback"] = second["callback"].clone();
    app.post_callback(&again).await;
    assert_eq!(app.credits_of("twice@example.com").await, 3_000);
    let history = history(&app).await;
    assert!(history.contains("Duplicate payment refunded"), "{history}");
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains(&second_id) && page.contains("No credits were added for it"));
    app.money_audit_clean().await;
}

/// A payment reported failed, a retry that paid, then the bank's late "yes" for the first:
/// Razorpay returns it at once, and we record it without crediting.
async fn late_authorisation_on_a_paid_order_is_recorded_not_credited(app: TestApp) {
    app.sign_up("lateafter@example.com").await;
    let (path, first) = app
        .pay_directly(
            "200",
            json!({"method": "upi", "vpa": UPI_OK, "late_authorization": true}),
        )
        .await;
    assert_eq!(first["payment"]["status"], "failed");
    let order = first["order_id"].as_str().expect("order").to_string();
    let mut retry = first.clone();
    let paid = app
        .pay_order(&order, json!({"method": "netbanking", "bank": "HDFC"}))
        .await;
    retry["callback"] = paid["callback"].clone();
    assert_eq!(app.post_callback(&retry).await, StatusCode::SEE_OTHER);
    settled(&app).await;
    let late = first["payment"]["id"].as_str().expect("id");
    assert_eq!(
        app.fake_control(&format!("/_fake/payments/{late}/authorize"), json!({}))
            .await,
        StatusCode::OK
    );
    settled(&app).await;
    app.reconcile().await;
    assert_eq!(app.credits_of("lateafter@example.com").await, 2_000);
    let (_, page) = app.get_html(&path).await;
    assert!(
        page.contains("Payment successful") && page.contains("Payment returned by Razorpay"),
        "{page}"
    );
    app.money_audit_clean().await;
}

/// Payments stop at `authorized`: the app captures them, for the authorised amount.
async fn the_app_captures_an_authorised_payment(app: TestApp) {
    app.sign_up("capture@example.com").await;
    let (path, answer) = app.pay_directly("400", upi_ok()).await;
    assert_eq!(answer["payment"]["status"], "authorized");
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    let payment = answer["payment"]["id"].as_str().expect("id");
    assert_eq!(app.razorpay_payment(payment).await["status"], "captured");
    assert_eq!(app.credits_of("capture@example.com").await, 4_000);
    settled(&app).await;
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Payment successful"));
    app.money_audit_clean().await;
}

/// Two instances get the callback for the same authorised payment at once: both try to
/// capture, one is told "already captured", and the payment is credited once.
async fn two_instances_racing_to_capture_credit_once(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("race@example.com").await;
    let (_, answer) = app.pay_directly("600", upi_ok()).await;
    let (_, second) = app.another_instance().await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for base in [app.url.clone(), second.clone(), app.url.clone(), second] {
        let mut on_this = answer.clone();
        on_this["callback_url"] = json!(
            answer["callback_url"]
                .as_str()
                .expect("url")
                .replace(&app.url, &base)
        );
        let app = app.clone();
        tasks.push(tokio::spawn(
            async move { app.post_callback(&on_this).await },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.credits_of("race@example.com").await, 6_000);
    app.money_audit_clean().await;
}

/// Nobody captured the payment within the capture window (our app was down, say): Razorpay
/// returned it, and the top-up says so without crediting anything.
async fn an_uncaptured_payment_returned_by_razorpay_is_not_credited(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("returned@example.com").await;
    let (path, answer) = app
        .pay_directly(
            "300",
            json!({"method": "upi", "vpa": UPI_OK, "close_tab": true}),
        )
        .await;
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.eventually("Razorpay to return it", || async {
        app.razorpay_payment(&payment).await["status"] == "refunded"
    })
    .await;
    app.reconcile().await;
    assert_eq!(app.credits_of("returned@example.com").await, 0);
    let (_, page) = app.get_html(&path).await;
    assert!(
        page.contains("Payment failed") && page.contains("returned this payment"),
        "{page}"
    );
    let history = history(&app).await;
    assert!(
        history.contains("Payment returned by Razorpay"),
        "{history}"
    );
    app.money_audit_clean().await;
}

/// The bank has not answered: the top-up's page says so (and refreshes itself), and the
/// answer, when it comes, credits it.
async fn a_payment_pending_at_the_bank_shows_pending_then_credits(app: TestApp) {
    app.sign_up("waiting@example.com").await;
    let (path, answer) = app.pay_directly("250", upi_ok()).await;
    assert_eq!(answer["pending"], true);
    assert!(answer["callback"].is_null());
    app.reconcile().await;
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Your bank has not answered yet"), "{page}");
    assert!(page.contains("http-equiv=\"refresh\""));
    assert_eq!(app.credits_of("waiting@example.com").await, 0);
    let payment = answer["payment"]["id"].as_str().expect("id");
    assert_eq!(
        app.fake_control(&format!("/_fake/payments/{payment}/resolve"), json!({}))
            .await,
        StatusCode::OK
    );
    settled(&app).await;
    assert_eq!(app.credits_of("waiting@example.com").await, 2_500);
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Payment successful"));
    app.money_audit_clean().await;
}

/// The bank never answered: Razorpay fails the payment (`payment_timed_out`), and
/// reconciliation, with no webhook at all, records the failure.
async fn a_payment_pending_at_the_bank_then_timed_out_fails(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("timeout@example.com").await;
    let (path, answer) = app.pay_directly("250", upi_ok()).await;
    app.reconcile().await;
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Your bank has not answered yet"), "{page}");
    let payment = answer["payment"]["id"].as_str().expect("id");
    app.fake_control(
        &format!("/_fake/payments/{payment}/resolve"),
        json!({"outcome": "timeout"}),
    )
    .await;
    let report = app.reconcile().await;
    assert_eq!(report.failed, 1, "{report}");
    let (_, page) = app.get_html(&path).await;
    assert!(
        page.contains("Payment failed") && page.contains("did not confirm the payment in time"),
        "{page}"
    );
    assert_eq!(app.credits_of("timeout@example.com").await, 0);
    app.money_audit_clean().await;
}

/// A refund takes its credits back when it is created, pending; it stays pending until Razorpay
/// processes it, and reconciliation follows it until then.
async fn a_pending_refund_takes_credits_at_once_and_is_followed_until_processed(app: TestApp) {
    app.sign_up("pending-refund@example.com").await;
    let (path, answer) = app.pay_directly("1000", upi_ok()).await;
    app.post_callback(&answer).await;
    settled(&app).await;
    let payment = answer["payment"]["id"].as_str().expect("id");
    let refund = app.razorpay_refund(payment, Some(40_000)).await;
    assert_eq!(refund["status"], "pending");
    settled(&app).await;
    assert_eq!(app.credits_of("pending-refund@example.com").await, 6_000);
    let (_, page) = app.get_html(&path).await;
    assert!(page.contains("Pending"), "{page}");
    // Processed, with the webhook lost: reconciliation sees it.
    app.fake.fake.set_webhook(None, None);
    let rid = refund["id"].as_str().expect("id");
    app.fake_control(
        &format!("/_fake/refunds/{rid}/process"),
        json!({"outcome": "processed"}),
    )
    .await;
    app.reconcile().await;
    let recorded = web::store::refunds::find(&app.state.reads, rid)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(recorded.status, razorpay::wire::RefundState::Processed);
    assert_eq!(app.credits_of("pending-refund@example.com").await, 6_000);
    app.money_audit_clean().await;
}

/// A refund that fails gives back what it took, with a transfer Credit History shows; a refund
/// with a shortfall gives back only what it took.
async fn a_failed_refund_returns_the_credits_it_took(app: TestApp) {
    app.sign_up("failed-refund@example.com").await;
    let (_, answer) = app.pay_directly("1000", upi_ok()).await;
    app.post_callback(&answer).await;
    settled(&app).await;
    let payment = answer["payment"]["id"].as_str().expect("id");
    let refund = app.razorpay_refund(payment, Some(30_000)).await;
    settled(&app).await;
    assert_eq!(app.credits_of("failed-refund@example.com").await, 7_000);
    let rid = refund["id"].as_str().expect("id");
    app.fake_control(
        &format!("/_fake/refunds/{rid}/process"),
        json!({"outcome": "failed"}),
    )
    .await;
    settled(&app).await;
    assert_eq!(app.credits_of("failed-refund@example.com").await, 10_000);
    let history = history(&app).await;
    assert!(
        history.contains("Refund failed: credits returned"),
        "{history}"
    );
    app.money_audit_clean().await;

    // Spend most, refund the rest of the payment: 8,000 credits owed back, 1,000 there.
    let wallet = app
        .state
        .ledger
        .find_wallet("user:failed-refund@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    app.state
        .ledger
        .debit(ledger::Debit {
            wallet,
            amount: ledger::Credits::new(9_000).expect("credits"),
            kind: ledger::DebitKind::UsageSms,
            key: ledger::IdempotencyKey::new("campaign-9000").expect("key"),
            reference: None,
            memo: None,
        })
        .await
        .expect("spend");
    let rest = app.razorpay_refund(payment, Some(80_000)).await;
    settled(&app).await;
    assert_eq!(
        app.credits_of("failed-refund@example.com").await,
        0,
        "never below zero"
    );
    let outcome = app.money_audit().await;
    assert!(outcome.is_clean(), "{:?}", outcome.differences);
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("7000 credits could not be taken back")),
        "{:?}",
        outcome.notes
    );
    // It fails: the 1,000 it took come back; the 7,000 it could not take are forgiven.
    let rid = rest["id"].as_str().expect("id");
    app.fake_control(
        &format!("/_fake/refunds/{rid}/process"),
        json!({"outcome": "failed"}),
    )
    .await;
    settled(&app).await;
    assert_eq!(app.credits_of("failed-refund@example.com").await, 1_000);
    app.money_audit_clean().await;
}

/// Someone without an account posts failure fields for a customer's top-up, with their own
/// words and another payment named: the top-up is unchanged, their words appear nowhere, and
/// the customer pays as usual.
async fn a_strangers_failure_post_changes_nothing(app: TestApp) {
    app.sign_up("owner@example.com").await;
    let (path, redirect) = app.add_credits("700").await;
    assert_eq!(path, StatusCode::OK);
    let fields = common::hidden_fields(&redirect);
    let callback = common::field(&fields, "callback_url");
    let order = common::field(&fields, "order_id");
    // A payment on somebody else's order, for the stranger to name.
    let other = TestApp::fresh_browser(&app);
    other.sign_up("other@example.com").await;
    let csrf = common::csrf_of(&other.get_html("/billing/topup").await.1);
    let other_redirect = other
        .post_form("/billing/topups", &[("csrf", &csrf), ("amount", "100")])
        .await
        .text()
        .await
        .expect("page");
    let other_order = common::field(&common::hidden_fields(&other_redirect), "order_id");
    let other_paid = app.pay_order(&other_order, upi_ok()).await;
    let named = other_paid["payment"]["id"].as_str().expect("id");
    let words = "Call +91 90000 00000 or pay at http://evil.example";
    let stranger = common::browser()
        .post(&callback)
        .form(&[
            ("error[code]", "BAD_REQUEST_ERROR"),
            ("error[description]", words),
            ("error[reason]", words),
            (
                "error[metadata]",
                &json!({"payment_id": named, "order_id": order}).to_string(),
            ),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(stranger.status(), StatusCode::OK);
    let neutral = stranger.text().await.expect("page");
    assert!(neutral.contains("The payment did not complete") && !neutral.contains("evil"));
    let topup_path = callback
        .trim_start_matches(&app.url)
        .trim_end_matches("/callback")
        .to_string();
    let (_, page) = app.get_html(&topup_path).await;
    assert!(!page.contains("evil") && !page.contains("+91"), "{page}");
    assert!(
        page.contains("Waiting for confirmation"),
        "still pending: {page}"
    );
    let (_, billing) = app.get_html("/billing").await;
    assert!(!billing.contains("Under review") && !billing.contains(">Failed<"));
    // The customer pays.
    let paid = app.pay_order(&order, upi_ok()).await;
    let mut answer = paid.clone();
    answer["callback_url"] = json!(callback);
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    assert_eq!(app.credits_of("owner@example.com").await, 7_000);
    settled(&app).await;
    app.money_audit_clean().await;
}

/// A failure posts nothing back (`failure_callback` off); the customer pays again with another
/// method in the same checkout, on the same order: credited once.
async fn a_failure_without_a_callback_then_a_retry_in_the_same_checkout(app: TestApp) {
    app.sign_up("retry@example.com").await;
    let (path, failed) = app
        .pay_directly("350", json!({"method": "upi", "vpa": "failure@razorpay"}))
        .await;
    assert!(failed["callback"].is_null(), "nothing posted back");
    settled(&app).await;
    let order = failed["order_id"].as_str().expect("order").to_string();
    let paid = app
        .pay_order(&order, json!({"method": "wallet", "wallet": "payzapp"}))
        .await;
    let mut answer = failed.clone();
    answer["callback"] = paid["callback"].clone();
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    settled(&app).await;
    assert_eq!(app.credits_of("retry@example.com").await, 3_500);
    let (_, page) = app.get_html(&path).await;
    assert!(
        page.contains("Payment successful") && page.contains("Wallet"),
        "{page}"
    );
    app.money_audit_clean().await;
}

/// A refund is matched to the payment that credited the top-up, and applied once however often
/// it is reported.
async fn refunds_apply_once_to_the_payment_that_credited(app: TestApp) {
    app.sign_up("match@example.com").await;
    let (_, answer) = app.pay_directly("1000", upi_ok()).await;
    app.post_callback(&answer).await;
    settled(&app).await;
    let payment = answer["payment"]["id"].as_str().expect("id");
    let refund = app.razorpay_refund(payment, Some(10_000)).await;
    settled(&app).await;
    assert_eq!(app.credits_of("match@example.com").await, 9_000);
    // The same refund reported again: by a re-sent webhook body, and by reconciliation.
    let body = json!({
        "entity": "event", "event": "refund.processed", "contains": ["refund", "payment"],
        "payload": {"refund": {"entity": refund}, "payment": {"entity": answer["payment"]}},
        "created_at": 1_700_000_000
    })
    .to_string();
    for event_id in ["EvtReplay000001", "EvtReplay000002"] {
        assert_eq!(
            app.send_webhook(&app.url, event_id, &body, fake_razorpay::DEV_WEBHOOK_SECRET)
                .await,
            StatusCode::OK
        );
    }
    settled(&app).await;
    app.reconcile().await;
    assert_eq!(
        app.credits_of("match@example.com").await,
        9_000,
        "applied once"
    );
    app.money_audit_clean().await;
}

on_both_backends!(a_price_change_between_add_credits_and_payment_credits_what_was_shown);

/// The price changes after Add Credits and before the payment arrives (another instance runs
/// with the new price): the top-up credits the credits it showed, at the rate it was sold at.
async fn a_price_change_between_add_credits_and_payment_credits_what_was_shown(app: TestApp) {
    app.fake.fake.set_webhook(None, None);
    app.sign_up("price@example.com").await;
    let (_, answer) = app
        .pay_directly(
            "1000",
            json!({"method": "upi", "vpa": UPI_OK, "close_tab": true}),
        )
        .await;
    let mut settings = app.settings.clone();
    settings.billing.paise_per_credit = 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let repriced = web::startup::Application::build_on(settings, listener)
        .await
        .expect("app");
    let state = repriced.state.clone();
    web::reconcile::run_once(
        &state,
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(3600),
    )
    .await
    .expect("reconcile");
    assert_eq!(
        app.credits_of("price@example.com").await,
        10_000,
        "as shown"
    );
    let topup = web::store::topups::find_by_order(
        &app.state.reads,
        answer["order_id"].as_str().expect("order"),
    )
    .await
    .expect("read")
    .expect("top-up");
    assert_eq!(
        (topup.credits, topup.paise_per_credit, topup.status.as_str()),
        (10_000, 10, "paid")
    );
    // A partial refund at the rate it was sold at: ₹100 back, 1,000 credits.
    let payment = answer["payment"]["id"].as_str().expect("id");
    let refund = app.razorpay_refund(payment, Some(10_000)).await;
    let refund: razorpay::wire::Refund = serde_json::from_value(refund).expect("refund");
    web::billing::refunds::apply_refund(&state, &refund)
        .await
        .expect("apply");
    assert_eq!(app.credits_of("price@example.com").await, 9_000);
    let outcome = web::audit::run(&state, 0, chrono::Utc::now().timestamp() + 60)
        .await
        .expect("audit");
    assert!(outcome.is_clean(), "{:?}", outcome.differences);
}

on_both_backends!(
    receipts_carry_the_prefix_and_a_refused_order_says_why,
    the_audit_names_a_broken_row_and_fails,
);

/// A receipt is unique per Razorpay account: a deployment whose database was reset collides
/// with its own old receipts unless it sets `KALP__RAZORPAY__RECEIPT_PREFIX`. The collision is
/// shown in Razorpay's own words, not as "could not reach Razorpay".
async fn receipts_carry_the_prefix_and_a_refused_order_says_why(app: TestApp) {
    app.sign_up("receipts@example.com").await;
    let (status, redirect) = app.add_credits("100").await;
    assert_eq!(status, StatusCode::OK);
    let order = common::field(&common::hidden_fields(&redirect), "order_id");
    let fetched: Value = common::browser()
        .get(format!("{}/v1/orders/{order}", app.fake.url()))
        .basic_auth(
            fake_razorpay::DEV_KEY_ID,
            Some(fake_razorpay::DEV_KEY_SECRET),
        )
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["receipt"], "topup_1");
    // An earlier life of this deployment already used the next receipt.
    let taken = common::browser()
        .post(format!("{}/v1/orders", app.fake.url()))
        .basic_auth(
            fake_razorpay::DEV_KEY_ID,
            Some(fake_razorpay::DEV_KEY_SECRET),
        )
        .json(&json!({"amount": 10_000, "currency": "INR", "receipt": "topup_2"}))
        .send()
        .await
        .expect("order");
    assert_eq!(taken.status(), StatusCode::OK);
    let (status, page) = app.add_credits("100").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        page.contains("An order with the same receipt value has already been created")
            && !page.contains("could not reach"),
        "{page}"
    );
    // With a prefix of its own, the deployment's receipts are its own.
    let mut settings = app.settings.clone();
    settings.razorpay.receipt_prefix = "stg1-".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    settings.server.public_url = url.clone();
    let prefixed = web::startup::Application::build_on(settings, listener)
        .await
        .expect("app");
    tokio::spawn(prefixed.run_until_stopped(std::future::pending()));
    let visitor = common::browser();
    let login = visitor
        .get(format!("{url}/login"))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    visitor
        .post(format!("{url}/login"))
        .form(&[
            ("csrf", common::csrf_of(&login).as_str()),
            ("email", "receipts@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("log in");
    let form = visitor
        .get(format!("{url}/billing/topup"))
        .send()
        .await
        .expect("form")
        .text()
        .await
        .expect("html");
    let redirect = visitor
        .post(format!("{url}/billing/topups"))
        .form(&[("csrf", common::csrf_of(&form).as_str()), ("amount", "100")])
        .send()
        .await
        .expect("add credits");
    assert_eq!(redirect.status(), StatusCode::OK);
    let order = common::field(
        &common::hidden_fields(&redirect.text().await.expect("html")),
        "order_id",
    );
    let fetched: Value = common::browser()
        .get(format!("{}/v1/orders/{order}", app.fake.url()))
        .basic_auth(
            fake_razorpay::DEV_KEY_ID,
            Some(fake_razorpay::DEV_KEY_SECRET),
        )
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("json");
    assert_eq!(fetched["receipt"], "stg1-topup_3");
    let (_, billing) = app.get_html("/billing").await;
    assert!(
        billing.contains(">Failed<"),
        "the refused top-up is marked failed"
    );
    app.money_audit_clean().await;
}

/// The audit must be able to fail: a row broken on purpose is reported, naming the payment and
/// the top-up, and `web audit` exits non-zero.
async fn the_audit_names_a_broken_row_and_fails(app: TestApp) {
    app.sign_up("broken@example.com").await;
    let (_, answer) = app.pay_directly("1000", upi_ok()).await;
    app.post_callback(&answer).await;
    settled(&app).await;
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.razorpay_refund(&payment, Some(20_000)).await;
    settled(&app).await;
    app.money_audit_clean().await;
    assert!(run_audit_command(&app), "clean before the row is broken");

    // Our record of the refund says less was refunded than Razorpay says.
    app.tamper(&format!(
        "UPDATE web_topups SET refunded_paise = 0 WHERE razorpay_payment_id = '{payment}'"
    ))
    .await;
    let outcome = app.money_audit().await;
    assert!(!outcome.is_clean());
    assert!(
        outcome
            .differences
            .iter()
            .any(|d| d.contains(&payment) && d.contains("top-up #1")),
        "{:#?}",
        outcome.differences
    );
    assert!(!run_audit_command(&app), "`web audit` exits non-zero");

    // A refund we never applied is reported too.
    app.tamper(&format!(
        "UPDATE web_topups SET refunded_paise = 20000 WHERE razorpay_payment_id = '{payment}'"
    ))
    .await;
    app.tamper("DELETE FROM web_refunds").await;
    let outcome = app.money_audit().await;
    assert!(
        outcome
            .differences
            .iter()
            .any(|d| d.contains("was never taken back") && d.contains(&payment)),
        "{:#?}",
        outcome.differences
    );
}

/// Runs the `web audit` command against the test's database; true when it exits 0.
fn run_audit_command(app: &TestApp) -> bool {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_web"));
    command
        .args(["audit", "--days", "1"])
        .env("KALP__DATABASE__URL", &app.settings.database.url)
        .env("KALP__RAZORPAY__BASE_URL", app.fake.url())
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null());
    if let Some(schema) = &app.settings.database.schema {
        command.env("KALP__DATABASE__SCHEMA", schema);
    }
    command.status().expect("web audit runs").success()
}
