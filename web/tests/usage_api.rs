//! The usage API: keys, balance, charges (idempotent, batched, never overdrawn), reservations,
//! errors, rate limits, low-balance alerts and the OpenAPI document.

mod common;

use common::{Pay, TestApp, csrf_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    keys_are_shown_once_revocable_and_reach_only_their_account,
    charges_are_priced_idempotent_and_refused_when_short,
    bad_requests_charge_nothing,
    sixty_four_clients_never_overdraw,
    one_key_sent_sixteen_times_at_once_charges_once,
    reservations_hold_settle_release_and_expire,
    low_balance_alerts_fire_once_per_crossing,
    charges_and_reservations_retry_transient_database_failures,
);

async fn new_key(app: &TestApp, name: &str) -> String {
    let (_, page) = app.get_html("/api-keys").await;
    let r = app
        .post_form("/api-keys", &[("csrf", &csrf_of(&page)), ("name", name)])
        .await;
    let page = r.text().await.expect("page");
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).expect("the key is shown") + marker.len();
    page[start..].split('<').next().expect("key").to_string()
}

async fn grant(app: &TestApp, email: &str, credits: i64) {
    let wallet = app
        .state
        .ledger
        .find_wallet(&format!("user:{email}"))
        .await
        .expect("wallet")
        .expect("exists");
    app.state
        .ledger
        .credit(ledger::Credit {
            wallet,
            amount: ledger::Credits::new(credits).expect("credits"),
            kind: ledger::CreditKind::Grant,
            key: ledger::IdempotencyKey::new(format!("test-grant:{email}:{credits}")).expect("key"),
            reference: None,
            memo: None,
            expires_at: None,
        })
        .await
        .expect("grant");
}

struct Api<'a> {
    app: &'a TestApp,
    key: String,
}

impl Api<'_> {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = common::browser()
            .get(self.app.at(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("get");
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, idem: Option<&str>, body: Value) -> (StatusCode, Value, bool) {
        let mut r = common::browser()
            .post(self.app.at(path))
            .bearer_auth(&self.key)
            .json(&body);
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        let r = r.send().await.expect("post");
        let replayed = r.headers().get("idempotent-replayed").is_some();
        (r.status(), r.json().await.unwrap_or(Value::Null), replayed)
    }

    async fn charge(&self, idem: &str, body: Value) -> (StatusCode, Value, bool) {
        self.post("/api/v1/charges", Some(idem), body).await
    }
}

async fn keys_are_shown_once_revocable_and_reach_only_their_account(app: TestApp) {
    app.sign_up("asha@example.com").await;
    grant(&app, "asha@example.com", 500).await;
    let key = new_key(&app, "Email sender").await;
    assert!(key.starts_with("kalp_live_"));
    let (_, page) = app.get_html("/api-keys").await;
    assert!(!page.contains(&key), "shown once only");
    assert!(page.contains("Email sender") && page.contains(&key[..18]));
    let api = Api {
        app: &app,
        key: key.clone(),
    };
    let (status, balance) = api.get("/api/v1/balance").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (balance["available"].as_i64(), balance["reserved"].as_i64()),
        (Some(500), Some(0))
    );
    assert_eq!(balance["covers"]["emails"], 500);
    assert_eq!(balance["covers"]["sms_segments"], 166);

    for bad in ["", "kalp_live_nope", &format!("{key}x")] {
        let api = Api {
            app: &app,
            key: bad.to_string(),
        };
        let (status, body) = api.get("/api/v1/balance").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized")),
            "{bad:?}"
        );
    }
    let r = common::browser()
        .get(app.at("/api/v1/balance"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Another account's key sees only its own wallet.
    let ravi = TestApp::fresh_browser(&app);
    ravi.sign_up("ravi@example.com").await;
    let (_, page) = ravi.get_html("/api-keys").await;
    let r = ravi
        .post_form("/api-keys", &[("csrf", &csrf_of(&page)), ("name", "Ravi")])
        .await;
    let page = r.text().await.expect("page");
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).expect("key") + marker.len();
    let ravi_key = page[start..].split('<').next().expect("key").to_string();
    let ravi_api = Api {
        app: &app,
        key: ravi_key,
    };
    assert_eq!(ravi_api.get("/api/v1/balance").await.1["available"], 0);
    let (status, _, _) = ravi_api
        .charge("k1", json!({"service": "email", "quantity": 1}))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);

    // Revoked: 401 from then on.
    let (_, page) = app.get_html("/api-keys").await;
    let id_start = page
        .find("/api-keys/")
        .and_then(|i| {
            page[i + 10..]
                .find("/revoke")
                .map(|j| &page[i + 10..i + 10 + j])
        })
        .expect("revoke form");
    let r = app
        .post_form(
            &format!("/api-keys/{id_start}/revoke"),
            &[("csrf", &csrf_of(&page))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/balance").await.0, StatusCode::UNAUTHORIZED);
    let r = ravi
        .post_form(
            &format!("/api-keys/{id_start}/revoke"),
            &[("csrf", &csrf_of(&ravi.get_html("/api-keys").await.1))],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another account's key is not found"
    );
}

async fn charges_are_priced_idempotent_and_refused_when_short(app: TestApp) {
    app.sign_up("asha@example.com").await;
    grant(&app, "asha@example.com", 100_000).await;
    let api = Api {
        app: &app,
        key: new_key(&app, "sender").await,
    };
    let (status, first, replayed) = api
        .charge(
            "batch-1",
            json!({"service": "email", "quantity": 10, "reference": "newsletter-1"}),
        )
        .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_eq!(
        (first["credits"].as_i64(), first["messages"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(first["balance"]["available"], 99_990);
    let (status, again, replayed) = api
        .charge(
            "batch-1",
            json!({"service": "email", "quantity": 10, "reference": "newsletter-1"}),
        )
        .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first, "a retry returns the original result");
    let (status, conflict, _) = api
        .charge("batch-1", json!({"service": "email", "quantity": 11}))
        .await;
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );

    // The same key for other recipients at the same price: the ledger sees the same debit, the
    // answer's request does not match, so it is a conflict too, and nothing is charged twice.
    let (status, _, _) = api
        .charge(
            "to-asha",
            json!({"service": "email", "lines": [{"destination": "asha@example.com"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, conflict, _) = api
        .charge(
            "to-asha",
            json!({"service": "email", "lines": [{"destination": "ravi@example.com"}]}),
        )
        .await;
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );

    // SMS by destination country: India 3 credits a segment, the US 40, elsewhere the default 3.
    let lines = json!([{"destination": "+919876543210", "segments": 2}, {"destination": "+14155550100"}, {"destination": "+8613800138000"}]);
    let (status, sms, _) = api
        .charge("sms-1", json!({"service": "sms", "lines": lines}))
        .await;
    assert_eq!(
        (status, sms["credits"].as_i64(), sms["messages"].as_i64()),
        (StatusCode::CREATED, Some(6 + 40 + 3), Some(3))
    );

    // 10,000 lines in one request: one ledger transfer.
    let lines: Vec<Value> = (0..10_000)
        .map(|i| json!({"destination": format!("user{i}@example.com")}))
        .collect();
    let (status, big, _) = api
        .charge("big-1", json!({"service": "email", "lines": lines}))
        .await;
    assert_eq!(
        (status, big["credits"].as_i64()),
        (StatusCode::CREATED, Some(10_000))
    );
    let too_many: Vec<Value> = (0..10_001)
        .map(|_| json!({"destination": "a@example.com"}))
        .collect();
    let (status, body, _) = api
        .charge("big-2", json!({"service": "email", "lines": too_many}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
    );

    let (status, short, _) = api
        .charge("huge", json!({"service": "sms", "quantity": 1_000_000}))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(short["error"]["code"], "insufficient_credits");
    assert_eq!(
        (
            short["error"]["available"].as_i64(),
            short["error"]["required"].as_i64()
        ),
        (Some(89_940), Some(3_000_000))
    );
    let (_, balance) = api.get("/api/v1/balance").await;
    assert_eq!(balance["available"], 89_940, "nothing was charged");

    let (_, history) = app.get_html("/billing/history?type=email").await;
    assert!(history.contains("Email: 10 message(s) · newsletter-1"));
    let (_, dashboard) = app.get_html("/dashboard").await;
    assert!(
        dashboard.contains("Usage by day") && dashboard.contains("10,011"),
        "{dashboard}"
    );
    app.audit_clean().await;
}

async fn bad_requests_charge_nothing(app: TestApp) {
    app.sign_up("asha@example.com").await;
    grant(&app, "asha@example.com", 1_000).await;
    let key = new_key(&app, "sender").await;
    let api = Api {
        app: &app,
        key: key.clone(),
    };
    for (body, status, code) in [
        (
            json!({"service": "email", "quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email", "quantity": -5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email", "quantity": "ten"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "fax", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email", "quantity": 1, "lines": [{"destination": "a@b.co"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "sms", "lines": [{"destination": "9876543210"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "sms", "lines": [{"destination": "+919876543210", "segments": 0}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email", "quantity": 1, "colour": "red"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"service": "email", "quantity": 1.5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ] {
        let (got, answer, _) = api.charge(&format!("bad-{body}"), body.clone()).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, answer, _) = api
        .post(
            "/api/v1/charges",
            None,
            json!({"service": "email", "quantity": 1}),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );
    let raw = |body: &'static str| {
        let url = app.at("/api/v1/charges");
        let key = key.clone();
        async move {
            let r = common::browser()
                .post(url)
                .bearer_auth(key)
                .header("Idempotency-Key", "raw")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, answer) = raw("{not json").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let bearer = format!("Bearer {key}");
    let (status, _, _) = app
        .post_head_only(
            "/api/v1/charges",
            &[
                ("authorization", &bearer),
                ("idempotency-key", "raw"),
                ("content-type", "application/json"),
            ],
            5 * 1024 * 1024,
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, answer) = api.get("/api/v1/nothing-here").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert_eq!(
        api.get("/api/v1/balance").await.1["available"],
        1_000,
        "nothing was charged"
    );

    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/balance",
        "/api/v1/charges",
        "/api/v1/reservations",
        "/api/v1/reservations/{id}/settle",
        "/api/v1/reservations/{id}/release",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

async fn sixty_four_clients_never_overdraw(app: TestApp) {
    app.sign_up("busy@example.com").await;
    grant(&app, "busy@example.com", 1_030).await;
    let key = new_key(&app, "sender").await;
    // One charge first, so this instance knows the key: until then every request with it is a
    // lookup of a key it does not know, and 64 of those at once from one address exceed the
    // 60 a minute allowed (a CI run under load got a 429 here).
    let warm = Api {
        app: &app,
        key: key.clone(),
    };
    assert_eq!(
        warm.charge("warm", json!({"service": "sms", "quantity": 10}))
            .await
            .0,
        StatusCode::CREATED
    );
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                let api = Api { app: &app, key };
                api.charge(&format!("c-{i}"), json!({"service": "sms", "quantity": 10}))
                    .await
                    .0
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 33, "1,000 credits pay for 33 charges of 30");
    assert_eq!(app.credits_of("busy@example.com").await, 10);
    app.audit_clean().await;
}

async fn one_key_sent_sixteen_times_at_once_charges_once(app: TestApp) {
    app.sign_up("dup@example.com").await;
    grant(&app, "dup@example.com", 1_000).await;
    let key = new_key(&app, "sender").await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                let api = Api { app: &app, key };
                api.charge("same-key", json!({"service": "email", "quantity": 7}))
                    .await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED);
        ids.insert(body["id"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(ids.len(), 1, "every answer names the same charge");
    assert_eq!(app.credits_of("dup@example.com").await, 993);
}

async fn reservations_hold_settle_release_and_expire(app: TestApp) {
    app.sign_up("camp@example.com").await;
    grant(&app, "camp@example.com", 1_000).await;
    let api = Api {
        app: &app,
        key: new_key(&app, "campaigns").await,
    };
    let (status, held, _) = api
        .post(
            "/api/v1/reservations",
            Some("r-1"),
            json!({"service": "sms", "quantity": 100, "reference": "diwali"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(
        (held["credits"].as_i64(), held["status"].as_str()),
        (Some(300), Some("pending"))
    );
    let (_, again, replayed) = api
        .post(
            "/api/v1/reservations",
            Some("r-1"),
            json!({"service": "sms", "quantity": 100, "reference": "diwali"}),
        )
        .await;
    assert!(
        replayed && again["id"] == held["id"],
        "a retried reservation is the same one"
    );
    let balance = api.get("/api/v1/balance").await.1;
    assert_eq!(
        (balance["available"].as_i64(), balance["reserved"].as_i64()),
        (Some(700), Some(300))
    );
    let id = held["id"].as_str().expect("id").to_string();
    let (status, settled, _) = api
        .post(
            &format!("/api/v1/reservations/{id}/settle"),
            None,
            json!({"quantity": 70}),
        )
        .await;
    assert_eq!(
        (
            status,
            settled["status"].as_str(),
            settled["used_credits"].as_i64()
        ),
        (StatusCode::OK, Some("settled"), Some(210))
    );
    let balance = api.get("/api/v1/balance").await.1;
    assert_eq!(
        (balance["available"].as_i64(), balance["reserved"].as_i64()),
        (Some(790), Some(0))
    );
    let (status, body, _) = api
        .post(
            &format!("/api/v1/reservations/{id}/release"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("reservation_not_pending"))
    );

    let (_, second, _) = api
        .post(
            "/api/v1/reservations",
            Some("r-2"),
            json!({"service": "email", "quantity": 50}),
        )
        .await;
    let second_id = second["id"].as_str().expect("id").to_string();
    let (status, over, _) = api
        .post(
            &format!("/api/v1/reservations/{second_id}/settle"),
            None,
            json!({"quantity": 51}),
        )
        .await;
    assert_eq!(
        (status, over["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
    );
    let (status, released, _) = api
        .post(
            &format!("/api/v1/reservations/{second_id}/release"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, released["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );

    // More than the wallet holds can't be reserved.
    let (status, body, _) = api
        .post(
            "/api/v1/reservations",
            Some("r-3"),
            json!({"service": "sms", "quantity": 10_000}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("insufficient_credits"))
    );

    // A crashed sender's reservation lapses and its credits come back.
    let (_, third, _) = api
        .post(
            "/api/v1/reservations",
            Some("r-4"),
            json!({"service": "email", "quantity": 40}),
        )
        .await;
    let third_id = third["id"].as_str().expect("id").to_string();
    app.state
        .ledger
        .expire_reservations(chrono::Utc::now() + chrono::Duration::hours(2))
        .await
        .expect("sweep");
    let (_, lapsed) = api.get(&format!("/api/v1/reservations/{third_id}")).await;
    assert_eq!(lapsed["status"], "expired");
    assert_eq!(api.get("/api/v1/balance").await.1["available"], 790);

    // Another account can't see or touch it.
    let other = TestApp::fresh_browser(&app);
    other.sign_up("other@example.com").await;
    let (_, page) = other.get_html("/api-keys").await;
    let page = other
        .post_form("/api-keys", &[("csrf", &csrf_of(&page)), ("name", "x")])
        .await
        .text()
        .await
        .expect("page");
    let start =
        page.find("data-testid=\"new-key\">").expect("key") + "data-testid=\"new-key\">".len();
    let other_api = Api {
        app: &app,
        key: page[start..].split('<').next().expect("key").to_string(),
    };
    assert_eq!(
        other_api.get(&format!("/api/v1/reservations/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other_api
            .post(
                &format!("/api/v1/reservations/{second_id}/release"),
                None,
                json!({})
            )
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    app.audit_clean().await;
}

async fn low_balance_alerts_fire_once_per_crossing(app: TestApp) {
    app.sign_up("low@example.com").await;
    app.top_up("150", Pay::UpiId("success@razorpay")).await; // 1,500 credits; alert level 1,000
    let api = Api {
        app: &app,
        key: new_key(&app, "sender").await,
    };
    let user = web::store::users::by_email(&app.state.reads, "low@example.com")
        .await
        .expect("read")
        .expect("the account");
    let alerts = || async {
        web::store::alerts::fired_count(&app.state.reads, user.id)
            .await
            .expect("count")
    };
    // Low-balance warnings only (each top-up also writes its receipt email).
    let emails = || async {
        web::store::outbox::unsent(&app.state.reads, 100)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|e| e.kind == "low_balance")
            .collect::<Vec<_>>()
    };
    api.charge("a", json!({"service": "email", "quantity": 400}))
        .await;
    assert_eq!(alerts().await, 0, "1,100 is above the level");
    api.charge("b", json!({"service": "email", "quantity": 200}))
        .await;
    assert_eq!(alerts().await, 1, "crossing below 1,000 fires once");
    let queued = emails().await;
    assert_eq!(queued.len(), 1, "one email queued: {queued:?}");
    assert_eq!(
        (queued[0].kind.as_str(), queued[0].recipient.as_str()),
        ("low_balance", "low@example.com")
    );
    assert!(
        queued[0].text.contains("below your alert level of 1,000"),
        "{}",
        queued[0].text
    );
    // The email says how to turn the warnings off: the setting on the API keys page.
    assert!(
        queued[0]
            .text
            .contains(&format!("{}/api-keys#alert", app.url)),
        "{}",
        queued[0].text
    );
    assert!(queued[0].html.contains("below your alert level of 1,000"));
    api.charge("c", json!({"service": "email", "quantity": 100}))
        .await;
    assert_eq!(alerts().await, 1, "no more until back above");
    let (_, dashboard) = app.get_html("/dashboard").await;
    assert!(dashboard.contains("below your alert level of 1,000"));
    app.top_up("100", Pay::UpiId("success@razorpay")).await; // 800 + 1,000 = 1,800: re-armed
    let (_, dashboard) = app.get_html("/dashboard").await;
    assert!(!dashboard.contains("below your alert level"));
    api.charge("d", json!({"service": "email", "quantity": 900}))
        .await;
    assert_eq!(alerts().await, 2, "the next crossing fires again");
    assert_eq!(emails().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let app = common::spawn_app(common::Backend::Sqlite)
        .await
        .expect("app");
    app.sign_up("fast@example.com").await;
    let key = new_key(&app, "sender").await;
    // Far more than the burst (400) and the refill (200/s) allow, from 32 clients at once.
    let seen = std::sync::Arc::new(tokio::sync::Mutex::new(None));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (url, key, seen) = (app.at("/api/v1/whoami"), key.clone(), seen.clone());
            tokio::spawn(async move {
                let client = common::browser();
                for _ in 0..200 {
                    if seen.lock().await.is_some() {
                        return;
                    }
                    let r = client
                        .get(&url)
                        .bearer_auth(&key)
                        .send()
                        .await
                        .expect("get");
                    if r.status() == StatusCode::TOO_MANY_REQUESTS {
                        *seen.lock().await = Some(r);
                        return;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let limited = seen.lock().await.take();
    let r = limited.expect("the burst of 400 runs out");
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
}

/// Deadlocks, serialization failures and SQLite's BUSY happen: every transaction that charges
/// or holds credits is run again from the start, so each request is answered once and moves
/// credits once. The failures are injected at the commit (`Ledger::inject_transient_failures`).
async fn charges_and_reservations_retry_transient_database_failures(app: TestApp) {
    app.sign_up("flaky@example.com").await;
    grant(&app, "flaky@example.com", 10_000).await;
    let key = new_key(&app, "flaky").await;
    let app = std::sync::Arc::new(app);
    // Group commits that fail three times, with twenty charges in them.
    app.state.ledger.inject_transient_failures(3);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                let api = Api { app: &app, key };
                api.charge(
                    &format!("flaky-{i}"),
                    json!({"service": "email", "quantity": 5}),
                )
                .await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(body["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 20, "twenty distinct charges");
    assert_eq!(app.credits_of("flaky@example.com").await, 10_000 - 100);
    let api = Api {
        app: &app,
        key: key.clone(),
    };
    // Their retries are answered from what was stored, not charged again.
    let (status, _, replayed) = api
        .charge("flaky-3", json!({"service": "email", "quantity": 5}))
        .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(app.credits_of("flaky@example.com").await, 9_900);

    // A reservation whose transaction fails twice: held once, recorded once.
    app.state.ledger.inject_transient_failures(2);
    let body = json!({"service": "sms", "quantity": 100, "reference": "flaky-campaign"});
    let (status, held, _) = api
        .post("/api/v1/reservations", Some("hold-flaky"), body.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    // The same request a second later (a later clock): the original reservation, its expiry
    // included, not a 409.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, again, replayed) = api
        .post("/api/v1/reservations", Some("hold-flaky"), body)
        .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{again}");
    assert_eq!(
        (&again["id"], &again["expires_at"]),
        (&held["id"], &held["expires_at"])
    );
    let balance = api.get("/api/v1/balance").await.1;
    assert_eq!(
        (balance["available"].as_i64(), balance["reserved"].as_i64()),
        (Some(9_600), Some(300))
    );
    // Settling through a failing transaction, too.
    app.state.ledger.inject_transient_failures(1);
    let id = held["id"].as_str().expect("id");
    let (status, settled, _) = api
        .post(
            &format!("/api/v1/reservations/{id}/settle"),
            None,
            json!({"quantity": 40}),
        )
        .await;
    assert_eq!(
        (status, settled["used_credits"].as_i64()),
        (StatusCode::OK, Some(120))
    );
    assert_eq!(app.credits_of("flaky@example.com").await, 9_780);
    // Releasing, too.
    let (_, held, _) = api
        .post(
            "/api/v1/reservations",
            Some("hold-flaky-2"),
            json!({"service": "email", "quantity": 50}),
        )
        .await;
    app.state.ledger.inject_transient_failures(2);
    let id = held["id"].as_str().expect("id");
    let (status, released, _) = api
        .post(
            &format!("/api/v1/reservations/{id}/release"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, released["status"].as_str()),
        (StatusCode::OK, Some("released"))
    );
    // A batch in which one charge is refused, through a failing commit: the refusal and the
    // charge that fits are each answered once.
    app.state.ledger.inject_transient_failures(2);
    let (big, small) = tokio::join!(
        api.charge("too-big", json!({"service": "email", "quantity": 100_000})),
        api.charge("fits", json!({"service": "email", "quantity": 80})),
    );
    assert_eq!(big.0, StatusCode::PAYMENT_REQUIRED, "{}", big.1);
    assert_eq!(small.0, StatusCode::CREATED, "{}", small.1);
    assert_eq!(app.credits_of("flaky@example.com").await, 9_700);
    app.audit_clean().await;
}

/// The benchmark's durable baseline: off unless configured (404, like any unknown route); when
/// configured, an API key is still required, and each request appends exactly one row to the
/// baseline's own database and moves no credits.
async fn the_durable_baseline_appends_one_row_per_request_and_is_off_by_default(
    backend: common::Backend,
) {
    let Some(plain) = common::spawn_app(backend).await else {
        return;
    };
    plain.sign_up("bench@example.com").await;
    let key = new_key(&plain, "bench").await;
    let (status, body, _) = Api { app: &plain, key }
        .post("/api/v1/benchmark/durable-append", None, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    drop(plain);

    let dir = tempfile::tempdir().expect("temp dir");
    let (url, schema) = match backend {
        common::Backend::Sqlite => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("baseline.db").display()
            ),
            String::new(),
        ),
        common::Backend::Postgres => (
            common::postgres_url().expect("checked above"),
            format!("baseline_{}_{}", std::process::id(), rand_suffix()),
        ),
    };
    let mut settings = vec![("benchmark.durable_baseline_url", url.as_str())];
    if !schema.is_empty() {
        settings.push(("benchmark.durable_baseline_schema", schema.as_str()));
    }
    let app = common::spawn_app_configured(backend, Default::default(), &settings)
        .await
        .expect("app");
    app.sign_up("bench@example.com").await;
    grant(&app, "bench@example.com", 1_000).await;
    let key = new_key(&app, "bench").await;
    let anonymous = common::browser()
        .post(app.at("/api/v1/benchmark/durable-append"))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (app, key) = (app.clone(), key.clone());
            tokio::spawn(async move {
                Api { app: &app, key }
                    .post("/api/v1/benchmark/durable-append", None, json!({}))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let (status, body, _) = task.await.expect("task");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["appended"], 1);
    }
    let appends = web::store::durable_appends::DurableAppends::open(
        &url,
        Some(schema.as_str()).filter(|s| !s.is_empty()),
    )
    .await
    .expect("the baseline's database");
    assert_eq!(appends.count().await.expect("count"), 40, "one row each");
    assert_eq!(
        app.credits_of("bench@example.com").await,
        1_000,
        "no credits moved"
    );
    drop(appends);
    if !schema.is_empty() {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(url.as_str()).await.expect("pg");
        let _ = db
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

mod the_durable_baseline_appends_one_row_per_request_and_is_off_by_default {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::the_durable_baseline_appends_one_row_per_request_and_is_off_by_default(
            crate::common::Backend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::the_durable_baseline_appends_one_row_per_request_and_is_off_by_default(
            crate::common::Backend::Postgres,
        )
        .await;
    }
}
