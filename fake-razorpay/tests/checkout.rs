//! Every checkout path over HTTP, from the merchant's form post to the fields posted back to the
//! callback URL — as a browser without JavaScript would go through it.

mod common;

use common::{KEY_ID, KEY_SECRET, World, hidden_fields, session_id, world};
use fake_razorpay::Faults;
use razorpay::{Secret, signature::verify_payment_signature};

const CALLBACK: &str = "http://shop.example/billing/callback?topup=7";

async fn open(w: &World, order: &str, cancel: bool) -> (String, String) {
    let mut form = vec![
        ("key_id", KEY_ID.to_string()),
        ("order_id", order.to_string()),
        ("amount", "50000".to_string()),
        ("currency", "INR".to_string()),
        ("name", "Kalp Studio".to_string()),
        ("description", "Add Credits".to_string()),
        ("prefill[email]", "asha@example.com".to_string()),
        ("prefill[contact]", "+919876543210".to_string()),
        ("notes[account]", "user:7".to_string()),
        ("callback_url", CALLBACK.to_string()),
    ];
    if cancel {
        form.push(("cancel_url", "http://shop.example/billing".to_string()));
    }
    let response = w
        .http
        .post(w.url("/v1/checkout/embedded"))
        .form(&form)
        .send()
        .await
        .expect("open");
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("page");
    (session_id(&html), html)
}

async fn get(w: &World, path: &str) -> (u16, String) {
    let r = w.http.get(w.url(path)).send().await.expect("get");
    (r.status().as_u16(), r.text().await.expect("text"))
}

async fn post(w: &World, path: &str, form: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let r = w
        .http
        .post(w.url(path))
        .form(form)
        .send()
        .await
        .expect("post");
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), r.text().await.expect("text"), location)
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The result page posts the three razorpay_* fields to the callback URL, correctly signed.
fn assert_success(html: &str, order: &str) {
    assert!(
        common::unescape(html).contains(&format!("action=\"{CALLBACK}\"")),
        "{html}"
    );
    assert!(
        html.contains("document.getElementById('callback').submit()"),
        "auto-submits"
    );
    assert!(
        html.contains(">Continue<"),
        "and has a Continue button without JavaScript"
    );
    let fields = hidden_fields(html);
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert_eq!(field(&fields, "razorpay_order_id"), order);
    let payment = field(&fields, "razorpay_payment_id");
    assert!(payment.starts_with("pay_"));
    let signature = field(&fields, "razorpay_signature");
    assert_eq!(
        verify_payment_signature(order, &payment, &signature, &Secret::new(KEY_SECRET)),
        Ok(())
    );
}

fn assert_failure(html: &str, order: &str, reason: &str) {
    let fields = hidden_fields(html);
    assert_eq!(field(&fields, "error[reason]"), reason, "{fields:?}");
    assert!(!field(&fields, "error[code]").is_empty());
    assert!(!field(&fields, "error[description]").is_empty());
    let metadata: serde_json::Value = serde_json::from_str(&field(&fields, "error[metadata]"))
        .expect("metadata is a JSON string");
    assert_eq!(metadata["order_id"], order);
}

#[tokio::test]
async fn the_checkout_shows_a_loading_screen_then_merchant_amount_and_four_methods() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, html) = open(&w, &order, false).await;
    assert!(html.contains("Loading payment options"));
    assert!(html.contains("Kalp Studio") && html.contains("₹500"));
    for method in ["UPI", "Card", "Netbanking", "Wallet"] {
        assert!(html.contains(&format!(">{method} <small>")), "{method}");
    }
    assert!(html.contains("name=\"viewport\""), "works on a phone");
    let (status, again) = get(&w, &format!("/checkout/{sid}")).await;
    assert_eq!(status, 200);
    assert!(!again.contains("Loading payment options"));
}

#[tokio::test]
async fn the_checkout_refuses_bad_forms() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    for form in [
        vec![
            ("key_id", "rzp_test_other"),
            ("order_id", order.as_str()),
            ("callback_url", CALLBACK),
        ],
        vec![
            ("key_id", KEY_ID),
            ("order_id", "order_DoesNotExist01"),
            ("callback_url", CALLBACK),
        ],
        vec![("key_id", KEY_ID), ("order_id", order.as_str())],
        vec![
            ("key_id", KEY_ID),
            ("order_id", order.as_str()),
            ("callback_url", CALLBACK),
            ("amount", "1"),
        ],
    ] {
        let r = w
            .http
            .post(w.url("/v1/checkout/embedded"))
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 400, "{form:?}");
        assert!(r.text().await.expect("text").contains("role=\"alert\""));
    }
}

#[tokio::test]
async fn upi_by_id_succeeds_fails_or_asks_again() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, false).await;
    let (status, page, _) =
        post(&w, &format!("/checkout/{sid}/upi"), &[("vpa", "not-an-id")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("Invalid UPI ID"));
    let (_, html, _) = post(
        &w,
        &format!("/checkout/{sid}/upi"),
        &[("vpa", "failure@razorpay")],
    )
    .await;
    assert_failure(&html, &order, "payment_failed");
    let (_, html, _) = post(
        &w,
        &format!("/checkout/{sid}/upi"),
        &[("vpa", "success@razorpay")],
    )
    .await;
    assert_success(&html, &order);
}

#[tokio::test]
async fn upi_shows_a_real_qr_code_for_the_amount() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, false).await;
    let (_, page) = get(&w, &format!("/checkout/{sid}/upi")).await;
    assert!(page.contains("<svg"), "an SVG QR code");
    let text = common::unescape(&page);
    assert!(
        text.contains(&format!(
            "upi://pay?pa=kalpstudio@razorpay&pn=Kalp%20Studio&am=500.00&cu=INR&tr={order}"
        )),
        "{page}"
    );
    let (_, html, _) = post(&w, &format!("/checkout/{sid}/upi/scan"), &[]).await;
    assert_success(&html, &order);
}

#[tokio::test]
async fn card_details_then_otp_with_a_retry() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, false).await;
    let card = |number: &'static str| {
        [
            ("number", number),
            ("expiry", "12/34"),
            ("cvv", "123"),
            ("name", "Asha Rao"),
        ]
    };
    let (status, page, _) = post(
        &w,
        &format!("/checkout/{sid}/card"),
        &card("4100 2800 0000 1008"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("The card number is invalid"));
    assert!(page.contains("4100 2800 0000 1008"), "keeps what was typed");
    let (_, page, _) = post(
        &w,
        &format!("/checkout/{sid}/card"),
        &[
            ("number", "4100280000001007"),
            ("expiry", "01/20"),
            ("cvv", "123"),
            ("name", "A"),
        ],
    )
    .await;
    assert!(page.contains("The card has expired"));

    let (status, _, location) = post(
        &w,
        &format!("/checkout/{sid}/card"),
        &card("4100 2800 0000 1007"),
    )
    .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("/checkout/{sid}/otp").as_str()))
    );
    let (_, otp) = get(&w, &format!("/checkout/{sid}/otp")).await;
    assert!(
        otp.contains("Enter OTP") && otp.contains("card ending 1007") && otp.contains("******3210")
    );
    let (status, page, _) = post(&w, &format!("/checkout/{sid}/otp"), &[("otp", "12")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("Incorrect OTP. 2 attempt(s) left."));
    let (_, page, _) = post(&w, &format!("/checkout/{sid}/otp/resend"), &[]).await;
    assert!(page.contains("A new OTP was sent"));
    let (_, html, _) = post(&w, &format!("/checkout/{sid}/otp"), &[("otp", "123456")]).await;
    assert_success(&html, &order);
}

#[tokio::test]
async fn error_cards_and_three_wrong_otps_fail_with_their_reasons() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, false).await;
    let card = [
        ("number", "4100280000060003"),
        ("expiry", "12/34"),
        ("cvv", "123"),
        ("name", "A"),
    ];
    post(&w, &format!("/checkout/{sid}/card"), &card).await;
    let (_, html, _) = post(&w, &format!("/checkout/{sid}/otp"), &[("otp", "1234")]).await;
    assert_failure(&html, &order, "card_declined");

    let good = [
        ("number", "5500670000001002"),
        ("expiry", "12/34"),
        ("cvv", "123"),
        ("name", "A"),
    ];
    post(&w, &format!("/checkout/{sid}/card"), &good).await;
    for _ in 0..2 {
        let (status, _, _) = post(&w, &format!("/checkout/{sid}/otp"), &[("otp", "1")]).await;
        assert_eq!(status, 422);
    }
    let (_, html, _) = post(&w, &format!("/checkout/{sid}/otp"), &[("otp", "1")]).await;
    assert_failure(&html, &order, "incorrect_otp");
}

#[tokio::test]
async fn netbanking_and_wallets_offer_success_and_failure() {
    let w = world(Faults::default()).await;
    for (kind, list_text, code) in [
        ("netbanking", "HDFC Bank", "HDFC"),
        ("wallet", "PayZapp", "payzapp"),
    ] {
        let order = w.create_order(50_000).await;
        let (sid, _) = open(&w, &order, false).await;
        let (_, list) = get(&w, &format!("/checkout/{sid}/{kind}")).await;
        assert!(list.contains(list_text));
        let (status, page) = get(&w, &format!("/checkout/{sid}/{kind}/{code}")).await;
        assert_eq!(status, 200);
        assert!(page.contains(">Success<") && page.contains(">Failure<"));
        let (_, html, _) = post(
            &w,
            &format!("/checkout/{sid}/{kind}/{code}"),
            &[("outcome", "failure")],
        )
        .await;
        assert_failure(&html, &order, "payment_failed");
        let (_, html, _) = post(
            &w,
            &format!("/checkout/{sid}/{kind}/{code}"),
            &[("outcome", "success")],
        )
        .await;
        assert_success(&html, &order);
        let (status, _) = get(&w, &format!("/checkout/{sid}/{kind}/NOPE")).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn cancel_goes_to_the_cancel_url_or_reports_a_cancelled_payment() {
    let w = world(Faults::default()).await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, true).await;
    let (status, _, location) = post(&w, &format!("/checkout/{sid}/cancel"), &[]).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("http://shop.example/billing"))
    );
    let (sid, _) = open(&w, &order, false).await;
    let (_, html, _) = post(&w, &format!("/checkout/{sid}/cancel"), &[]).await;
    assert_failure(&html, &order, "payment_cancelled");
}

#[tokio::test]
async fn a_closed_tab_never_posts_the_callback() {
    let w = world(Faults {
        close_tab: true,
        ..Faults::default()
    })
    .await;
    let order = w.create_order(50_000).await;
    let (sid, _) = open(&w, &order, false).await;
    let (_, html, _) = post(
        &w,
        &format!("/checkout/{sid}/upi"),
        &[("vpa", "success@razorpay")],
    )
    .await;
    assert!(hidden_fields(&html).is_empty());
    assert!(html.contains("closed this tab"));
    w.receiver.wait_for(3).await;
}
