//! Building and running the app: open the services, start what only the app needs (the charge
//! batcher, limits, password hashing), bind, route, and run the background workers.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{MethodRouter, any, get, post},
};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

use crate::{
    api,
    configuration::Settings,
    pages::{self, error::PageError},
    services::Services,
    state::AppState,
    webhooks, workers,
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

    /// Serves requests and runs the background workers (webhook inbox, reconciliation,
    /// housekeeping) until `shutdown` resolves. Then: stop accepting, let requests in flight
    /// finish (a charge in flight is answered and committed), let each worker finish what it is
    /// doing, and return.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut workers = vec![
            workers::spawn_webhook_worker(self.state.clone(), stopped.clone()),
            workers::spawn_housekeeping(self.state.clone(), stopped.clone()),
        ];
        workers.extend(workers::spawn_email_sender(
            self.state.clone(),
            stopped.clone(),
        ));
        workers.extend(workers::spawn_reconciliation(self.state.clone(), stopped));
        let readiness = self.state.readiness.clone();
        let shutdown = async move {
            shutdown.await;
            // From the first moment of shutdown, not ready: the load balancer stops sending.
            readiness.drain();
        };
        crate::server::serve(
            self.listener,
            self.router,
            &self.state.settings.server,
            shutdown,
        )
        .await;
        let _ = stop.send(true);
        for worker in workers {
            if tokio::time::timeout(WORKER_GRACE, worker).await.is_err() {
                tracing::warn!("a background worker did not stop within {WORKER_GRACE:?}");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a background worker may take to finish its round at shutdown.
const WORKER_GRACE: Duration = Duration::from_secs(10);

/// The app's state: the services, and what serving needs besides (the charge batcher's thread,
/// rate limits, password hashing, the API key cache). Commands use [`Services`] alone.
pub async fn connect(settings: Settings) -> anyhow::Result<AppState> {
    let services = Services::connect(settings).await?;
    let settings = services.settings.clone();
    let charger = api::batcher::Charger::start(
        services.ledger.clone(),
        Duration::from_micros(settings.usage.batch_window_micros),
        settings.usage.batch_max,
    );
    let webhook_intake = crate::webhooks::intake::WebhookIntake::start(services.ledger.clone());
    let durable_baseline = api::durable_baseline::start(&settings).await?;
    let mailer = crate::emails::mailer::Mailer::from_settings(&settings.email)?;
    Ok(AppState::new(crate::state::Shared {
        mailer,
        charger,
        webhook_intake,
        durable_baseline,
        api_limits: api::rate_limits::ApiRateLimits::new(&settings.usage, &settings.security),
        address_limits: crate::limits::AddressLimits::new(&settings.security),
        passwords: crate::passwords::PasswordHashing::new(
            settings.security.password_hash_workers,
            settings.security.password_hash_queue,
        ),
        api_keys: api::key_cache::KeyCache::new(Duration::from_secs(settings.usage.key_cache_secs)),
        services,
        webhook_wakeup: Arc::new(tokio::sync::Notify::new()),
        readiness: crate::readiness::Readiness::new(),
        metrics: crate::telemetry::recorder(),
    }))
}

/// Forms are small; nothing a person submits needs more.
const FORM_LIMIT: usize = 16 * 1024;
/// A charge of 10,000 lines fits comfortably.
const API_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// A route taking bodies of up to `max` bytes, limited by tower-http alone: one whose
/// Content-Length announces more is answered 413 before a byte of it is read, so a client sees
/// the answer without first sending megabytes, and one that runs past `max` unannounced is cut
/// off there (axum's extractors answer 413 for tower-http's length error). axum's own limit is
/// lifted for the route, or the router's 16 KiB for forms would apply as well.
fn accepting_up_to(max: usize, route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::disable())
        .layer::<_, std::convert::Infallible>(RequestBodyLimitLayer::new(max))
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(api::account::openapi))
        .route("/api/v1/balance", get(api::account::balance))
        .route("/api/v1/whoami", get(api::account::whoami))
        .route(
            "/api/v1/charges",
            accepting_up_to(API_BODY_LIMIT, post(api::charges::create)),
        )
        .route("/api/v1/reservations", post(api::reservations::create))
        .route(
            "/api/v1/benchmark/durable-append",
            post(api::benchmark::durable_append),
        )
        .route("/api/v1/reservations/{id}", get(api::reservations::get))
        .route(
            "/api/v1/reservations/{id}/settle",
            post(api::reservations::settle),
        )
        .route(
            "/api/v1/reservations/{id}/release",
            post(api::reservations::release),
        )
        .route("/api/v1/{*rest}", any(api::account::not_found))
        .route("/api/{*rest}", any(api::account::not_found))
        .layer(middleware::from_fn(api::rate_limits::rate_limit_headers));
    Router::new()
        .route("/", get(pages::root))
        .route("/healthz", get(crate::probes::healthz))
        .route("/readyz", get(crate::probes::readyz))
        .route("/metrics", get(crate::probes::metrics_page))
        .route(
            "/signup",
            get(pages::sign_in::signup_page).post(pages::sign_in::signup),
        )
        .route(
            "/login",
            get(pages::sign_in::login_page).post(pages::sign_in::login),
        )
        .route("/logout", post(pages::sign_in::logout))
        .route(
            "/forgot-password",
            get(pages::password_reset::forgot_page).post(pages::password_reset::forgot),
        )
        .route(
            "/reset-password",
            get(pages::password_reset::reset_page).post(pages::password_reset::reset),
        )
        .route("/account", get(pages::account::account_page))
        .route(
            "/account/logout-everywhere",
            post(pages::account::logout_everywhere),
        )
        .route("/dashboard", get(pages::dashboard::dashboard))
        .route("/billing", get(pages::billing::billing_page))
        .route("/billing/topup", get(pages::billing::add_credits_form))
        .route("/billing/topups", post(pages::billing::create_topup))
        .route("/billing/topups/{id}", get(pages::topup::status_page))
        .route(
            "/billing/topups/{id}/callback",
            post(pages::topup::callback),
        )
        .route(
            "/billing/topups/{id}/cancel",
            get(pages::topup::cancel_page).post(pages::topup::cancel),
        )
        .route("/billing/topups/{id}/retry", get(pages::topup::retry))
        .route(
            "/billing/topups/{id}/receipt",
            get(pages::receipts::receipt_page),
        )
        .route(
            "/billing/topups/{id}/receipt.pdf",
            get(pages::receipts::receipt_pdf),
        )
        .route("/billing/vouchers/{id}", get(pages::receipts::voucher_page))
        .route(
            "/billing/profile",
            get(pages::billing_profile::profile_page).post(pages::billing_profile::save_profile),
        )
        .route("/billing/history", get(pages::history::history))
        .route("/billing/history.csv", get(pages::history_csv::history_csv))
        .route(
            "/api-keys",
            get(pages::api_keys::page).post(pages::api_keys::create),
        )
        .route("/api-keys/alert", post(pages::api_keys::set_threshold))
        .route("/api-keys/{id}/revoke", post(pages::api_keys::revoke))
        .route("/admin", get(pages::admin::home::home))
        .route("/admin/audit", get(pages::admin::audit::audit_page))
        .route(
            "/admin/vouchers.csv",
            get(pages::admin::vouchers_csv::vouchers_csv),
        )
        .route(
            "/admin/customers/{id}",
            get(pages::admin::customer::customer_page),
        )
        .route(
            "/admin/customers/{id}/grant",
            post(pages::admin::actions::grant),
        )
        .route(
            "/admin/customers/{id}/adjust",
            post(pages::admin::actions::adjustment),
        )
        .route(
            "/admin/customers/{id}/refund-unused",
            post(pages::admin::actions::refund_unused_credits),
        )
        .route(
            "/admin/topups/{id}/resolve",
            post(pages::admin::actions::resolve_flagged),
        )
        .route(
            "/admin/refund-requests/{id}/{decision}",
            post(pages::admin::actions::decide_request),
        )
        .route(
            "/admin/shortfalls/{refund_id}/accept",
            post(pages::admin::actions::accept_shortfall),
        )
        .route(
            "/admin/emails/{id}/resend",
            post(pages::admin::actions::resend_email),
        )
        .route("/admin/{*rest}", any(|| async { PageError::NotFound }))
        .route(
            "/billing/refund-request",
            post(pages::billing::request_refund),
        )
        .merge(api)
        .route(
            "/webhooks/razorpay",
            accepting_up_to(webhooks::MAX_BODY, post(webhooks::receive)),
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
        .route(
            "/static/redirect.js",
            get(|| {
                static_file(
                    include_str!("../static/redirect.js"),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .route(
            "/static/favicon.svg",
            get(|| static_file(include_str!("../static/favicon.svg"), "image/svg+xml")),
        )
        .route(
            "/favicon.ico",
            get(|| static_file(include_str!("../static/favicon.svg"), "image/svg+xml")),
        )
        .fallback(|| async { PageError::NotFound })
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(state.settings.server.request_timeout_secs),
        ))
        .layer(middleware::from_fn(crate::rejections::shape_errors))
        .layer(middleware::from_fn_with_state(
            crate::http_layers::SecurityHeaderValues::from_settings(&state.settings),
            crate::http_layers::security_headers,
        ))
        .layer(middleware::from_fn(crate::http_layers::log_request))
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
