//! Building and running the app: connect the ledger, migrate, bind, route.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{
    api, auth,
    billing::routes as billing,
    configuration::Settings,
    db::{self, Db},
    error::AppError,
    pages,
    state::AppState,
};

/// The app, bound to its port and ready to serve.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    pub state: AppState,
}

impl Application {
    /// Opens the database (applying migrations), builds the Razorpay client and binds the port.
    /// `server.port = 0` picks a free port (tests).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let address = settings.listen_address();
        let listener = tokio::net::TcpListener::bind(&address).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {address}: {e} (is the port taken? set KALP__SERVER__PORT)"
            )
        })?;
        Self::build_on(settings, listener).await
    }

    /// Like [`Application::build`], on a listener the caller bound (tests bind first to learn
    /// the port that goes into `server.public_url`).
    pub async fn build_on(
        settings: Settings,
        listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Application> {
        let state = connect(settings).await?;
        Ok(Application {
            listener,
            router: router(state.clone()),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves requests and runs the background workers (webhook inbox, reconciliation).
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let webhooks = crate::webhooks::spawn_worker(self.state.clone());
        let reconcile = crate::reconcile::spawn_worker(self.state.clone());
        let housekeeping = crate::reconcile::spawn_housekeeping(self.state.clone());
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        webhooks.abort();
        housekeeping.abort();
        if let Some(worker) = reconcile {
            worker.abort();
        }
        Ok(served?)
    }
}

/// The state without a server: for commands (migrate, reconcile) and the app itself.
pub async fn connect(settings: Settings) -> anyhow::Result<AppState> {
    let mut ledger_config = ledger::ConnectConfig::new(settings.database.url.clone());
    ledger_config.pg_schema = settings.database.schema.clone().filter(|s| !s.is_empty());
    let ledger = ledger::Ledger::connect(&ledger_config).await.map_err(|e| {
        anyhow::anyhow!(
            "database {}: {e}",
            ledger::redact_url(&settings.database.url)
        )
    })?;
    let db = Db::new(&ledger);
    db::migrate(&db).await?;
    let mut client = razorpay::ClientConfig::new(
        settings.razorpay.base_url.clone(),
        settings.razorpay.key_id.clone(),
        settings.razorpay.key_secret.clone(),
    );
    client.request_timeout = Duration::from_secs(15);
    let razorpay = razorpay::Client::new(client)?;
    let charger = crate::api::batcher::Charger::start(
        ledger.clone(),
        db.backend,
        Duration::from_micros(settings.usage.batch_window_micros),
        settings.usage.batch_max,
    );
    Ok(AppState::new(crate::state::Shared {
        charger,
        rate_limiter: Arc::new(crate::api::RateLimiter::default()),
        api_keys: Arc::new(crate::api::KeyCache::new(Duration::from_secs(
            settings.usage.key_cache_secs,
        ))),
        ledger,
        db,
        razorpay,
        settings: Arc::new(settings),
        webhook_wakeup: Arc::new(tokio::sync::Notify::new()),
    }))
}

/// Forms are small; nothing a person submits needs more.
const FORM_LIMIT: usize = 16 * 1024;
/// A charge of 10,000 lines fits comfortably.
const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::root))
        .route("/healthz", get(pages::healthz))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/dashboard", get(pages::dashboard))
        .route("/billing", get(billing::billing_page))
        .route("/billing/topup", get(billing::topup_form))
        .route("/billing/topups", post(billing::create_topup))
        .route("/billing/topups/{id}", get(billing::status_page))
        .route("/billing/topups/{id}/callback", post(billing::callback))
        .route("/billing/topups/{id}/cancel", get(billing::cancel))
        .route("/billing/topups/{id}/retry", get(billing::retry))
        .route("/billing/history", get(pages::history))
        .route("/billing/history.csv", get(pages::history_csv))
        .route("/api-keys", get(api::keys::page).post(api::keys::create))
        .route("/api-keys/alert", post(api::keys::set_threshold))
        .route("/api-keys/{id}/revoke", post(api::keys::revoke))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/balance", get(api::balance))
        .route("/api/v1/whoami", get(api::whoami))
        .route(
            "/api/v1/charges",
            post(api::charges::create).layer(DefaultBodyLimit::max(API_BODY_LIMIT)),
        )
        .route("/api/v1/reservations", post(api::reservations::create))
        .route("/api/v1/reservations/{id}", get(api::reservations::get))
        .route(
            "/api/v1/reservations/{id}/settle",
            post(api::reservations::settle),
        )
        .route(
            "/api/v1/reservations/{id}/release",
            post(api::reservations::release),
        )
        .route("/api/v1/{*rest}", get(api::not_found).post(api::not_found))
        .route(
            "/webhooks/razorpay",
            post(crate::webhooks::receive).layer(DefaultBodyLimit::max(crate::webhooks::MAX_BODY)),
        )
        .route(
            "/static/app.css",
            get(|| static_file(include_str!("../static/app.css"), "text/css; charset=utf-8")),
        )
        .route(
            "/static/app.js",
            get(|| {
                static_file(
                    include_str!("../static/app.js"),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn static_file(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

/// One line per request: method, path (never the query, which may carry ids), status, time.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
