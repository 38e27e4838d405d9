//! GST documents (issue 19, so far): a receipt voucher for every credited top-up, numbered
//! consecutively per financial year inside the transaction that credits, with the tax inside
//! the amount paid. On both databases.

mod common;

use common::paid;

use common::{TestApp, hidden_fields};
use reqwest::StatusCode;
use serde_json::json;
use web::{
    gst::voucher_number::FinancialYear,
    store::vouchers::{self, VoucherKind},
};

on_both_backends!(
    a_credited_top_up_gets_one_receipt_voucher_with_its_tax,
    concurrent_top_ups_take_consecutive_numbers_without_gaps,
    numbers_restart_each_financial_year_and_a_rollback_leaves_no_gap,
    a_processed_refund_gets_a_refund_voucher_against_its_receipt,
    billing_details_go_on_later_vouchers_and_never_change_earlier_ones,
    operators_download_a_months_vouchers_as_csv,
    a_receipt_voucher_downloads_as_a_pdf_whose_text_has_the_rupee_sign,
    a_top_up_credited_before_vouchers_existed_links_no_receipt,
);

fn label() -> String {
    FinancialYear::of(chrono::Utc::now()).label()
}

async fn a_credited_top_up_gets_one_receipt_voucher_with_its_tax(app: TestApp) {
    app.sign_up("gst@example.com").await;
    let (path, payment) = paid(&app, "100").await;
    // Every other report of the same payment: still one voucher.
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.reconcile().await;
    let user = web::store::users::by_email(&app.state.reads, "gst@example.com")
        .await
        .expect("read")
        .expect("user");
    let issued = vouchers::of_user(&app.state.reads, user.id)
        .await
        .expect("vouchers");
    assert_eq!(issued.len(), 1);
    let number = format!("KS/{}/000001", label());
    assert_eq!(issued[0].number, number);
    let (_, status) = app.get_html(&path).await;
    assert!(
        status.contains(&format!("Receipt voucher {number}")),
        "{status}"
    );
    let (code, voucher) = app.get_html(&format!("{path}/receipt")).await;
    assert_eq!(code, StatusCode::OK, "{voucher}");
    for shown in [
        number.as_str(),
        "Receipt Voucher",
        "₹84.75",
        "CGST @ 9%",
        "₹7.62",
        "SGST @ 9%",
        "₹7.63",
        "₹100.00",
        "Rupees One Hundred Only",
        "Maharashtra (27)",
        "998319",
        "27AAPFU0939F1ZV",
        "gst@example.com",
        "Unregistered",
        payment.as_str(),
    ] {
        assert!(voucher.contains(shown), "{shown}: {voucher}");
    }
    // Another account: not found.
    let stranger = TestApp::fresh_browser(&app);
    stranger.sign_up("other@example.com").await;
    let (code, _) = stranger.get_html(&format!("{path}/receipt")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

async fn concurrent_top_ups_take_consecutive_numbers_without_gaps(app: TestApp) {
    app.sign_up("many@example.com").await;
    // Twelve orders, then all twelve callbacks at once.
    let mut answers = Vec::new();
    for _ in 0..12 {
        let (status, page) = app.add_credits("100").await;
        assert_eq!(status, StatusCode::OK);
        let fields = hidden_fields(&page);
        let order = common::field(&fields, "order_id");
        let callback = common::field(&fields, "callback_url");
        let mut answer = app
            .pay_order(&order, json!({"method": "upi", "vpa": "success@razorpay"}))
            .await;
        answer["callback_url"] = serde_json::Value::String(callback);
        answers.push(answer);
    }
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = answers
        .into_iter()
        .map(|answer| {
            let app = app.clone();
            tokio::spawn(async move { app.post_callback(&answer).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), StatusCode::SEE_OTHER);
    }
    app.eventually("webhooks", || app.webhooks_settled()).await;
    let numbers = common::voucher_numbers(&app, "many@example.com").await;
    let expected: Vec<String> = (1..=12).map(|n| format!("KS/{}/{n:06}", label())).collect();
    assert_eq!(numbers, expected);
    assert_eq!(app.credits_of("many@example.com").await, 12_000);
}

async fn numbers_restart_each_financial_year_and_a_rollback_leaves_no_gap(app: TestApp) {
    let take = |year: i32| {
        let ledger = app.state.ledger.clone();
        async move {
            ledger
                .transact(|tx| {
                    Box::pin(async move {
                        vouchers::next_sequence(tx, VoucherKind::Receipt, year).await
                    })
                })
                .await
                .expect("a number")
        }
    };
    assert_eq!(take(2026).await, 1);
    assert_eq!(take(2026).await, 2);
    // The first of the next financial year starts again at 1; refunds have their own series.
    assert_eq!(take(2027).await, 1);
    // A transaction that takes a number and then fails gives it back.
    let failed: Result<i64, web::store::StoreError> = app
        .state
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                vouchers::next_sequence(tx, VoucherKind::Receipt, 2026).await?;
                Err(web::store::StoreError::Db(sea_orm::DbErr::Custom(
                    "the credit failed".into(),
                )))
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(take(2026).await, 3, "no gap after a rollback");
    let refund_first = app
        .state
        .ledger
        .transact(|tx| {
            Box::pin(async move { vouchers::next_sequence(tx, VoucherKind::Refund, 2026).await })
        })
        .await
        .expect("a number");
    assert_eq!(refund_first, 1);
}

async fn a_processed_refund_gets_a_refund_voucher_against_its_receipt(app: TestApp) {
    app.sign_up("refunded@example.com").await;
    let (path, payment) = paid(&app, "100").await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    // ₹40 refunded by support; processed at once by default. Reported twice (webhooks and
    // reconciliation): one voucher.
    app.razorpay_refund(&payment, Some(4_000)).await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.reconcile().await;
    let user = web::store::users::by_email(&app.state.reads, "refunded@example.com")
        .await
        .expect("read")
        .expect("user");
    let issued = vouchers::of_user(&app.state.reads, user.id)
        .await
        .expect("vouchers");
    let refunds: Vec<_> = issued
        .iter()
        .filter(|v| v.kind == VoucherKind::Refund)
        .collect();
    assert_eq!(refunds.len(), 1, "{issued:#?}");
    let refund = refunds[0];
    assert_eq!(refund.number, format!("KSR/{}/000001", label()));
    assert_eq!(refund.amount_paise, 4_000);
    // ₹40 at 18 % inside: ₹33.90 taxable, ₹6.10 tax, 3.05 + 3.05.
    assert_eq!(
        (refund.taxable_paise, refund.cgst_paise, refund.sgst_paise),
        (3_390, 305, 305)
    );
    let (_, status) = app.get_html(&path).await;
    assert!(
        status.contains(&format!("refund voucher {}", refund.number)),
        "{status}"
    );
    let (code, page) = app
        .get_html(&format!("/billing/vouchers/{}", refund.id))
        .await;
    assert_eq!(code, StatusCode::OK, "{page}");
    for shown in [
        "Refund Voucher",
        &format!("KS/{}/000001", label()),
        "Amount refunded",
        "₹40.00",
        "₹33.90",
        "Rupees Forty Only",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let stranger = TestApp::fresh_browser(&app);
    stranger.sign_up("nosy@example.com").await;
    let (code, _) = stranger
        .get_html(&format!("/billing/vouchers/{}", refund.id))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    app.money_audit_clean().await;
}

async fn billing_details_go_on_later_vouchers_and_never_change_earlier_ones(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (first, _) = paid(&app, "100").await;
    let (_, page) = app.get_html("/billing/profile").await;
    let csrf = common::csrf_of(&page);
    // A GSTIN with a typo: refused with the reason, what was typed kept.
    let r = app
        .post_form(
            "/billing/profile",
            &[
                ("csrf", &csrf),
                ("legal_name", "Asha Traders LLP"),
                ("address", "12 MG Road, Bengaluru 560001"),
                ("state", "29"),
                ("gstin", "29AAGCB7383J1Z5"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.expect("page");
    assert!(page.contains("does not match"), "{page}");
    assert!(page.contains("Asha Traders LLP"), "{page}");
    let r = app
        .post_form(
            "/billing/profile",
            &[
                ("csrf", &csrf),
                ("legal_name", "Asha Traders LLP"),
                ("address", "12 MG Road, Bengaluru 560001"),
                ("state", "29"),
                ("gstin", "29aagcb7383j1z4"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html("/billing/profile?saved=1").await;
    assert!(
        page.contains("Saved.") && page.contains("29AAGCB7383J1Z4"),
        "{page}"
    );
    // ₹118 to Karnataka from Maharashtra: IGST ₹18 on ₹100.
    let (second, _) = paid(&app, "118").await;
    let (_, voucher) = app.get_html(&format!("{second}/receipt")).await;
    for shown in [
        "Asha Traders LLP",
        "12 MG Road, Bengaluru 560001",
        "GSTIN 29AAGCB7383J1Z4",
        "Karnataka (29)",
        "IGST @ 18%",
        "₹18.00",
        "₹100.00",
        "Rupees One Hundred Eighteen Only",
    ] {
        assert!(voucher.contains(shown), "{shown}: {voucher}");
    }
    // The first voucher is as it was issued.
    let (_, voucher) = app.get_html(&format!("{first}/receipt")).await;
    assert!(
        voucher.contains("Unregistered") && voucher.contains("CGST @ 9%"),
        "{voucher}"
    );
    assert!(!voucher.contains("Asha Traders"), "{voucher}");
}

async fn operators_download_a_months_vouchers_as_csv(app: TestApp) {
    app.sign_up("csv@example.com").await;
    let (_, payment) = paid(&app, "100").await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.razorpay_refund(&payment, Some(4_000)).await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    let month = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(19_800).expect("IST"))
        .format("%Y-%m")
        .to_string();
    let path = format!("/admin/vouchers.csv?month={month}");
    // Customers don't see it.
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    let ops = TestApp::fresh_browser(&app);
    ops.sign_up("accounts@kalp.example").await;
    app.state
        .ledger
        .autocommit(|w| {
            Box::pin(async move {
                web::store::users::set_operator(w, "accounts@kalp.example", true).await
            })
        })
        .await
        .expect("operator");
    let r = ops.get(&path).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/csv"))
    );
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("voucher,kind,date"));
    let receipt = format!("KS/{}/000001", label());
    assert!(
        lines[1].starts_with(&format!("\"{receipt}\",\"receipt\"")),
        "{csv}"
    );
    assert!(
        lines[1].contains(",100.00,84.75,7.62,7.63,0.00,18.00,"),
        "{csv}"
    );
    assert!(lines[2].contains("\"refund\""), "{csv}");
    assert!(
        lines[2].contains(&format!("\"{receipt}\"")),
        "the receipt it refunds: {csv}"
    );
    assert!(
        lines[2].contains(",40.00,33.90,3.05,3.05,0.00,18.00,"),
        "{csv}"
    );
    // Another month is empty; a bad one is refused.
    let (_, other) = ops.get_html("/admin/vouchers.csv?month=2020-01").await;
    assert_eq!(other.lines().count(), 1);
    assert_eq!(
        ops.get("/admin/vouchers.csv?month=December").await.status(),
        StatusCode::BAD_REQUEST
    );
}

/// The text of a PDF as `pdftotext` (Debian's poppler-utils) extracts it; `None` when the tool
/// is missing here, which CI forbids (`KALP_REQUIRE_PDFTOTEXT=1`, set by `cargo xtask ci`).
fn pdf_text(pdf: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("voucher.pdf");
    std::fs::write(&file, pdf).expect("write the PDF");
    match std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "pdftotext refused the PDF: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8(out.stdout).expect("UTF-8 text"))
        }
        Err(e) => {
            assert!(
                std::env::var("KALP_REQUIRE_PDFTOTEXT").is_err(),
                "pdftotext is required here: {e}"
            );
            eprintln!(
                "SKIPPED: the PDF's text was not extracted: pdftotext is not installed ({e})"
            );
            None
        }
    }
}

async fn a_receipt_voucher_downloads_as_a_pdf_whose_text_has_the_rupee_sign(app: TestApp) {
    app.sign_up("pdf@example.com").await;
    let (path, payment) = paid(&app, "100000").await;
    let response = app.get(&format!("{path}/receipt.pdf")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().expect("type"),
        "application/pdf"
    );
    let number = format!("KS/{}/000001", label());
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("disposition")
        .to_string();
    assert!(
        disposition.contains(&format!("Receipt-Voucher-{}.pdf", number.replace('/', "_"))),
        "{disposition}"
    );
    let pdf = response.bytes().await.expect("body");
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        pdf.len() < 60_000,
        "the font is subset: {} bytes",
        pdf.len()
    );
    // The receipt page links the same document, which its voucher URL also serves.
    let (_, page) = app.get_html(&format!("{path}/receipt")).await;
    let voucher_id = page
        .split("/billing/vouchers/")
        .nth(1)
        .and_then(|rest| rest.split(".pdf").next())
        .expect("a PDF link")
        .to_string();
    let (_, history) = app.get_html("/billing/history").await;
    assert!(
        history.contains(&format!("href=\"{path}/receipt.pdf\"")),
        "Credit History links the receipt's PDF: {history}"
    );
    let again = app
        .get(&format!("/billing/vouchers/{voucher_id}.pdf"))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    // Someone else gets nothing.
    let stranger = TestApp::fresh_browser(&app);
    stranger.sign_up("pdf-other@example.com").await;
    let refused = stranger.get(&format!("{path}/receipt.pdf")).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused = stranger
        .get(&format!("/billing/vouchers/{voucher_id}.pdf"))
        .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    if let Ok(dump) = std::env::var("KALP_DUMP_PDF") {
        std::fs::write(dump, &pdf).expect("dump");
    }
    let Some(text) = pdf_text(&pdf) else { return };
    for shown in [
        "Receipt Voucher",
        number.as_str(),
        "₹1,00,000.00",
        "₹84,745.76",
        "CGST @ 9%",
        "₹7,627.12",
        "SGST @ 9%",
        "Rupees One Lakh Only",
        "Maharashtra (27)",
        "27AAPFU0939F1ZV",
        "pdf@example.com",
        payment.as_str(),
    ] {
        assert!(
            text.contains(shown),
            "{shown} missing from the PDF's text:\n{text}"
        );
    }
}

async fn a_top_up_credited_before_vouchers_existed_links_no_receipt(app: TestApp) {
    app.sign_up("early@example.com").await;
    let (path, _) = paid(&app, "100").await;
    // As if credited before m0008: no voucher (and so no receipt email either).
    for sql in ["DELETE FROM web_outbox", "DELETE FROM web_vouchers"] {
        app.state
            .ledger
            .autocommit(|w| {
                Box::pin(async move {
                    sea_orm::ConnectionTrait::execute_unprepared(w, sql)
                        .await
                        .map_err(web::store::StoreError::from)
                })
            })
            .await
            .expect("deleted");
    }
    let (_, history) = app.get_html("/billing/history").await;
    assert!(history.contains("Top-up #1 via Razorpay"), "{history}");
    assert!(
        !history.contains("/receipt"),
        "no link to a receipt that does not exist"
    );
    let (code, _) = app.get_html(&format!("{path}/receipt")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}
