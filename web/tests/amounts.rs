//! The Amount field's rules: what people type is accepted; anything else shows a clear message
//! beside the field, keeps what was typed, and creates nothing.

mod common;

use common::TestApp;
use reqwest::StatusCode;

on_both_backends!(
    bad_amounts_create_nothing,
    good_amounts_go_to_razorpay_with_the_right_paise
);

async fn orders_at_razorpay(app: &TestApp) -> u64 {
    let r = app
        .client
        .get(format!("{}/v1/orders", app.fake.url()))
        .basic_auth(
            fake_razorpay::DEV_KEY_ID,
            Some(fake_razorpay::DEV_KEY_SECRET),
        )
        .send()
        .await
        .expect("list orders");
    r.json::<serde_json::Value>().await.expect("json")["count"]
        .as_u64()
        .unwrap_or(u64::MAX)
}

async fn bad_amounts_create_nothing(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let long = "9".repeat(200);
    for (typed, message) in [
        ("", "Enter the amount you want to add."),
        ("0", "The amount must be more than zero."),
        ("-500", "The amount can't be negative."),
        ("abc", "Enter the amount in rupees using digits"),
        ("1e5", "no exponents"),
        ("100.505", "Use at most two digits after the decimal point."),
        ("99.99", "The minimum top-up is ₹100."),
        ("500000.10", "The maximum top-up is ₹5,00,000."),
        ("100.05", "Credits are sold in steps of ₹0.10"),
        ("1,0,00", "Check the commas"),
        (long.as_str(), "The amount is too long."),
        (
            "<script>alert(1)</script>",
            "Enter the amount in rupees using digits",
        ),
    ] {
        let (status, page) = app.add_credits(typed).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{typed:?}");
        let text = common::unescape(&page);
        assert!(text.contains(message), "{typed:?} should say {message:?}");
        assert!(
            page.contains("id=\"amount-error\""),
            "the message sits beside the field"
        );
        let kept: String = typed.chars().take(40).collect();
        assert!(
            text.contains(&format!("value=\"{kept}\"")),
            "{typed:?} is kept"
        );
        assert!(
            !page.contains("<script>alert(1)</script>"),
            "typed text is escaped"
        );
    }
    let (_, billing) = app.get_html("/billing").await;
    assert!(billing.contains("No top-ups yet"));
    assert_eq!(
        orders_at_razorpay(&app).await,
        0,
        "no Razorpay order was created"
    );
}

async fn good_amounts_go_to_razorpay_with_the_right_paise(app: TestApp) {
    app.sign_up("asha@example.com").await;
    for (typed, paise) in [
        ("1000", "100000"),
        ("1,000.50", "100050"),
        ("₹ 1000", "100000"),
        ("5,00,000", "50000000"),
        ("100", "10000"),
    ] {
        let (status, page) = app.add_credits(typed).await;
        assert_eq!(status, StatusCode::OK, "{typed}");
        let fields = common::hidden_fields(&page);
        assert_eq!(common::field(&fields, "amount"), paise, "{typed}");
        assert_eq!(common::field(&fields, "currency"), "INR");
        assert_eq!(common::field(&fields, "prefill[email]"), "asha@example.com");
        assert!(common::field(&fields, "callback_url").starts_with(&app.url));
        assert!(common::field(&fields, "order_id").starts_with("order_"));
        assert!(page.contains(">Continue<"), "works without JavaScript");
    }
    assert_eq!(orders_at_razorpay(&app).await, 5);
}
