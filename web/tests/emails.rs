//! Emails (issue 19): each written to the outbox in the transaction that causes it, and sent
//! through SMTP to the development mailbox (crates/mailbox) with a text and an HTML part, a
//! stable Message-ID and the voucher attached; kept while the SMTP server is down, parked for
//! an operator when it keeps failing, and never sent twice by concurrent senders. On both
//! databases.

mod common;

use common::paid;

use common::{TestApp, Visitor, csrf_of};
use reqwest::StatusCode;
use web::{
    configuration::EmailSettings,
    emails::{
        content,
        mailer::Mailer,
        outbox_sender::{SendReport, send_due},
    },
    store::outbox,
};

on_both_backends!(
    a_paid_top_up_emails_its_receipt_with_the_voucher_attached,
    emails_wait_while_the_smtp_server_is_down_and_go_out_once_it_is_back,
    an_email_that_keeps_failing_is_parked_and_an_operator_sends_it_again,
    concurrent_senders_never_send_one_email_twice,
    a_processed_refund_emails_its_refund_voucher,
    promotional_credits_and_their_coming_expiry_are_each_emailed_once,
);

/// A mailer for `smtp_url`, with the app's other email settings.
fn mailer_for(app: &TestApp, smtp_url: &str) -> Mailer {
    let settings = EmailSettings {
        smtp_url: razorpay::Secret::new(smtp_url),
        ..app.settings.email.clone()
    };
    Mailer::from_settings(&settings)
        .expect("an SMTP URL")
        .expect("a mailer")
}

async fn mailbox() -> mailbox::RunningMailbox {
    mailbox::start("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("the mailbox starts")
}

/// A port nothing listens on (bound, then let go).
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn send(app: &TestApp, mailer: &Mailer) -> SendReport {
    send_due(&app.state.services, mailer)
        .await
        .expect("a round")
}

fn year() -> String {
    web::gst::voucher_number::FinancialYear::of(chrono::Utc::now()).label()
}

async fn a_paid_top_up_emails_its_receipt_with_the_voucher_attached(app: TestApp) {
    app.sign_up("receipt@example.com").await;
    let (path, _) = paid(&app, "1000").await;
    // Reported again by webhooks and reconciliation: still one email.
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.reconcile().await;
    let mailbox = mailbox().await;
    let mailer = mailer_for(&app, &mailbox.smtp_url());
    assert_eq!(send(&app, &mailer).await.sent, 1);
    assert_eq!(
        send(&app, &mailer).await,
        SendReport::default(),
        "sent once"
    );

    let messages = mailbox.inbox.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.envelope_to, vec!["receipt@example.com".to_string()]);
    assert_eq!(m.from, "billing@kalp.test");
    assert_eq!(m.subject, "Receipt for your Kalp Studio top-up of ₹1,000");
    let number = format!("KS/{}/000001", year());
    for part in [&m.text, &m.html] {
        assert!(part.contains("10,000 credits have been added"), "{part}");
        assert!(part.contains(&number), "{part}");
        assert!(part.contains(&format!("{}{path}", app.url)), "{part}");
    }
    assert!(m.html.contains("<a href="), "an HTML part: {}", m.html);
    // The Message-ID is the outbox row's, the same on every attempt.
    let row = outbox::to_recipient(&app.state.reads, "receipt@example.com", 10)
        .await
        .expect("outbox");
    assert_eq!(row.len(), 1);
    assert!(row[0].sent_at.is_some());
    assert_eq!(
        format!("<{}>", m.message_id),
        mailer.message_id(&row[0]),
        "stable Message-ID"
    );
    assert_eq!(m.attachments.len(), 1);
    let pdf = &m.attachments[0];
    assert_eq!(
        pdf.file_name,
        format!("Receipt-Voucher-{}.pdf", number.replace('/', "_"))
    );
    assert_eq!(pdf.content_type, "application/pdf");
    assert!(pdf.bytes.starts_with(b"%PDF-"));
}

async fn emails_wait_while_the_smtp_server_is_down_and_go_out_once_it_is_back(app: TestApp) {
    app.sign_up("patient@example.com").await;
    paid(&app, "500").await;
    let port = closed_port().await;
    let mailer = mailer_for(&app, &format!("smtp://127.0.0.1:{port}"));
    let report = send(&app, &mailer).await;
    assert_eq!(
        (report.sent, report.retried, report.parked),
        (0, 1, 0),
        "kept to retry"
    );
    let waiting = outbox::unsent(&app.state.reads, 10).await.expect("outbox");
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 1);
    assert!(waiting[0].last_error.is_some());
    assert!(waiting[0].parked_at.is_none());
    // Not due again before its backoff (1 s in these tests).
    assert_eq!(send(&app, &mailer).await, SendReport::default());
    // The server comes back on the same port.
    let mailbox = mailbox::start(&format!("127.0.0.1:{port}"), "127.0.0.1:0")
        .await
        .expect("the mailbox starts on the port");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(send(&app, &mailer).await.sent, 1);
    assert_eq!(send(&app, &mailer).await, SendReport::default());
    let messages = mailbox.inbox.messages();
    assert_eq!(messages.len(), 1, "delivered once");
    assert_eq!(messages[0].to, "patient@example.com");
}

async fn operator_of(app: &TestApp) -> Visitor {
    let ops = TestApp::fresh_browser(app);
    ops.sign_up("ops@kalp.example").await;
    let changed = app
        .state
        .ledger
        .autocommit(|w| {
            Box::pin(
                async move { web::store::users::set_operator(w, "ops@kalp.example", true).await },
            )
        })
        .await
        .expect("role");
    assert!(changed);
    ops
}

async fn an_email_that_keeps_failing_is_parked_and_an_operator_sends_it_again(app: TestApp) {
    app.sign_up("unlucky@example.com").await;
    paid(&app, "500").await;
    let port = closed_port().await;
    let mailer = mailer_for(&app, &format!("smtp://127.0.0.1:{port}"));
    // Three attempts in these tests, a second apart.
    assert_eq!(send(&app, &mailer).await.retried, 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(send(&app, &mailer).await.retried, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(send(&app, &mailer).await.parked, 1);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(send(&app, &mailer).await, SendReport::default(), "parked");

    let ops = operator_of(&app).await;
    let (_, admin) = ops.get_html("/admin").await;
    let parked = outbox::parked(&app.state.reads, 10).await.expect("parked");
    assert_eq!(parked.len(), 1);
    let id = parked[0].id;
    assert!(admin.contains("Emails that could not be sent"), "{admin}");
    assert!(admin.contains(&format!("parked-email-{id}")), "{admin}");
    assert!(admin.contains("unlucky@example.com"));
    // Without CSRF: refused, nothing changes.
    let forged = ops
        .post_form(
            &format!("/admin/emails/{id}/resend"),
            &[("reason", "SMTP fixed")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(outbox::parked_count(&app.state.reads).await.expect("n"), 1);
    let csrf = csrf_of(&admin);
    let form = [("csrf", csrf.as_str()), ("reason", "SMTP server fixed")];
    let done = ops
        .post_form(&format!("/admin/emails/{id}/resend"), &form)
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let again = ops
        .post_form(&format!("/admin/emails/{id}/resend"), &form)
        .await;
    assert!(
        again.text().await.expect("page").contains("Already done"),
        "a second click does nothing"
    );
    let mailbox = mailbox::start(&format!("127.0.0.1:{port}"), "127.0.0.1:0")
        .await
        .expect("the mailbox starts on the port");
    assert_eq!(send(&app, &mailer).await.sent, 1);
    assert_eq!(mailbox.inbox.messages().len(), 1);
    let (_, log) = ops.get_html("/admin").await;
    assert!(log.contains("SMTP server fixed"), "the action is logged");
}

async fn concurrent_senders_never_send_one_email_twice(app: TestApp) {
    let email = content::password_reset(&app.url, "token", 30).expect("render");
    let email = &email;
    for n in 0..40 {
        let recipient = format!("many{n}@example.com");
        let recipient = recipient.as_str();
        app.state
            .ledger
            .autocommit(|w| {
                Box::pin(async move { outbox::enqueue(w, email.to(recipient, None, None)).await })
            })
            .await
            .expect("queued");
    }
    let mailbox = mailbox().await;
    let mailer = mailer_for(&app, &mailbox.smtp_url());
    // Four senders at once, as four instances would: every email goes out exactly once.
    let rounds: Vec<_> = (0..4)
        .map(|_| {
            let (services, mailer) = (app.state.services.clone(), mailer.clone());
            tokio::spawn(async move {
                let mut sent = 0;
                loop {
                    let report = send_due(&services, &mailer).await.expect("round");
                    if report == SendReport::default() {
                        return sent;
                    }
                    sent += report.sent;
                }
            })
        })
        .collect();
    let mut total = 0;
    for round in rounds {
        total += round.await.expect("sender");
    }
    assert_eq!(total, 40);
    let messages = mailbox.inbox.messages();
    assert_eq!(messages.len(), 40);
    let ids: std::collections::BTreeSet<_> =
        messages.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(ids.len(), 40, "distinct Message-IDs, none sent twice");
}

async fn a_processed_refund_emails_its_refund_voucher(app: TestApp) {
    app.sign_up("refund-mail@example.com").await;
    let (_, payment) = paid(&app, "100").await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.razorpay_refund(&payment, Some(4_000)).await;
    app.eventually("webhooks", || app.webhooks_settled()).await;
    app.reconcile().await;
    let mailbox = mailbox().await;
    let mailer = mailer_for(&app, &mailbox.smtp_url());
    assert_eq!(
        send(&app, &mailer).await.sent,
        2,
        "the receipt and the refund"
    );
    let messages = mailbox.inbox.messages();
    let refund = messages
        .iter()
        .find(|m| m.subject == "Your refund of ₹40 is on its way")
        .expect("the refund email");
    let number = format!("KSR/{}/000001", year());
    assert!(refund.text.contains(&number), "{}", refund.text);
    assert_eq!(refund.attachments.len(), 1);
    assert_eq!(
        refund.attachments[0].file_name,
        format!("Refund-Voucher-{}.pdf", number.replace('/', "_"))
    );
}

async fn promotional_credits_and_their_coming_expiry_are_each_emailed_once(app: TestApp) {
    app.sign_up("promo@example.com").await;
    let user = web::store::users::by_email(&app.state.reads, "promo@example.com")
        .await
        .expect("read")
        .expect("user");
    let ops = operator_of(&app).await;
    let (_, page) = ops.get_html(&format!("/admin/customers/{}", user.id)).await;
    let token = common::field(&common::hidden_fields(&page), "token");
    let granted = ops
        .post_form(
            &format!("/admin/customers/{}/grant", user.id),
            &[
                ("csrf", csrf_of(&page).as_str()),
                ("token", token.as_str()),
                ("credits", "500"),
                ("expiry", "3"),
                ("reason", "Welcome offer"),
            ],
        )
        .await;
    assert_eq!(granted.status(), StatusCode::OK);
    // The housekeeping worker writes the reminder; running it again writes nothing more.
    web::emails::expiry_reminders::queue_due(&app.state.services)
        .await
        .expect("reminders");
    web::emails::expiry_reminders::queue_due(&app.state.services)
        .await
        .expect("reminders");
    let written = outbox::to_recipient(&app.state.reads, "promo@example.com", 10)
        .await
        .expect("outbox");
    let kinds: Vec<&str> = written.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["credits_expiring", "promotional_credits_granted"]);
    let expiring = &written[0];
    assert!(
        expiring
            .subject
            .starts_with("500 of your Kalp Studio credits expire on "),
        "{}",
        expiring.subject
    );
    assert!(written[1].text.contains("500 promotional credits"));
}

/// The text part of every email, as customers read it (fixed inputs: nothing varies).
#[test]
fn every_email_reads_as_designed() {
    let url = "https://credits.kalp.studio";
    let emails = [
        content::receipt(url, "₹1,000", 10_000, 12, "KS/26-27/000123"),
        content::low_balance(url, 950, 1_000),
        content::refund_processed(url, "₹400", 12, Some("KSR/26-27/000007")),
        content::promotional_credits_granted(url, 500, Some("29 Dec 2026")),
        content::credits_expiring(url, 500, "29 Dec 2026"),
        content::password_reset(url, "3f9c0d2e", 30),
    ];
    for email in emails {
        let email = email.expect("renders");
        insta::assert_snapshot!(
            format!("email_{}", email.kind),
            format!("Subject: {}\n\n{}", email.subject, email.text)
        );
        assert!(email.html.starts_with("<!doctype html>"));
    }
}
