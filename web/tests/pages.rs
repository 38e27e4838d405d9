//! Snapshots of the main pages as a person sees them, with insta's filters for what varies
//! (ids, tokens and times).

mod common;

use common::{Backend, Pay, spawn_app};

/// The page's content, without the layout every page shares.
fn content(html: &str) -> &str {
    html.split_once("<main class=\"content\">")
        .and_then(|(_, rest)| rest.split_once("</main>"))
        .map_or(html, |(main, _)| main)
}

/// What changes from run to run: Razorpay's ids, times, this month, the financial year, the form
/// token.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"pay_[A-Za-z0-9]{14}", "[pay_id]"),
        (r"order_[A-Za-z0-9]{14}", "[order_id]"),
        (r"\d{2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", "[time]"),
        (r"\d{2} [A-Z][a-z]{2} \d{4}", "[date]"),
        // Voucher numbers carry the financial year.
        (r"KS/\d{2}-\d{2}/", "KS/[financial year]/"),
        (
            r"(January|February|March|April|May|June|July|August|September|October|November|December) \d{4}",
            "[month]",
        ),
        (
            r#"name="csrf" value="[0-9a-f]{64}""#,
            r#"name="csrf" value="[csrf]""#,
        ),
    ]
}

#[tokio::test]
async fn main_pages_look_as_designed() {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in filters() {
        settings.add_filter(pattern, replacement);
    }
    let _filters = settings.bind_to_scope();
    let app = spawn_app(Backend::Sqlite).await.expect("app");
    app.sign_up("asha@example.com").await;
    let (_, billing) = app.get_html("/billing").await;
    insta::assert_snapshot!("billing_empty", content(&billing));
    let (location, status) = app
        .top_up(
            "1000",
            Pay::Card {
                number: "4100280000001007",
                otp: "1234",
            },
        )
        .await;
    insta::assert_snapshot!("topup_paid", content(&status));
    let (_, billing) = app.get_html("/billing").await;
    insta::assert_snapshot!("billing_after_top_up", content(&billing));
    let (_, dashboard) = app.get_html("/dashboard").await;
    insta::assert_snapshot!("dashboard", content(&dashboard));
    let (_, history) = app.get_html("/billing/history").await;
    insta::assert_snapshot!("history", content(&history));
    let (_, receipt) = app.get_html("/billing/topups/1/receipt").await;
    let voucher = receipt
        .split_once("<main class=\"voucher\">")
        .and_then(|(_, rest)| rest.split_once("</main>"))
        .map_or(receipt.as_str(), |(main, _)| main);
    insta::assert_snapshot!("receipt_voucher", voucher);
    let (_, add) = app.get_html("/billing/topup").await;
    insta::assert_snapshot!("add_credits_page", content(&add));
    assert!(location.starts_with("/billing/topups/"));
}
