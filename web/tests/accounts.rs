//! Sign up, log in, log out, sessions, CSRF and throttling; one account never sees another's.

mod common;

use common::{Pay, TestApp, browser, csrf_of};
use reqwest::StatusCode;

on_both_backends!(
    pages_require_a_session,
    sign_up_validates_and_keeps_what_was_typed,
    log_in_log_out_and_throttling,
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

async fn log_in_log_out_and_throttling(app: TestApp) {
    app.sign_up("asha@example.com").await;
    let (_, page) = app.get_html("/billing").await;
    let r = app.post_form("/logout", &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.headers()["location"], "/login");
    assert_eq!(
        app.get("/billing").await.status(),
        StatusCode::SEE_OTHER,
        "logged out"
    );

    let (_, page) = app.get_html("/login").await;
    let csrf = csrf_of(&page);
    let r = app
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "asha@example.com"),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("Incorrect email or password.")
    );
    let r = app
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "nobody@example.com"),
                ("password", "whatever it is"),
            ],
        )
        .await;
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("Incorrect email or password."),
        "same answer for unknown emails"
    );
    let r = app
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", " Asha@Example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/billing").await.status(), StatusCode::OK);

    for _ in 0..5 {
        app.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "asha@example.com"),
                ("password", "guess guess guess"),
            ],
        )
        .await;
    }
    let r = app
        .post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "asha@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits now"
    );
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("Too many failed attempts")
    );
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
