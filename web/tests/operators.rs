//! Operators (issue 18): the `/admin` pages exist only for accounts with the role; promotional
//! credits, adjustments, flagged top-ups and refunds of unused paid credits each happen once,
//! with a reason, recorded in the action log, and leave the audit clean.

mod common;

use common::{TestApp, Visitor, field, hidden_fields};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    admin_pages_are_not_found_for_anyone_but_operators,
    promotional_credits_are_granted_once_with_their_expiry,
    a_manual_debit_never_takes_a_balance_below_zero,
    unused_paid_credits_are_refunded_newest_payment_first_and_promotional_credits_stay,
    a_refund_of_unused_credits_that_razorpay_fails_returns_the_credits,
    a_refund_of_unused_credits_leaves_reserved_credits_alone,
    a_refund_razorpay_refuses_returns_its_credits_at_once,
    a_refund_razorpay_cannot_take_yet_is_sent_again_by_reconciliation,
    a_flagged_top_up_is_credited_as_promised_once,
    a_flagged_top_up_can_be_refunded_or_dismissed,
    customers_are_found_by_email_top_up_order_and_payment,
    the_operator_command_grants_and_takes_away_the_role,
    a_refund_shortfall_waits_for_an_operator_to_accept_it,
    a_captured_payment_never_credited_is_handed_to_an_operator_by_the_audit,
);

const OPERATOR: &str = "ops@kalp.example";

async fn set_role(app: &TestApp, email: &str, operator: bool) {
    let changed = app
        .state
        .ledger
        .autocommit(|w| {
            Box::pin(async move { web::store::users::set_operator(w, email, operator).await })
        })
        .await
        .expect("set role");
    assert!(changed, "{email} has an account");
}

/// Another browser, signed in as an operator.
async fn operator(app: &TestApp) -> Visitor {
    let ops = TestApp::fresh_browser(app);
    ops.sign_up(OPERATOR).await;
    set_role(app, OPERATOR, true).await;
    ops
}

async fn customer_id(app: &TestApp, email: &str) -> i64 {
    web::store::users::by_email(&app.state.reads, email)
        .await
        .expect("read")
        .expect("account")
        .id
}

/// Posts a form on the customer page, with the page's CSRF and one-time tokens.
async fn post_customer_form(
    ops: &Visitor,
    customer: i64,
    action: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, Vec<(String, String)>) {
    let (status, page) = ops.get_html(&format!("/admin/customers/{customer}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let hidden = hidden_fields(&page);
    let (csrf, token) = (field(&hidden, "csrf"), field(&hidden, "token"));
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf), ("token", &token)];
    form.extend_from_slice(fields);
    let r = ops
        .post_form(&format!("/admin/customers/{customer}/{action}"), &form)
        .await;
    let status = r.status();
    let body = r.text().await.expect("body");
    let sent = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (status, body, sent)
}

/// The outcome line of an action's answer page.
fn outcome(page: &str) -> String {
    let marker = "data-testid=\"outcome\">";
    page.find(marker)
        .map(|i| {
            page[i + marker.len()..]
                .split('<')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_else(|| page.to_string())
}

async fn admin_pages_are_not_found_for_anyone_but_operators(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let id = customer_id(&app, "asha@example.com").await;
    let stranger = TestApp::fresh_browser(&app);
    for who in [&stranger.client, &app.client] {
        for path in [
            "/admin".to_string(),
            format!("/admin/customers/{id}"),
            "/admin/anything".to_string(),
        ] {
            let r = who
                .get(format!("{}{path}", app.url))
                .send()
                .await
                .expect("GET");
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(r.text().await.expect("body").contains("Page not found"));
        }
    }
    // Forms too, with a valid CSRF token of the customer's own session.
    let csrf = app.csrf().await;
    for path in [
        format!("/admin/customers/{id}/grant"),
        format!("/admin/customers/{id}/adjust"),
        "/admin/topups/1/resolve".to_string(),
        "/admin/refund-requests/1/approve".to_string(),
    ] {
        let r = app
            .post_form(
                &path,
                &[("csrf", &csrf), ("credits", "100"), ("reason", "me")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.credits_of("asha@example.com").await, 0);
    // The role, granted and taken away.
    let ops = operator(&app).await;
    assert_eq!(ops.get("/admin").await.status(), StatusCode::OK);
    set_role(&app, OPERATOR, false).await;
    assert_eq!(ops.get("/admin").await.status(), StatusCode::NOT_FOUND);
}

async fn promotional_credits_are_granted_once_with_their_expiry(app: TestApp) {
    app.sign_up("promo@example.com").await;
    let id = customer_id(&app, "promo@example.com").await;
    let ops = operator(&app).await;
    // Refused without a reason, or with bad values: nothing moves.
    for (credits, expiry, reason, says) in [
        ("500", "", "", "Write a reason"),
        ("0", "", "welcome", "above zero"),
        ("lots", "", "welcome", "whole number"),
        ("500", "2020-01-01", "welcome", "has passed"),
    ] {
        let (status, page, _) = post_customer_form(
            &ops,
            id,
            "grant",
            &[("credits", credits), ("expiry", expiry), ("reason", reason)],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        assert!(outcome(&page).contains(says), "{page}");
    }
    assert_eq!(app.credits_of("promo@example.com").await, 0);
    // A double click: the same form twice grants once.
    let expiry = (chrono::Utc::now() + chrono::Duration::days(25))
        .with_timezone(&chrono::FixedOffset::east_opt(19_800).expect("IST"))
        .date_naive();
    let expiry_text = expiry.format("%Y-%m-%d").to_string();
    let (status, page, sent) = post_customer_form(
        &ops,
        id,
        "grant",
        &[
            ("credits", "500"),
            ("expiry", &expiry_text),
            ("reason", "welcome offer"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(outcome(&page).starts_with("Done"), "{page}");
    let again: Vec<(&str, &str)> = sent.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = ops
        .post_form(&format!("/admin/customers/{id}/grant"), &again)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(outcome(&r.text().await.expect("body")).contains("already done"));
    assert_eq!(app.credits_of("promo@example.com").await, 500);
    // The customer sees them as promotional, with the expiry.
    let (_, billing) = app.get_html("/billing").await;
    let date = expiry.format("%d %b %Y").to_string();
    assert!(
        billing.contains("data-testid=\"promotional-credits\">500<"),
        "{billing}"
    );
    assert!(
        billing.contains(&format!("500 credits expire on {date}")),
        "{billing}"
    );
    let (_, history) = app.get_html("/billing/history").await;
    assert!(history.contains("Promotional credits"), "{history}");
    assert!(history.contains(&format!("expire on {date}")), "{history}");
    // The log: who, what, why, and the transfer.
    let (_, admin) = ops.get_html(&format!("/admin?customer={id}")).await;
    assert!(admin.contains("welcome offer"), "{admin}");
    assert!(admin.contains("granted 500 promotional credits"), "{admin}");
    assert!(admin.contains(OPERATOR), "{admin}");
    assert!(admin.contains("transfer "), "{admin}");
    app.audit_clean().await;
    let audit = app.money_audit().await;
    assert!(audit.is_clean(), "{:?}", audit.differences);
    assert!(
        audit.operator_summary.iter().any(|l| l.contains("grant 1")),
        "{:?}",
        audit.operator_summary
    );
}

async fn a_manual_debit_never_takes_a_balance_below_zero(app: TestApp) {
    app.sign_up("adjust@example.com").await;
    let id = customer_id(&app, "adjust@example.com").await;
    let ops = operator(&app).await;
    let (status, page, _) = post_customer_form(
        &ops,
        id,
        "adjust",
        &[
            ("credits", "300"),
            ("direction", "credit"),
            ("reason", "goodwill"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, page, _) = post_customer_form(
        &ops,
        id,
        "adjust",
        &[
            ("credits", "301"),
            ("direction", "debit"),
            ("reason", "correction"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        outcome(&page).contains("at most 300 can be taken"),
        "{page}"
    );
    assert_eq!(app.credits_of("adjust@example.com").await, 300);
    let (_, customer) = ops.get_html(&format!("/admin/customers/{id}")).await;
    assert!(
        customer.contains("At most 300 credits can be taken now"),
        "{customer}"
    );
    let (status, page, _) = post_customer_form(
        &ops,
        id,
        "adjust",
        &[
            ("credits", "120"),
            ("direction", "debit"),
            ("reason", "correction"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(app.credits_of("adjust@example.com").await, 180);
    let (_, history) = app.get_html("/billing/history").await;
    assert!(history.contains("Adjustment"), "{history}");
    app.audit_clean().await;
}

async fn settled(app: &TestApp) {
    app.eventually("webhooks to settle", || app.webhooks_settled())
        .await;
}

/// Pays `amount` by UPI and waits until it is credited.
async fn paid_top_up(app: &TestApp, amount: &str) -> String {
    let (_, answer) = app
        .pay_directly(amount, json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    assert_eq!(app.post_callback(&answer).await, StatusCode::SEE_OTHER);
    settled(app).await;
    answer["payment"]["id"]
        .as_str()
        .expect("payment id")
        .to_string()
}

async fn unused_paid_credits_are_refunded_newest_payment_first_and_promotional_credits_stay(
    app: TestApp,
) {
    let email = "refund-me@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    // ₹500 (5,000 credits), then ₹300 (3,000 credits), 10 paise a credit.
    let older = paid_top_up(&app, "500").await;
    let newer = paid_top_up(&app, "300").await;
    let ops = operator(&app).await;
    post_customer_form(
        &ops,
        id,
        "grant",
        &[
            ("credits", "700"),
            ("expiry", ""),
            ("reason", "launch promo"),
        ],
    )
    .await;
    // 1,200 credits spent: the 700 promotional first, then 500 of the oldest paid lot.
    post_customer_form(
        &ops,
        id,
        "adjust",
        &[
            ("credits", "1200"),
            ("direction", "debit"),
            ("reason", "usage correction"),
        ],
    )
    .await;
    assert_eq!(app.credits_of(email).await, 7_500);
    // The customer asks from Billing; asking twice opens one request.
    let csrf = app.csrf().await;
    for _ in 0..2 {
        let r = app
            .post_form("/billing/refund-request", &[("csrf", &csrf)])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let (_, billing) = app.get_html("/billing?refund_requested=1").await;
    assert!(billing.contains("waiting for review"), "{billing}");
    // The operator sees it in Needs attention, with what can be refunded, and approves it.
    let (_, admin) = ops.get_html("/admin").await;
    assert_eq!(
        admin.matches("data-testid=\"request-").count(),
        1,
        "{admin}"
    );
    assert!(
        admin.contains("7,500 credits, ₹750 to 2 payment(s)"),
        "{admin}"
    );
    let request = admin
        .split("/admin/refund-requests/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("request id")
        .to_string();
    let csrf = common::csrf_of(&admin);
    let approve = format!("/admin/refund-requests/{request}/approve");
    let form = [("csrf", csrf.as_str()), ("reason", "customer leaving")];
    let (first, second) = tokio::join!(
        ops.post_form(&approve, &form),
        ops.post_form(&approve, &form)
    );
    let answers = [
        outcome(&first.text().await.expect("body")),
        outcome(&second.text().await.expect("body")),
    ];
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.contains("already done"))
            .count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.contains("7,500 credits (₹750) taken back; 2 refund(s) created")),
        "{answers:?}"
    );
    assert_eq!(app.credits_of(email).await, 0);
    settled(&app).await;
    // Newest payment refunded in full, the older one for what was left of it.
    assert_eq!(
        app.razorpay_payment(&newer).await["amount_refunded"],
        30_000
    );
    assert_eq!(
        app.razorpay_payment(&older).await["amount_refunded"],
        45_000
    );
    let (_, history) = app.get_html("/billing/history").await;
    assert_eq!(
        history.matches("Refund of unused credits").count(),
        2,
        "{history}"
    );
    // Each refund, once processed, has its refund voucher against the top-up's receipt.
    app.reconcile().await;
    let vouchers = web::store::vouchers::of_user(&app.state.reads, id)
        .await
        .expect("vouchers");
    let refund_vouchers: Vec<i64> = vouchers
        .iter()
        .filter(|v| v.kind == web::store::vouchers::VoucherKind::Refund)
        .map(|v| v.amount_paise)
        .collect();
    assert_eq!(refund_vouchers.len(), 2, "{vouchers:#?}");
    assert_eq!(refund_vouchers.iter().sum::<i64>(), 75_000);
    let (_, billing) = app.get_html("/billing").await;
    assert!(billing.contains("approved"), "{billing}");
    // Asking again: nothing is left to refund; the audit counts it all and is clean.
    app.reconcile().await;
    app.money_audit_clean().await;
    let audit = app.money_audit().await;
    assert!(
        audit
            .operator_summary
            .iter()
            .any(|l| l.contains("refund_unused 1")),
        "{:?}",
        audit.operator_summary
    );
}

async fn a_refund_of_unused_credits_that_razorpay_fails_returns_the_credits(app: TestApp) {
    let email = "fails@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    let payment = paid_top_up(&app, "200").await;
    let mut faults = app.fake.fake.faults();
    faults.refund_outcome = fake_razorpay::RefundOutcome::Pending;
    app.fake.fake.set_faults(faults);
    let ops = operator(&app).await;
    let (status, page, _) =
        post_customer_form(&ops, id, "refund-unused", &[("reason", "closing account")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(app.credits_of(email).await, 0);
    settled(&app).await;
    let refunds = app.razorpay_payment(&payment).await;
    assert_eq!(refunds["amount_refunded"], 20_000);
    // Razorpay fails the refund: the money stayed with us, so the credits come back.
    let listed: serde_json::Value = common::browser()
        .get(format!("{}/v1/payments/{payment}/refunds", app.fake.url()))
        .basic_auth(
            fake_razorpay::DEV_KEY_ID,
            Some(fake_razorpay::DEV_KEY_SECRET),
        )
        .send()
        .await
        .expect("refunds")
        .json()
        .await
        .expect("json");
    let refund = listed["items"][0]["id"].as_str().expect("refund id");
    app.fake_control(
        &format!("/_fake/refunds/{refund}/process"),
        json!({"outcome": "failed"}),
    )
    .await;
    settled(&app).await;
    assert_eq!(app.credits_of(email).await, 2_000);
    let (_, history) = app.get_html("/billing/history").await;
    assert!(
        history.contains("Refund failed: credits returned"),
        "{history}"
    );
    app.money_audit_clean().await;
}

/// A top-up whose payment Razorpay captured for another amount than we expected: flagged.
async fn flagged_top_up(app: &TestApp) -> (i64, String) {
    app.fake.fake.set_webhook(None, None);
    let (path, answer) = app
        .pay_directly("400", json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    let topup: i64 = path
        .rsplit('/')
        .next()
        .expect("id")
        .parse()
        .expect("number");
    // What we expected differs from what Razorpay captured (as if the order had been changed).
    app.tamper(&format!(
        "UPDATE web_topups SET amount_paise = 40100 WHERE id = {topup}"
    ))
    .await;
    app.post_callback(&answer).await;
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    let stored = web::store::topups::find(&app.state.reads, topup)
        .await
        .expect("read")
        .expect("top-up");
    assert_eq!(stored.status, web::store::topups::TopupStatus::Flagged);
    (topup, payment)
}

async fn resolve(ops: &Visitor, topup: i64, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let (_, admin) = ops.get_html("/admin").await;
    resolve_with(ops, &common::csrf_of(&admin), topup, fields).await
}

/// `resolve` with a CSRF token read beforehand: two resolutions racing each other can't both read
/// it from /admin, whose form is gone once the first has resolved the top-up.
async fn resolve_with(
    ops: &Visitor,
    csrf: &str,
    topup: i64,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form = vec![("csrf", csrf)];
    form.extend_from_slice(fields);
    let r = ops
        .post_form(&format!("/admin/topups/{topup}/resolve"), &form)
        .await;
    let status = r.status();
    (status, r.text().await.expect("body"))
}

async fn a_flagged_top_up_is_credited_as_promised_once(app: TestApp) {
    app.sign_up("flagged@example.com").await;
    let (topup, payment) = flagged_top_up(&app).await;
    assert_eq!(app.credits_of("flagged@example.com").await, 0);
    let ops = operator(&app).await;
    let (_, admin) = ops.get_html("/admin").await;
    assert!(
        admin.contains(&format!("data-testid=\"flagged-{topup}\"")),
        "{admin}"
    );
    assert!(admin.contains("₹401 for 4,000 credits"), "{admin}");
    assert!(
        admin.contains("Captured, ₹400 INR"),
        "Razorpay's side: {admin}"
    );
    let audit = app.money_audit().await;
    assert!(
        !audit.is_clean(),
        "a flagged top-up is a difference until resolved"
    );
    let form = [("action", "credit"), ("reason", "order edited by support")];
    let csrf = common::csrf_of(&admin);
    let (a, b) = tokio::join!(
        resolve_with(&ops, &csrf, topup, &form),
        resolve_with(&ops, &csrf, topup, &form)
    );
    assert!(
        a.0 == StatusCode::OK && b.0 == StatusCode::OK,
        "{a:?} {b:?}"
    );
    assert_eq!(
        [&a.1, &b.1]
            .iter()
            .filter(|p| outcome(p).contains("already done"))
            .count(),
        1
    );
    assert_eq!(app.credits_of("flagged@example.com").await, 4_000);
    let (_, page) = app.get_html(&format!("/billing/topups/{topup}")).await;
    assert!(page.contains("4,000"), "{page}");
    let (_, admin) = ops.get_html("/admin").await;
    assert!(
        !admin.contains(&format!("data-testid=\"flagged-{topup}\"")),
        "{admin}"
    );
    assert!(
        admin.contains(&payment),
        "the log names the payment: {admin}"
    );
    app.money_audit_clean().await;
}

async fn a_flagged_top_up_can_be_refunded_or_dismissed(app: TestApp) {
    app.sign_up("flag2@example.com").await;
    let (first, payment) = flagged_top_up(&app).await;
    let ops = operator(&app).await;
    let (status, page) = resolve(
        &ops,
        first,
        &[("action", "refund"), ("amount", "900"), ("reason", "r")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let (status, page) = resolve(
        &ops,
        first,
        &[("action", "refund"), ("reason", "customer asked")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        app.razorpay_payment(&payment).await["amount_refunded"],
        40_000
    );
    let (second, _) = flagged_top_up(&app).await;
    let (status, page) = resolve(&ops, second, &[("action", "dismiss"), ("reason", "")]).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a reason is required: {page}"
    );
    let (status, page) = resolve(
        &ops,
        second,
        &[("action", "dismiss"), ("reason", "test payment")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(app.credits_of("flag2@example.com").await, 0);
    let (_, admin) = ops.get_html("/admin").await;
    assert!(admin.contains("Nothing needs a decision"), "{admin}");
    let audit = app.money_audit().await;
    assert!(audit.ledger.is_clean(), "{}", audit.ledger);
    assert!(audit.differences.is_empty(), "{:?}", audit.differences);
}

async fn customers_are_found_by_email_top_up_order_and_payment(app: TestApp) {
    app.sign_up("findme@example.com").await;
    let id = customer_id(&app, "findme@example.com").await;
    let (path, answer) = app
        .pay_directly("100", json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    app.post_callback(&answer).await;
    let topup = path.rsplit('/').next().expect("id").to_string();
    let order = answer["order_id"].as_str().expect("order").to_string();
    let payment = answer["payment"]["id"]
        .as_str()
        .expect("payment")
        .to_string();
    let ops = operator(&app).await;
    for q in [
        "FindMe@example.com".to_string(),
        format!("#{topup}"),
        order,
        payment,
    ] {
        let r = ops.get(&format!("/admin?q={}", urlencode(&q))).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{q}");
        assert_eq!(
            r.headers()["location"],
            format!("/admin/customers/{id}"),
            "{q}"
        );
    }
    let (_, page) = ops.get_html("/admin?q=nobody%40example.com").await;
    assert!(page.contains("No customer matches"), "{page}");
    let (_, customer) = ops.get_html(&format!("/admin/customers/{id}")).await;
    for shown in [
        "findme@example.com",
        "1,000",
        "Paid credits",
        "Low-balance alert",
    ] {
        assert!(customer.contains(shown), "{shown}: {customer}");
    }
    assert_eq!(
        ops.get("/admin/customers/999999").await.status(),
        StatusCode::NOT_FOUND
    );
}

fn urlencode(s: &str) -> String {
    s.replace('#', "%23").replace('@', "%40")
}

async fn wallet(app: &TestApp, email: &str) -> ledger::AccountId {
    app.state
        .ledger
        .find_wallet(&format!("user:{email}"))
        .await
        .expect("wallet")
        .expect("exists")
}

async fn a_refund_of_unused_credits_leaves_reserved_credits_alone(app: TestApp) {
    let email = "reserved@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    let payment = paid_top_up(&app, "100").await;
    // 400 of the 1,000 credits are held by a send in progress.
    let reservation = app
        .state
        .ledger
        .reserve(ledger::Reserve {
            wallet: wallet(&app, email).await,
            amount: ledger::Credits::new(400).expect("credits"),
            kind: ledger::DebitKind::UsageEmail,
            key: ledger::IdempotencyKey::new("campaign-held").expect("key"),
            reference: None,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        })
        .await
        .expect("reserve");
    let ops = operator(&app).await;
    let (_, customer) = ops.get_html(&format!("/admin/customers/{id}")).await;
    assert!(
        customer.contains("data-testid=\"reserved\">400<"),
        "{customer}"
    );
    let (status, page, _) =
        post_customer_form(&ops, id, "refund-unused", &[("reason", "asked by phone")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        outcome(&page).contains("600 credits (₹60) taken back"),
        "{page}"
    );
    settled(&app).await;
    assert_eq!(
        app.razorpay_payment(&payment).await["amount_refunded"],
        6_000
    );
    let balance = app
        .state
        .ledger
        .balance(wallet(&app, email).await)
        .await
        .expect("balance");
    assert_eq!((balance.available, balance.reserved), (0, 400));
    // The send completes with what it held.
    app.state
        .ledger
        .settle(ledger::Settle {
            reservation: reservation.id,
            used: 400,
        })
        .await
        .expect("settle");
    app.audit_clean().await;
    app.money_audit_clean().await;
}

async fn a_refund_razorpay_refuses_returns_its_credits_at_once(app: TestApp) {
    let email = "refused@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    let payment = paid_top_up(&app, "100").await;
    // Support refunds ₹60 on Razorpay's dashboard, and we have not heard of it yet.
    app.fake.fake.set_webhook(None, None);
    app.razorpay_refund(&payment, Some(6_000)).await;
    let ops = operator(&app).await;
    let (status, page, _) =
        post_customer_form(&ops, id, "refund-unused", &[("reason", "closing")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // We asked for ₹100; Razorpay has only ₹40 left to refund and refuses: credits come back.
    assert!(outcome(&page).contains("1 refused by Razorpay"), "{page}");
    assert_eq!(app.credits_of(email).await, 1_000);
    let (_, customer) = ops.get_html(&format!("/admin/customers/{id}")).await;
    assert!(
        customer.contains("refused by Razorpay, credits returned"),
        "{customer}"
    );
    let (_, history) = app.get_html("/billing/history").await;
    assert!(
        history.contains("Refund not made: credits returned"),
        "{history}"
    );
    // Reconciliation then finds support's refund and takes its share back, once.
    app.reconcile().await;
    assert_eq!(app.credits_of(email).await, 400);
    app.money_audit_clean().await;
}

async fn a_refund_razorpay_cannot_take_yet_is_sent_again_by_reconciliation(app: TestApp) {
    let email = "later@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    let payment = paid_top_up(&app, "100").await;
    let ops = operator(&app).await;
    let healthy = app.fake.fake.faults();
    let mut broken = healthy.clone();
    broken.api_error_percent = 100;
    app.fake.fake.set_faults(broken);
    let (status, page, _) =
        post_customer_form(&ops, id, "refund-unused", &[("reason", "closing")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(outcome(&page).contains("1 to be sent again"), "{page}");
    // The credits are taken back already; the refund waits, visible to operators.
    assert_eq!(app.credits_of(email).await, 0);
    let (_, admin) = ops.get_html("/admin").await;
    assert!(
        admin.contains("Refunds of unused credits waiting for Razorpay"),
        "{admin}"
    );
    app.fake.fake.set_faults(healthy);
    let audit = app.money_audit().await;
    assert!(
        audit
            .notes
            .iter()
            .any(|n| n.contains("waiting for Razorpay")),
        "{:?}",
        audit.notes
    );
    app.reconcile().await;
    settled(&app).await;
    assert_eq!(
        app.razorpay_payment(&payment).await["amount_refunded"],
        10_000
    );
    assert_eq!(app.credits_of(email).await, 0);
    let (_, admin) = ops.get_html("/admin").await;
    assert!(admin.contains("Nothing needs a decision"), "{admin}");
    app.money_audit_clean().await;
}

/// Runs `web operator VERB EMAIL` against the test's database.
fn operator_command(app: &TestApp, verb: &str, email: &str) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_web"));
    command
        .args(["operator", verb, email])
        .env("KALP__DATABASE__URL", &app.settings.database.url)
        .env("KALP_CONFIG_DIR", "/nonexistent")
        .env("RUST_LOG", "error");
    if let Some(schema) = &app.settings.database.schema {
        command.env("KALP__DATABASE__SCHEMA", schema);
    }
    command.output().expect("web operator runs")
}

async fn the_operator_command_grants_and_takes_away_the_role(app: TestApp) {
    let ops = TestApp::fresh_browser(&app);
    ops.sign_up("lead@kalp.example").await;
    assert_eq!(ops.get("/admin").await.status(), StatusCode::NOT_FOUND);
    let added = operator_command(&app, "add", "Lead@Kalp.example");
    assert!(added.status.success(), "{added:?}");
    assert!(String::from_utf8_lossy(&added.stdout).contains("is an operator now"));
    assert_eq!(ops.get("/admin").await.status(), StatusCode::OK);
    let unknown = operator_command(&app, "add", "nobody@kalp.example");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no account has the email"),
        "{unknown:?}"
    );
    let bad = operator_command(&app, "promote", "lead@kalp.example");
    assert!(!bad.status.success());
    let removed = operator_command(&app, "remove", "lead@kalp.example");
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(ops.get("/admin").await.status(), StatusCode::NOT_FOUND);
}

async fn a_refund_shortfall_waits_for_an_operator_to_accept_it(app: TestApp) {
    let email = "spent@example.com";
    app.sign_up(email).await;
    let id = customer_id(&app, email).await;
    let payment = paid_top_up(&app, "100").await;
    let ops = operator(&app).await;
    post_customer_form(
        &ops,
        id,
        "adjust",
        &[
            ("credits", "900"),
            ("direction", "debit"),
            ("reason", "sent a campaign"),
        ],
    )
    .await;
    // Support refunds the whole payment: 1,000 credits owed back, 100 left to take.
    app.razorpay_refund(&payment, None).await;
    settled(&app).await;
    assert_eq!(app.credits_of(email).await, 0);
    let (_, admin) = ops.get_html("/admin").await;
    assert!(admin.contains("Refunds with a shortfall"), "{admin}");
    let refund = admin
        .split("/admin/shortfalls/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("accept form")
        .to_string();
    let csrf = common::csrf_of(&admin);
    let path = format!("/admin/shortfalls/{refund}/accept");
    let r = ops
        .post_form(&path, &[("csrf", &csrf), ("reason", "")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = ops
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("reason", "spent before the refund; written off"),
            ],
        )
        .await;
    assert!(outcome(&r.text().await.expect("body")).contains("accepted"));
    let again = ops
        .post_form(&path, &[("csrf", &csrf), ("reason", "twice")])
        .await;
    assert!(outcome(&again.text().await.expect("body")).contains("already done"));
    let (_, admin) = ops.get_html("/admin").await;
    assert!(!admin.contains("Refunds with a shortfall"), "{admin}");
    assert!(
        admin.contains("accepted a shortfall of 900 credits"),
        "{admin}"
    );
    app.money_audit_clean().await;
}

async fn a_captured_payment_never_credited_is_handed_to_an_operator_by_the_audit(app: TestApp) {
    let email = "lost@example.com";
    app.sign_up(email).await;
    // Paid, but every report was lost and the top-up was given up (as if reconciliation's
    // window had passed): Razorpay has the money, we gave no credits.
    app.fake.fake.set_webhook(None, None);
    let (path, answer) = app
        .pay_directly("150", json!({"method": "upi", "vpa": "success@razorpay"}))
        .await;
    let topup: i64 = path
        .rsplit('/')
        .next()
        .expect("id")
        .parse()
        .expect("number");
    let payment = answer["payment"]["id"].as_str().expect("id").to_string();
    app.tamper(&format!(
        "UPDATE web_topups SET status = 'expired' WHERE id = {topup}"
    ))
    .await;
    let audit = app.money_audit().await;
    assert!(
        audit
            .differences
            .iter()
            .any(|d| d.contains(&payment) && d.contains("never credited")),
        "{:?}",
        audit.differences
    );
    let ops = operator(&app).await;
    let (_, admin) = ops.get_html("/admin").await;
    assert!(
        admin.contains(&format!("data-testid=\"flagged-{topup}\"")),
        "{admin}"
    );
    assert!(admin.contains("the audit found payment"), "{admin}");
    let (status, page) = resolve(
        &ops,
        topup,
        &[("action", "credit"), ("reason", "webhooks were down")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(app.credits_of(email).await, 1_500);
    app.money_audit_clean().await;
}
