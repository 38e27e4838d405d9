//! The Kalp Credits web app: sign-in, Billing with Top up → Add Credits, paying through Razorpay's
//! hosted checkout and coming back, the Dashboard and Credit History, the usage API, Razorpay's
//! webhooks, reconciliation and the audit. `docs/architecture.md` maps the modules and the
//! direction of their imports.

pub mod accounts;
pub mod alerts;
pub mod api;
pub mod audit;
pub mod billing;
pub mod client_ip;
pub mod configuration;
pub mod crypto;
pub mod doctor;
pub mod documents;
pub mod emails;
pub mod group_commit;
pub mod gst;
pub mod http_layers;
pub mod india;
pub mod limits;
pub mod operators;
pub mod pages;
pub mod password_reset;
pub mod passwords;
pub mod probes;
pub mod readiness;
pub mod reconcile;
pub mod rejections;
pub mod retention;
pub mod scale_preload;
pub mod server;
pub mod services;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod workers;

/// Logs to stderr, as text or as JSON lines (`log.format`); `RUST_LOG` filters (default: info).
/// Each line of a request carries its `request_id` (the request's span).
pub fn init_tracing(format: configuration::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        configuration::LogFormat::Text => builder.try_init(),
        configuration::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
