//! The user guide's journey, as a person would go through it: sign up, Billing, Top up → Add
//! Credits, Razorpay's checkout with each method, back to Kalp Studio with the credits shown on
//! Billing, the Dashboard and Credit History — once.

mod common;

use common::{Pay, TestApp};
use reqwest::StatusCode;

on_both_backends!(
    upi_id_top_up_credits_once_and_shows_everywhere,
    upi_qr_top_up,
    card_with_otp_top_up,
    netbanking_top_up,
    wallet_top_up,
    failed_payments_credit_nothing_and_offer_try_again,
    a_replayed_callback_credits_once,
    a_forged_callback_is_refused,
    cancelling_returns_to_billing,
    the_csv_holds_the_whole_history_across_pages,
);

async fn upi_id_top_up_credits_once_and_shows_everywhere(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (_, billing) = app.get_html("/billing").await;
    for label in [
        "Billing",
        "My Credits",
        "Top up",
        "Add Credits",
        "Amount",
        "₹",
        "Credit History",
        "Dashboard",
    ] {
        assert!(billing.contains(label), "Billing shows {label}");
    }
    assert_eq!(app.balance_on_billing().await, "0");

    let (_, page) = app.top_up("1,000.50", Pay::UpiId("success@razorpay")).await;
    assert!(page.contains("Payment successful"), "{page}");
    assert!(page.contains("₹1,000.50"));
    assert!(page.contains("UPI"));
    assert!(page.contains("data-testid=\"credits-added\">10,005<"));
    assert!(page.contains("data-testid=\"balance\">10,005<"));
    assert!(page.contains("/billing/history"));
    assert_eq!(app.balance_on_billing().await, "10,005");

    let (_, dashboard) = app.get_html("/dashboard").await;
    assert!(dashboard.contains("data-testid=\"balance\">10,005<"));
    assert!(dashboard.contains("Credits for Email Services"));
    let (_, history) = app.get_html("/billing/history").await;
    assert!(
        history.contains("Top-up") && history.contains("+10,005") && history.contains("₹1,000.50")
    );
    assert!(history.contains("UPI") && history.contains("pay_"));
    let csv = app.get("/billing/history.csv").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("csv");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.contains(",10005,") && l.contains("\"UPI\"")),
        "{csv}"
    );
    app.audit_clean().await;
}

async fn upi_qr_top_up(app: TestApp) {
    app.sign_up("qr@example.com").await;
    let (_, page) = app.top_up("100", Pay::UpiQr).await;
    assert!(page.contains("Payment successful"));
    assert_eq!(app.balance_on_billing().await, "1,000");
}

async fn card_with_otp_top_up(app: TestApp) {
    app.sign_up("card@example.com").await;
    let (_, page) = app
        .top_up(
            "2500",
            Pay::Card {
                number: "4100 2800 0000 1007",
                otp: "123456",
            },
        )
        .await;
    assert!(
        page.contains("Payment successful") && page.contains("Card"),
        "{page}"
    );
    assert_eq!(app.balance_on_billing().await, "25,000");
    app.audit_clean().await;
}

async fn netbanking_top_up(app: TestApp) {
    app.sign_up("nb@example.com").await;
    let (_, page) = app
        .top_up(
            "₹ 500",
            Pay::Netbanking {
                bank: "HDFC",
                success: true,
            },
        )
        .await;
    assert!(page.contains("Payment successful") && page.contains("Netbanking"));
    assert_eq!(app.balance_on_billing().await, "5,000");
}

async fn wallet_top_up(app: TestApp) {
    app.sign_up("wallet@example.com").await;
    let (_, page) = app
        .top_up(
            "750",
            Pay::Wallet {
                wallet: "payzapp",
                success: true,
            },
        )
        .await;
    assert!(page.contains("Payment successful") && page.contains("Wallet"));
    assert_eq!(app.balance_on_billing().await, "7,500");
}

/// Each failure shows Razorpay's reason code in our own words (never words from the unsigned
/// callback), and Try again opens Add Credits with the same amount.
async fn failed_payments_credit_nothing_and_offer_try_again(app: TestApp) {
    app.sign_up("fail@example.com").await;
    for (pay, reason) in [
        (
            Pay::UpiId("failure@razorpay"),
            "The payment did not go through.",
        ),
        (
            Pay::Card {
                number: "4100280000060003",
                otp: "1234",
            },
            "Your bank declined the card.",
        ),
        (
            Pay::Netbanking {
                bank: "ICIC",
                success: false,
            },
            "The payment did not go through.",
        ),
        (
            Pay::Wallet {
                wallet: "freecharge",
                success: false,
            },
            "The payment did not go through.",
        ),
    ] {
        let (path, page) = app.top_up("1000", pay.clone()).await;
        assert!(page.contains("Payment failed"), "{pay:?}: {page}");
        assert!(page.contains(reason), "{pay:?} shows {reason}: {page}");
        let retry = format!("{path}/retry");
        assert!(
            page.contains("Try again") && page.contains(&retry),
            "{page}"
        );
        let r = app.get(&retry).await;
        assert_eq!(
            r.headers().get("location").and_then(|l| l.to_str().ok()),
            Some("/billing/topup?amount=1000.00")
        );
    }
    assert_eq!(app.balance_on_billing().await, "0");
    let (_, billing) = app.get_html("/billing").await;
    assert_eq!(billing.matches(">Failed<").count(), 4);
    // Try again opens Add Credits with the amount filled in.
    let (_, retry) = app.get_html("/billing/topup?amount=1000.00").await;
    assert!(retry.contains("value=\"1000.00\""));
    app.audit_clean().await;
}

async fn a_replayed_callback_credits_once(app: TestApp) {
    app.sign_up("replay@example.com").await;
    let (status, redirect) = app.add_credits("300").await;
    assert_eq!(status, StatusCode::OK);
    let fields = common::hidden_fields(&redirect);
    let order = common::field(&fields, "order_id");
    let callback = common::field(&fields, "callback_url");
    let paid: serde_json::Value = app
        .client
        .post(format!("{}/_fake/orders/{order}/pay", app.fake.url()))
        .json(&serde_json::json!({"method": "upi", "vpa": "success@razorpay"}))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    let form: Vec<(String, String)> = paid["callback"]
        .as_object()
        .expect("callback fields")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (callback, form) = (callback.clone(), form.clone());
            tokio::spawn(async move {
                common::browser()
                    .post(&callback)
                    .form(&form)
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.expect("task").expect("callback"),
            StatusCode::SEE_OTHER
        );
    }
    assert_eq!(app.balance_on_billing().await, "3,000");
    let (_, history) = app.get_html("/billing/history").await;
    assert_eq!(history.matches("+3,000").count(), 1);
    app.audit_clean().await;
}

async fn a_forged_callback_is_refused(app: TestApp) {
    // Only the callback is under test here: no webhooks.
    app.fake.fake.set_webhook(None, None);
    app.sign_up("forge@example.com").await;
    let (_, redirect) = app.add_credits("300").await;
    let fields = common::hidden_fields(&redirect);
    let order = common::field(&fields, "order_id");
    let callback = common::field(&fields, "callback_url");
    // A real payment on another order, presented as this order's; and a made-up signature.
    let (_, other) = app.add_credits("5000").await;
    let other_order = common::field(&common::hidden_fields(&other), "order_id");
    let paid: serde_json::Value = app
        .client
        .post(format!("{}/_fake/orders/{other_order}/pay", app.fake.url()))
        .json(&serde_json::json!({"method": "upi", "vpa": "success@razorpay", "close_tab": true}))
        .send()
        .await
        .expect("pay")
        .json()
        .await
        .expect("json");
    let payment = paid["payment"]["id"]
        .as_str()
        .expect("payment id")
        .to_string();
    for signature in ["0".repeat(64), "not-hex".to_string(), String::new()] {
        let r = common::browser()
            .post(&callback)
            .form(&[
                ("razorpay_payment_id", payment.as_str()),
                ("razorpay_order_id", order.as_str()),
                ("razorpay_signature", signature.as_str()),
            ])
            .send()
            .await
            .expect("callback");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{signature:?}");
        assert!(r.text().await.expect("page").contains("could not verify"));
    }
    let r = common::browser()
        .post(&callback)
        .form(&[("nonsense", "1")])
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.balance_on_billing().await, "0");
    app.audit_clean().await;
}

async fn cancelling_returns_to_billing(app: TestApp) {
    app.sign_up("cancel@example.com").await;
    let (_, redirect) = app.add_credits("300").await;
    let fields = common::hidden_fields(&redirect);
    let cancel = common::field(&fields, "cancel_url");
    // Razorpay's cancel_url is a GET: a page offering Try again or Cancel this top-up.
    let page = app
        .client
        .get(&cancel)
        .send()
        .await
        .expect("cancel page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Cancel this top-up"), "{page}");
    let r = app
        .client
        .post(&cancel)
        .form(&[("csrf", common::csrf_of(&page))])
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let (_, billing) = app.get_html(&location).await;
    assert!(billing.contains("Payment cancelled. Nothing was charged."));
    assert!(billing.contains(">Cancelled<"));
    assert_eq!(app.balance_on_billing().await, "0");
}

/// The CSV streams the history page by page (500 entries each): 1,201 entries come out as
/// 1,201 lines after the header, newest first, each once.
async fn the_csv_holds_the_whole_history_across_pages(app: TestApp) {
    app.sign_up("long@example.com").await;
    let ledger = &app.state.ledger;
    let wallet = ledger
        .find_wallet("user:long@example.com")
        .await
        .expect("wallet")
        .expect("exists");
    ledger
        .credit(ledger::Credit {
            wallet,
            amount: ledger::Credits::new(5_000).expect("credits"),
            kind: ledger::CreditKind::Grant,
            key: ledger::IdempotencyKey::new("csv-grant").expect("key"),
            reference: None,
            memo: Some("Welcome credits".into()),
            expires_at: None,
        })
        .await
        .expect("grant");
    for i in 0..1_200 {
        ledger
            .debit(ledger::Debit {
                wallet,
                amount: ledger::Credits::new(1).expect("credits"),
                kind: ledger::DebitKind::UsageEmail,
                key: ledger::IdempotencyKey::new(format!("csv-send-{i}")).expect("key"),
                reference: None,
                memo: Some(format!("send {i}")),
            })
            .await
            .expect("debit");
    }
    let csv = app.get("/billing/history.csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 1_201, "a header and every entry");
    assert!(lines[0].starts_with("date,type,description"));
    assert!(
        lines[1].contains("\"send 1199\""),
        "newest first: {}",
        lines[1]
    );
    assert!(lines[1_200].contains("\"send 0\""), "{}", lines[1_200]);
    assert!(
        lines[1_201].contains("\"Welcome credits\",5000"),
        "{}",
        lines[1_201]
    );
    let sends: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter(|l| l.contains("\"send "))
        .copied()
        .collect();
    assert_eq!(sends.len(), 1_200, "each send once");
}
