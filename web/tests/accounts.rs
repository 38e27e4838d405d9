//! Sign up, log in, log out, sessions, CSRF and throttling; one account never sees another's.

mod common;

use common::{Pay, TestApp, browser, csrf_of};
use reqwest::StatusCode;

on_both_backends!(
    pages_require_a_session,
    sign_up_validates_and_keeps_what_was_typed,
    log_in_log_out_and_csrf_rotation,
    log_in_limits_hold_under_concurrency_and_spare_the_owner,
    weak_passwords_are_refused_at_sign_up,
    log_out_everywhere_ends_every_session,
    cancelling_a_top_up_takes_a_form,
    forms_without_the_csrf_token_are_refused,
    another_accounts_top_up_is_not_found,
);

async fn pages_require_a_session(app: TestApp) {
    for path in [
        "/dashboard",
        "/billing",
        "/billing/history",
        "/billing/topup",
        "/billing/history.csv",
        "/billing/topups/1",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    let r = app.get("/").await;
    assert_eq!(r.headers()["location"], "/login");
    app.sign_up("asha@example.com").await;
    let r = app.get("/").await;
    assert_eq!(r.headers()["location"], "/dashboard");
    let r = app.get("/login").await;
    assert_eq!(
        r.headers()["location"],
        "/dashboard",
        "signed-in people skip the login page"
    );
    let (status, page) = app.get_html("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Page not found"));
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

async fn sign_up_validates_and_keeps_what_was_typed(app: TestApp) {
    let (_, page) = app.get_html("/signup").await;
    let csrf = csrf_of(&page);
    for (email, password, message) in [
        ("", "correct horse battery", "Enter your email address."),
        (
            "not-an-email",
            "correct horse battery",
            "Enter an email address like name@example.com.",
        ),
        ("asha@example.com", "short", "Use at least 10 characters."),
        ("asha@example.com", "", "Choose a password."),
    ] {
        let r = app
            .post_form(
                "/signup",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.expect("page");
        assert!(page.contains(message), "{message}: {page}");
        assert!(
            page.contains(&format!("value=\"{email}\"")),
            "keeps the email typed"
        );
        assert!(!page.contains("correct horse"), "never echoes the password");
    }
    app.sign_up("asha@example.com").await;
    let other = TestApp::fresh_browser(&app);
    let (_, page) = other.get_html("/signup").await;
    let r = other
        .post_form(
            "/signup",
            &[
                ("csrf", &csrf_of(&page)),
                ("email", "ASHA@example.com "),
                ("password", "another long password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("page").contains("already exists"));
}

async fn log_in(
    app: &impl LogsIn,
    csrf: &str,
    email: &str,
    password: &str,
    from: &str,
) -> reqwest::Response {
    app.client()
        .post(app.at("/login"))
        .header("x-forwarded-for", from)
        .form(&[("csrf", csrf), ("email", email), ("password", password)])
        .send()
        .await
        .expect("log in")
}

/// What a browser on the app can do for these tests.
trait LogsIn {
    fn client(&self) -> &reqwest::Client;
    fn at(&self, path: &str) -> String;
}

impl LogsIn for TestApp {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl LogsIn for common::Visitor {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// Log in and out; the form token is bound to the session and changes at log-in and log-out.
async fn log_in_log_out_and_csrf_rotation(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (_, page) = app.get_html("/billing").await;
    let signed_up = csrf_of(&page);
    let r = app.post_form("/logout", &[("csrf", &signed_up)]).await;
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(
        app.get("/billing").await.status(),
        StatusCode::SEE_OTHER,
        "logged out"
    );

    let (_, page) = app.get_html("/login").await;
    let before = csrf_of(&page);
    assert_ne!(before, signed_up, "a new token after log-out");
    let r = log_in(
        &app,
        &before,
        "asha@example.com",
        "wrong password!",
        "10.0.0.1",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("Incorrect email or password.")
    );
    let r = log_in(
        &app,
        &before,
        "nobody@example.com",
        "whatever it is",
        "10.0.0.1",
    )
    .await;
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("Incorrect email or password."),
        "same answer for unknown emails"
    );
    let r = log_in(
        &app,
        &before,
        " Asha@Example.com",
        "correct horse battery",
        "10.0.0.1",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/billing").await.status(), StatusCode::OK);
    let (_, page) = app.get_html("/billing").await;
    let after = csrf_of(&page);
    assert_ne!(after, before, "a new token at log-in");
    let r = app.post_form("/logout", &[("csrf", &before)]).await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "the token from before log-in is refused"
    );
    let r = app.post_form("/logout", &[("csrf", &after)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// Guesses from one address are limited strictly, counted before any password is checked (of
/// forty at once, five are checked); the owner, from elsewhere, still gets in.
async fn log_in_limits_hold_under_concurrency_and_spare_the_owner(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (_, page) = app.get_html("/billing").await;
    app.post_form("/logout", &[("csrf", &csrf_of(&page))]).await;
    let attacker = std::sync::Arc::new(TestApp::fresh_browser(&app));
    let (_, page) = attacker.get_html("/login").await;
    let csrf = csrf_of(&page);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (attacker, csrf) = (attacker.clone(), csrf.clone());
            tokio::spawn(async move {
                log_in(
                    &*attacker,
                    &csrf,
                    "asha@example.com",
                    &format!("guess number {i}"),
                    "203.0.113.9",
                )
                .await
                .status()
            })
        })
        .collect();
    let (mut checked, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (checked, refused),
        (5, 35),
        "five checked, the rest refused unchecked"
    );
    let r = log_in(
        &*attacker,
        &csrf,
        "asha@example.com",
        "correct horse battery",
        "203.0.113.9",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits there"
    );
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.text().await.expect("page").contains("Too many attempts"));
    // The owner, from home.
    let (_, page) = app.get_html("/login").await;
    let r = log_in(
        &app,
        &csrf_of(&page),
        "asha@example.com",
        "correct horse battery",
        "198.51.100.7",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "not locked out by a stranger"
    );
}

/// Passwords must be long, not only spaces, not the email, not a common one.
async fn weak_passwords_are_refused_at_sign_up(app: TestApp) {
    let (_, page) = app.get_html("/signup").await;
    let csrf = csrf_of(&page);
    for (password, message) in [
        ("          ", "only spaces"),
        ("ravi@example.com", "email address"),
        ("qwertyuiop", "most common"),
        ("password123", "most common"),
    ] {
        let r = app
            .post_form(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("email", "ravi@example.com"),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{password:?}");
        assert!(
            r.text().await.expect("page").contains(message),
            "{password:?}"
        );
    }
}

/// "Log out everywhere" ends every session of the account, on every device.
async fn log_out_everywhere_ends_every_session(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let laptop = TestApp::fresh_browser(&app);
    let (_, page) = laptop.get_html("/login").await;
    let r = log_in(
        &laptop,
        &csrf_of(&page),
        "asha@example.com",
        "correct horse battery",
        "10.0.0.2",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(laptop.get("/billing").await.status(), StatusCode::OK);
    let (status, account) = app.get_html("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(account.contains("signed in on 2 devices"), "{account}");
    let r = app
        .post_form(
            "/account/logout-everywhere",
            &[("csrf", &csrf_of(&account))],
        )
        .await;
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(app.get("/billing").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        laptop.get("/billing").await.status(),
        StatusCode::SEE_OTHER,
        "the laptop too"
    );
}

/// Leaving the checkout lands on a page (a GET changes nothing); cancelling is a form with
/// CSRF. A link on another site can't cancel a customer's top-up.
async fn cancelling_a_top_up_takes_a_form(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (status, redirect) = app.add_credits("500").await;
    assert_eq!(status, StatusCode::OK);
    let cancel_url = common::field(&common::hidden_fields(&redirect), "cancel_url");
    let path = cancel_url.trim_start_matches(&app.url).to_string();
    let (status, page) = app.get_html(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Try again") && page.contains("Cancel this top-up"),
        "{page}"
    );
    let (_, billing) = app.get_html("/billing").await;
    assert!(!billing.contains(">Cancelled<"), "a GET cancels nothing");
    let r = app.post_form(&path, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no token, no cancel");
    let r = app.post_form(&path, &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, billing) = app.get_html("/billing?cancelled=1").await;
    assert!(billing.contains(">Cancelled<") && billing.contains("Payment cancelled"));
}

async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
    app.sign_up("asha@example.com").await;
    for (path, form) in [
        ("/billing/topups", vec![("amount", "1000")]),
        ("/logout", vec![]),
        (
            "/billing/topups",
            vec![
                ("amount", "1000"),
                (
                    "csrf",
                    "0000000000000000000000000000000000000000000000000000000000000000",
                ),
            ],
        ),
    ] {
        let r = app.post_form(path, &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {form:?}");
        assert!(
            r.text()
                .await
                .expect("page")
                .contains("did not come from Kalp Studio")
        );
    }
    // A fresh visitor with no token cookie cannot sign up or log in by a cross-site post either.
    let r = browser()
        .post(app.at("/signup"))
        .form(&[
            ("email", "x@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, billing) = app.get_html("/billing").await;
    assert!(billing.contains("No top-ups yet"), "nothing was created");
}

async fn another_accounts_top_up_is_not_found(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (location, _) = app.top_up("100", Pay::UpiId("success@razorpay")).await;
    let other = TestApp::fresh_browser(&app);
    other.sign_up("ravi@example.com").await;
    let (status, page) = other.get_html(&location).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!page.contains("₹100"));
    let cancel = format!("{location}/cancel");
    assert_eq!(other.get(&cancel).await.status(), StatusCode::NOT_FOUND);
    let (_, history) = other.get_html("/billing/history").await;
    assert!(
        !history.contains("+1,000") && !history.contains("pay_"),
        "{history}"
    );
    assert_eq!(other.balance_on_billing().await, "0");
    let (_, status_page) = app.get_html(&location).await;
    assert!(
        status_page.contains("Payment successful"),
        "the owner still sees it"
    );
}
