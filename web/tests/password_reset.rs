//! "Forgot password?" end to end (issue 19): the link arrives by email through the development
//! mailbox, works once for 30 minutes, changes the password and ends every other session; an
//! unknown email gets the same answer and no email. On both databases.

mod common;

use common::{TestApp, Visitor, csrf_of};
use reqwest::StatusCode;
use web::{
    configuration::EmailSettings,
    emails::{mailer::Mailer, outbox_sender::send_due},
    store::{self, outbox, password_resets},
};

on_both_backends!(
    a_reset_link_changes_the_password_once_and_ends_every_other_session,
    an_unknown_email_gets_the_same_answer_and_no_email,
    an_expired_link_changes_nothing,
    asking_again_and_again_sends_at_most_three_links_per_half_hour,
);

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn ask(visitor: &Visitor, email: &str) -> (StatusCode, String) {
    let (_, page) = visitor.get_html("/forgot-password").await;
    let csrf = csrf_of(&page);
    let r = visitor
        .post_form("/forgot-password", &[("csrf", &csrf), ("email", email)])
        .await;
    (r.status(), r.text().await.expect("page"))
}

/// The reset link in the one email the mailbox received for `email`.
async fn link_from_mailbox(app: &TestApp, email: &str) -> String {
    let mailbox = mailbox::start("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("mailbox");
    let settings = EmailSettings {
        smtp_url: razorpay::Secret::new(mailbox.smtp_url()),
        ..app.settings.email.clone()
    };
    let mailer = Mailer::from_settings(&settings)
        .expect("url")
        .expect("mailer");
    send_due(&app.state.services, &mailer).await.expect("sent");
    let messages: Vec<_> = mailbox
        .inbox
        .messages()
        .into_iter()
        .filter(|m| m.to == email)
        .collect();
    assert_eq!(messages.len(), 1, "one email to {email}");
    assert_eq!(messages[0].subject, "Reset your Kalp Studio password");
    let text = &messages[0].text;
    let start = text.find("/reset-password?token=").expect("a link");
    let token: String = text[start + "/reset-password?token=".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(token.len(), 64, "{text}");
    format!("/reset-password?token={token}")
}

async fn log_in(visitor: &Visitor, email: &str, password: &str) -> StatusCode {
    let (_, page) = visitor.get_html("/login").await;
    let csrf = csrf_of(&page);
    visitor
        .post_form(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
        .status()
}

async fn signed_in(visitor: &Visitor) -> bool {
    visitor.get("/dashboard").await.status() == StatusCode::OK
}

async fn choose(visitor: &Visitor, link: &str, password: &str) -> reqwest::Response {
    // The browser's CSRF token, from any form (a used link's page has none).
    let (_, page) = visitor.get_html("/forgot-password").await;
    let csrf = csrf_of(&page);
    let token = link.trim_start_matches("/reset-password?token=");
    visitor
        .post_form(
            "/reset-password",
            &[("csrf", &csrf), ("token", token), ("password", password)],
        )
        .await
}

async fn a_reset_link_changes_the_password_once_and_ends_every_other_session(app: TestApp) {
    let email = "forgetful@example.com";
    let laptop = TestApp::fresh_browser(&app);
    laptop.sign_up(email).await;
    let phone = TestApp::fresh_browser(&app);
    assert_eq!(
        log_in(&phone, email, "correct horse battery").await,
        StatusCode::SEE_OTHER
    );
    assert!(signed_in(&laptop).await && signed_in(&phone).await);

    let (_, login_page) = TestApp::fresh_browser(&app).get_html("/login").await;
    assert!(login_page.contains("href=\"/forgot-password\">Forgot password?</a>"));
    let stranger_browser = TestApp::fresh_browser(&app);
    let (status, answer) = ask(&stranger_browser, email).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer.contains("If an account exists for forgetful@example.com"),
        "{answer}"
    );
    let link = link_from_mailbox(&app, email).await;

    // The link's page names the account; a weak password is refused and changes nothing.
    let (status, page) = stranger_browser.get_html(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Choose a new password") && page.contains(email),
        "{page}"
    );
    let weak = choose(&stranger_browser, &link, "short").await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        weak.text()
            .await
            .expect("page")
            .contains("Use at least 10 characters.")
    );
    assert!(signed_in(&laptop).await, "a refused password ends nothing");

    let changed = choose(&stranger_browser, &link, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_eq!(changed.headers()["location"], "/dashboard");
    assert!(
        signed_in(&stranger_browser).await,
        "this browser starts a new session"
    );
    assert!(!signed_in(&laptop).await, "every other session ended");
    assert!(!signed_in(&phone).await, "every other session ended");
    assert_eq!(
        log_in(&phone, email, "correct horse battery").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&phone, email, NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );

    // Used: the link no longer works, by GET or POST.
    let other = TestApp::fresh_browser(&app);
    let (status, page) = other.get_html(&link).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("This link no longer works"), "{page}");
    let again = choose(&other, &link, "yet another passphrase").await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert_eq!(
        log_in(&other, email, NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}

/// A page with what varies between two asks (the CSRF token, the email typed) taken out.
fn comparable(page: &str, email: &str) -> String {
    match page.contains("name=\"csrf\"") {
        true => page.replace(&csrf_of(page), "[csrf]"),
        false => page.to_string(),
    }
    .replace(email, "[email]")
}

async fn an_unknown_email_gets_the_same_answer_and_no_email(app: TestApp) {
    TestApp::fresh_browser(&app)
        .sign_up("known@example.com")
        .await;
    let browser = TestApp::fresh_browser(&app);
    let (known_status, known) = ask(&browser, "known@example.com").await;
    let (unknown_status, unknown) = ask(&browser, "nobody@example.com").await;
    assert_eq!(known_status, unknown_status);
    assert_eq!(
        comparable(&known, "known@example.com"),
        comparable(&unknown, "nobody@example.com")
    );
    let written = outbox::unsent(&app.state.reads, 10).await.expect("outbox");
    let to: Vec<&str> = written.iter().map(|e| e.recipient.as_str()).collect();
    assert_eq!(to, ["known@example.com"]);
    // Not an email at all: a message for the person, nothing written.
    let (status, page) = ask(&browser, "not-an-email").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("Enter an email address like name@example.com."));
    // A link that is not one of ours.
    let (status, _) = browser.get_html("/reset-password?token=abc").await;
    assert_eq!(status, StatusCode::GONE);
}

async fn an_expired_link_changes_nothing(app: TestApp) {
    let browser = TestApp::fresh_browser(&app);
    browser.sign_up("late@example.com").await;
    let user = store::users::by_email(&app.state.reads, "late@example.com")
        .await
        .expect("read")
        .expect("user");
    // A link written 31 minutes ago, valid for 30.
    let token = "ab".repeat(32);
    let hash = web::crypto::sha256_hex(&token);
    let now = store::now_micros();
    let (hash_ref, user_id) = (hash.as_str(), user.id);
    app.state
        .ledger
        .autocommit(|w| {
            Box::pin(async move {
                password_resets::create(
                    w,
                    hash_ref,
                    user_id,
                    now - 31 * 60 * 1_000_000,
                    now - 60 * 1_000_000,
                )
                .await
            })
        })
        .await
        .expect("written");
    let link = format!("/reset-password?token={token}");
    let other = TestApp::fresh_browser(&app);
    let (status, page) = other.get_html(&link).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("Reset links work once, for 30 minutes"));
    let refused = choose(&other, &link, NEW_PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::GONE);
    assert!(signed_in(&browser).await, "sessions untouched");
    assert_eq!(
        log_in(&other, "late@example.com", NEW_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn asking_again_and_again_sends_at_most_three_links_per_half_hour(app: TestApp) {
    TestApp::fresh_browser(&app)
        .sign_up("popular@example.com")
        .await;
    for n in 0..5 {
        let browser = TestApp::fresh_browser(&app);
        // From five addresses, so the per-address limit is not what stops it.
        let (_, page) = browser.get_html("/forgot-password").await;
        let csrf = csrf_of(&page);
        let r = browser
            .client
            .post(browser.at("/forgot-password"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .form(&[("csrf", csrf.as_str()), ("email", "popular@example.com")])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let written = outbox::unsent(&app.state.reads, 10).await.expect("outbox");
    assert_eq!(
        written.len(),
        3,
        "three links, then the same answer and none"
    );
}
