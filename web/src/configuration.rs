//! Settings from layered sources: the defaults committed in `config/base.toml` (compiled in),
//! then `config/local.toml` if present (not committed), then environment variables `KALP__…`
//! (`KALP__SERVER__PORT`, `KALP__RAZORPAY__KEY_SECRET`, …). A missing or malformed setting stops
//! the app at start with a message that names it.
//!
//! It stays one file, longer than most: every setting beside its default, its environment name
//! and its check, and production's refusal of development secrets, read together.

use std::collections::BTreeMap;

use razorpay::Secret;
use serde::Deserialize;

const BASE: &str = include_str!("../config/base.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `development` (the default) or `production`, which refuses development secrets and a
    /// public URL that is not https.
    #[serde(default)]
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub razorpay: RazorpaySettings,
    pub billing: BillingSettings,
    pub prices: PriceSettings,
    pub session: SessionSettings,
    pub reconcile: ReconcileSettings,
    pub usage: UsageSettings,
    pub security: SecuritySettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    pub gst: GstSettings,
    pub email: EmailSettings,
    #[serde(default)]
    pub benchmark: BenchmarkSettings,
}

/// What `cargo xtask bench` turns on (`KALP__BENCHMARK__…`); nothing by default, and production
/// refuses it.
#[derive(Clone, Default, Deserialize)]
pub struct BenchmarkSettings {
    /// The durable baseline's own database (`api::durable_baseline`): a `sqlite://` URL, or a
    /// `postgres://` one with `durable_baseline_schema`. Empty: the baseline is off.
    #[serde(default)]
    pub durable_baseline_url: String,
    #[serde(default)]
    pub durable_baseline_schema: Option<String>,
}

impl std::fmt::Debug for BenchmarkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchmarkSettings")
            .field(
                "durable_baseline_url",
                &ledger::redact_url(&self.durable_baseline_url),
            )
            .field("durable_baseline_schema", &self.durable_baseline_schema)
            .finish()
    }
}

/// Sending email (`[email]`, `KALP__EMAIL__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    /// `smtp://host:port` (plain, for a relay on the same network or the dev mailbox),
    /// `smtp://host:port?tls=required` (STARTTLS), or `smtps://user:pass@host:port` (TLS).
    /// Empty: emails wait in the outbox and nothing sends them. A secret: it may hold a password.
    pub smtp_url: Secret,
    /// The sender, e.g. `Kalp Studio <billing@kalp.studio>`.
    pub from: String,
    /// Attempts before an email is parked for an operator.
    pub max_attempts: i64,
    /// The first retry waits this long; each one after twice as long, up to an hour.
    pub retry_base_secs: i64,
    /// Emails claimed per round.
    pub batch: u64,
}

/// The seller on GST documents (`[gst]`, `KALP__GST__…`). The committed values are for
/// development; production refuses them.
#[derive(Debug, Clone, Deserialize)]
pub struct GstSettings {
    pub seller_legal_name: String,
    pub seller_address: String,
    /// The seller's state code: supplies within it are CGST and SGST, to others IGST.
    pub seller_state_code: u32,
    pub seller_gstin: String,
    /// The SAC of what is sold (services), printed on every voucher.
    pub sac: String,
    /// In basis points: 1800 is 18 %.
    pub rate_bps: i64,
    /// Voucher numbers are `<prefix>/<26-27>/<000123>`, at most 16 characters.
    pub receipt_prefix: String,
    pub refund_prefix: String,
}

/// How long operational rows are kept before housekeeping deletes them, in bounded batches.
/// Ledger data (transfers, lots, balances) and money records are never purged.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Webhook events, this long after they were processed (unprocessed ones stay).
    #[serde(default = "default_webhook_event_days")]
    pub webhook_event_days: i64,
    /// Log-in attempt counters, this long after their window began.
    #[serde(default = "default_auth_attempt_hours")]
    pub auth_attempt_hours: i64,
    /// Rows deleted per table per housekeeping round (every 5 s).
    #[serde(default = "default_purge_batch")]
    pub batch: u64,
}

fn default_webhook_event_days() -> i64 {
    30
}

fn default_auth_attempt_hours() -> i64 {
    24
}

fn default_purge_batch() -> u64 {
    500
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            webhook_event_days: default_webhook_event_days(),
            auth_attempt_hours: default_auth_attempt_hours(),
            batch: default_purge_batch(),
        }
    }
}

/// How the app logs (`KALP__LOG__FORMAT`): `text` for people, `json` (one object per line) for
/// log collectors. `RUST_LOG` filters either way.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Prometheus metrics at `/metrics`; with a token (`KALP__METRICS__TOKEN`), only for
/// `Authorization: Bearer <token>`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    #[serde(default = "empty_secret")]
    pub token: Secret,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            token: empty_secret(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

/// How the app protects itself and its accounts (docs/security.md).
#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    /// Password hashes computed at once (0: one per core); each takes ~19 MiB while it runs.
    pub password_hash_workers: usize,
    /// Hashes that may wait for a worker; beyond them a request gets 503 "try again shortly".
    pub password_hash_queue: usize,
    /// Log-in attempts for one account from one address, per `attempt_window_secs`.
    pub attempts_per_account_and_address: u32,
    /// Log-in attempts for one account from anywhere, per window: loose, so that a stranger's
    /// guesses from elsewhere do not lock the owner out.
    pub attempts_per_account: u32,
    pub attempt_window_secs: u64,
    /// Log-in, sign-up and other password requests from one address, per minute (and burst).
    pub password_requests_per_address_per_minute: u32,
    /// Requests with an API key we do not know, per address per minute, before any lookup.
    pub unknown_api_keys_per_address_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UsageSettings {
    pub reservation_ttl_secs: u64,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub default_alert_threshold: i64,
    pub batch_window_micros: u64,
    pub batch_max: usize,
    /// How long a verified API key is remembered (0 = look it up on every request).
    #[serde(default = "default_key_cache_secs")]
    pub key_cache_secs: u64,
}

fn default_key_cache_secs() -> u64 {
    5
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    /// A client that has not sent a request's headers within this long is disconnected.
    pub header_read_timeout_secs: u64,
    /// A request not answered within this long is answered 408 (its work is cancelled).
    pub request_timeout_secs: u64,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Behind a proxy that sets it, the header carrying the client's address (its first
    /// address is used, e.g. `x-forwarded-for`). Empty: the connection's own address. Only set
    /// it when every request comes through that proxy, or anyone can claim any address.
    #[serde(default)]
    pub client_ip_header: String,
}

#[derive(Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// PostgreSQL only: the schema to use (created if missing).
    #[serde(default)]
    pub schema: Option<String>,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &ledger::redact_url(&self.url))
            .field("schema", &self.schema)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RazorpaySettings {
    pub base_url: String,
    pub key_id: String,
    pub key_secret: Secret,
    pub webhook_secret: Secret,
    #[serde(default = "empty_secret")]
    pub webhook_previous_secret: Secret,
    /// Put before every order's receipt (`<prefix>topup_<id>`). Razorpay keeps receipts unique
    /// per account, so a deployment whose database may be reset (staging) sets its own.
    #[serde(default)]
    pub receipt_prefix: String,
}

/// The longest receipt prefix: `topup_` and the largest id still fit Razorpay's 40 characters.
pub const MAX_RECEIPT_PREFIX: usize = 40 - "topup_".len() - 19;

fn empty_secret() -> Secret {
    Secret::new("")
}

#[derive(Debug, Clone, Deserialize)]
pub struct BillingSettings {
    pub merchant_name: String,
    pub paise_per_credit: i64,
    pub min_topup_paise: i64,
    pub max_topup_paise: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceSettings {
    pub email_credits: i64,
    pub sms_segment_credits: i64,
    #[serde(default)]
    pub sms_countries: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    pub secure_cookies: bool,
    pub ttl_hours: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    pub interval_secs: u64,
    pub min_age_secs: u64,
    pub expire_after_secs: u64,
    /// A top-up's page, while it waits for a payment at least this old, asks Razorpay itself
    /// (at most once per few seconds per top-up) instead of waiting for reconciliation.
    #[serde(default = "default_page_check_after_secs")]
    pub page_check_after_secs: u64,
}

fn default_page_check_after_secs() -> u64 {
    10
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Defaults, then `config/local.toml` (relative to the working directory, or to
    /// `KALP_CONFIG_DIR`), then the environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let dir = std::env::var("KALP_CONFIG_DIR").unwrap_or_else(|_| "config".into());
        let local = std::path::Path::new(&dir).join("local.toml");
        let builder = config::Config::builder()
            .add_source(config::File::from_str(BASE, config::FileFormat::Toml))
            .add_source(config::File::from(local).required(false))
            .add_source(
                config::Environment::with_prefix("KALP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
        Self::from_config(builder.build())
    }

    /// The defaults with some values replaced (keys like `server.port`), for tests and tools.
    pub fn with_overrides(overrides: &[(&str, String)]) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(BASE, config::FileFormat::Toml));
        for (key, value) in overrides {
            builder = builder
                .set_override(*key, value.clone())
                .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        }
        Self::from_config(builder.build())
    }

    fn from_config(
        built: Result<config::Config, config::ConfigError>,
    ) -> Result<Settings, ConfigError> {
        let built = built.map_err(|e| ConfigError(describe(&e)))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| ConfigError(describe(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |name: &str, why: &str| Err(ConfigError(format!("{} {why}", env_name(name))));
        if !(self.server.public_url.starts_with("http://")
            || self.server.public_url.starts_with("https://"))
        {
            return fail("server.public_url", "must start with http:// or https://");
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            return fail("database.url", "must be a sqlite:// or postgres:// URL");
        }
        if !(self.razorpay.base_url.starts_with("http://")
            || self.razorpay.base_url.starts_with("https://"))
        {
            return fail("razorpay.base_url", "must start with http:// or https://");
        }
        for (name, value) in [
            ("razorpay.key_id", self.razorpay.key_id.as_str()),
            ("razorpay.key_secret", self.razorpay.key_secret.expose()),
            (
                "razorpay.webhook_secret",
                self.razorpay.webhook_secret.expose(),
            ),
        ] {
            if value.trim().is_empty() {
                return fail(name, "is not set");
            }
            if value.chars().any(char::is_whitespace) {
                return fail(name, "contains whitespace");
            }
        }
        let prefix = &self.razorpay.receipt_prefix;
        if prefix.len() > MAX_RECEIPT_PREFIX
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return fail(
                "razorpay.receipt_prefix",
                &format!(
                    "must be at most {MAX_RECEIPT_PREFIX} of A-Z, a-z, 0-9, _ and - (receipts are at most 40 characters)"
                ),
            );
        }
        let b = &self.billing;
        if b.paise_per_credit <= 0 {
            return fail(
                "billing.paise_per_credit",
                "must be a positive number of paise",
            );
        }
        if b.min_topup_paise < 100 || b.max_topup_paise < b.min_topup_paise {
            return fail(
                "billing.min_topup_paise",
                "must be at least 100 and at most billing.max_topup_paise",
            );
        }
        if b.min_topup_paise % b.paise_per_credit != 0
            || b.max_topup_paise % b.paise_per_credit != 0
        {
            return fail(
                "billing.min_topup_paise",
                "and max_topup_paise must be whole numbers of credits",
            );
        }
        let p = &self.prices;
        if p.email_credits <= 0
            || p.sms_segment_credits <= 0
            || p.sms_countries.values().any(|c| *c <= 0)
        {
            return fail(
                "prices.email_credits",
                "and every SMS price must be a positive number of credits",
            );
        }
        if self.usage.rate_per_sec == 0
            || self.usage.batch_max == 0
            || self.usage.reservation_ttl_secs == 0
        {
            return fail(
                "usage.rate_per_sec",
                "and usage.batch_max and usage.reservation_ttl_secs must be positive",
            );
        }
        if self.session.ttl_hours <= 0 {
            return fail("session.ttl_hours", "must be positive");
        }
        let s = &self.server;
        if s.header_read_timeout_secs == 0 || s.request_timeout_secs == 0 || s.max_connections == 0
        {
            return fail(
                "server.header_read_timeout_secs",
                "and server.request_timeout_secs and server.max_connections must be positive",
            );
        }
        let sec = &self.security;
        if sec.attempts_per_account_and_address == 0
            || sec.attempts_per_account == 0
            || sec.attempt_window_secs == 0
            || sec.password_requests_per_address_per_minute == 0
            || sec.unknown_api_keys_per_address_per_minute == 0
        {
            return fail(
                "security.attempts_per_account_and_address",
                "and the other security limits must be positive",
            );
        }
        self.validate_gst()?;
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            return fail(
                "email.from",
                "must be an address, e.g. Kalp Studio <billing@kalp.studio>",
            );
        }
        if self.email.max_attempts < 1 || self.email.retry_base_secs < 1 || self.email.batch == 0 {
            return fail(
                "email.max_attempts",
                "and email.retry_base_secs and email.batch must be positive",
            );
        }
        let baseline = &self.benchmark;
        if !(baseline.durable_baseline_url.is_empty()
            || baseline.durable_baseline_url.starts_with("sqlite:")
            || baseline.durable_baseline_url.starts_with("postgres"))
        {
            return fail(
                "benchmark.durable_baseline_url",
                "must be empty, or a sqlite:// or postgres:// URL",
            );
        }
        if let Some(schema) = &baseline.durable_baseline_schema
            && !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return fail(
                "benchmark.durable_baseline_schema",
                "may hold only letters, digits and underscores",
            );
        }
        if self.environment == Environment::Production {
            self.validate_production()?;
        }
        Ok(())
    }

    /// What production refuses: the committed development secrets (or none), and a public URL
    /// that is not https (cookies and Razorpay's callbacks would travel in the clear).
    fn validate_gst(&self) -> Result<(), ConfigError> {
        let fail = |name: &str, why: String| Err(ConfigError(format!("{} {why}", env_name(name))));
        let gst = &self.gst;
        let gstin = match crate::gst::gstin::Gstin::parse(&gst.seller_gstin) {
            Ok(gstin) => gstin,
            Err(e) => return fail("gst.seller_gstin", format!("is not a GSTIN: {e}")),
        };
        if gstin.state_code() != gst.seller_state_code {
            return fail(
                "gst.seller_state_code",
                format!(
                    "must be {}, the state of the seller's GSTIN",
                    gstin.state_code()
                ),
            );
        }
        if !(0..=10_000).contains(&gst.rate_bps) {
            return fail("gst.rate_bps", "must be 0 to 10000 (basis points)".into());
        }
        for (name, prefix) in [
            ("gst.receipt_prefix", &gst.receipt_prefix),
            ("gst.refund_prefix", &gst.refund_prefix),
        ] {
            let year = crate::gst::voucher_number::FinancialYear(2026);
            if prefix.is_empty()
                || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
                || crate::gst::voucher_number::voucher_number(prefix, year, 999_999).is_err()
            {
                return fail(
                    name,
                    "must be 1 to 3 letters or digits (a voucher number has at most 16 characters)"
                        .into(),
                );
            }
        }
        if gst.receipt_prefix == gst.refund_prefix {
            return fail(
                "gst.refund_prefix",
                "must differ from the receipt prefix (each series is consecutive)".into(),
            );
        }
        Ok(())
    }

    pub fn validate_production(&self) -> Result<(), ConfigError> {
        let fail = |name: &str, why: &str| {
            Err(ConfigError(format!(
                "{} {why} (KALP__ENVIRONMENT=production)",
                env_name(name)
            )))
        };
        let committed: Settings = config::Config::builder()
            .add_source(config::File::from_str(BASE, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError(describe(&e)))?;
        for (name, value, development) in [
            (
                "razorpay.key_secret",
                self.razorpay.key_secret.expose(),
                committed.razorpay.key_secret.expose(),
            ),
            (
                "razorpay.webhook_secret",
                self.razorpay.webhook_secret.expose(),
                committed.razorpay.webhook_secret.expose(),
            ),
            (
                "razorpay.key_id",
                self.razorpay.key_id.as_str(),
                committed.razorpay.key_id.as_str(),
            ),
            (
                "gst.seller_gstin",
                self.gst.seller_gstin.as_str(),
                committed.gst.seller_gstin.as_str(),
            ),
            (
                "gst.seller_legal_name",
                self.gst.seller_legal_name.as_str(),
                committed.gst.seller_legal_name.as_str(),
            ),
            (
                "gst.seller_address",
                self.gst.seller_address.as_str(),
                committed.gst.seller_address.as_str(),
            ),
            (
                "email.smtp_url",
                self.email.smtp_url.expose(),
                committed.email.smtp_url.expose(),
            ),
            (
                "email.from",
                self.email.from.as_str(),
                committed.email.from.as_str(),
            ),
        ] {
            if value.trim().is_empty() {
                return fail(name, "is not set");
            }
            if value == development {
                return fail(
                    name,
                    "is the development value committed in web/config/base.toml; set your own",
                );
            }
        }
        if !self.server.public_url.starts_with("https://") {
            return fail("server.public_url", "must be an https:// URL");
        }
        if !self.benchmark.durable_baseline_url.is_empty() {
            return fail(
                "benchmark.durable_baseline_url",
                "is for benchmarks only and must be empty",
            );
        }
        Ok(())
    }

    /// Cookies are `Secure` (and HSTS is sent) whenever the app is served over https.
    pub fn served_over_https(&self) -> bool {
        self.server.public_url.starts_with("https://") || self.session.secure_cookies
    }

    pub fn listen_address(&self) -> String {
        format!("{}:{}", self.server.host, self.server.port)
    }

    pub fn public_url(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }
}

/// `server.port` → `KALP__SERVER__PORT`, the name people set.
pub fn env_name(key: &str) -> String {
    format!("KALP__{}", key.replace('.', "__").to_uppercase())
}

fn describe(e: &config::ConfigError) -> String {
    // config's messages name the key ("missing field `key_id` for key `razorpay`"); add the
    // environment variable people would set.
    let text = e.to_string();
    match (text.split('`').nth(1), text.rsplit_once("for key `")) {
        (Some(field), Some((_, section))) => {
            let section = section.trim_end_matches('`');
            format!("{text} (set {})", env_name(&format!("{section}.{field}")))
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load_and_validate() {
        let s = Settings::with_overrides(&[]).expect("defaults are valid");
        assert_eq!(s.server.port, 8000);
        assert_eq!(s.billing.paise_per_credit, 10);
        assert!(
            !format!("{s:?}").contains("kalp_dev_key_secret"),
            "secrets never print"
        );
    }

    #[test]
    fn production_refuses_development_secrets_and_plain_http() {
        let production = |extra: &[(&str, &str)]| {
            let mut overrides: Vec<(&str, String)> = vec![
                ("environment", "production".into()),
                ("server.public_url", "https://credits.kalp.studio".into()),
                ("razorpay.key_id", "rzp_live_Abcdefghijklmn".into()),
                (
                    "razorpay.key_secret",
                    "live-secret-from-the-dashboard".into(),
                ),
                ("razorpay.webhook_secret", "live-webhook-secret".into()),
                (
                    "gst.seller_legal_name",
                    "Kalp Studio Private Limited".into(),
                ),
                (
                    "gst.seller_address",
                    "Office 4, Andheri East, Mumbai".into(),
                ),
                ("gst.seller_gstin", "29AAGCB7383J1Z4".into()),
                ("gst.seller_state_code", "29".into()),
                (
                    "email.smtp_url",
                    "smtps://billing:password@smtp.kalp.studio:465".into(),
                ),
                ("email.from", "Kalp Studio <billing@kalp.studio>".into()),
            ];
            for (k, v) in extra {
                overrides.retain(|(key, _)| key != k);
                overrides.push((k, v.to_string()));
            }
            Settings::with_overrides(&overrides)
        };
        let good = production(&[]).expect("a production configuration");
        assert_eq!(good.environment, Environment::Production);
        assert!(good.served_over_https());
        for (key, value, named) in [
            (
                "razorpay.key_secret",
                "kalp_dev_key_secret_not_for_production",
                "KALP__RAZORPAY__KEY_SECRET",
            ),
            (
                "razorpay.webhook_secret",
                "kalp_dev_webhook_secret",
                "KALP__RAZORPAY__WEBHOOK_SECRET",
            ),
            (
                "razorpay.key_id",
                "rzp_test_KalpDevKey0001",
                "KALP__RAZORPAY__KEY_ID",
            ),
            (
                "server.public_url",
                "http://credits.kalp.studio",
                "KALP__SERVER__PUBLIC_URL",
            ),
            (
                "gst.seller_legal_name",
                "Kalp Studio Private Limited (development)",
                "KALP__GST__SELLER_LEGAL_NAME",
            ),
            ("email.smtp_url", "", "KALP__EMAIL__SMTP_URL"),
            (
                "email.from",
                "Kalp Studio <billing@kalp.test>",
                "KALP__EMAIL__FROM",
            ),
            (
                "benchmark.durable_baseline_url",
                "sqlite://baseline.db?mode=rwc",
                "KALP__BENCHMARK__DURABLE_BASELINE_URL",
            ),
        ] {
            let err = production(&[(key, value)]).expect_err(key).to_string();
            assert!(err.contains(named), "{key}: {err}");
            assert!(
                !err.contains(value)
                    || value.is_empty()
                    || key == "server.public_url"
                    || key.starts_with("gst.")
                    || key == "email.from"
                    || key.starts_with("benchmark."),
                "{err}"
            );
        }
        let dev = Settings::with_overrides(&[]).expect("development accepts the defaults");
        assert_eq!(dev.environment, Environment::Development);
        assert!(!dev.served_over_https());
    }

    #[test]
    fn the_seller_on_gst_documents_is_checked() {
        for (overrides, named) in [
            (
                vec![("gst.seller_gstin", "27AAPFU0939F1ZW")],
                "KALP__GST__SELLER_GSTIN",
            ),
            (
                vec![("gst.seller_state_code", "29")],
                "KALP__GST__SELLER_STATE_CODE",
            ),
            (
                vec![("gst.receipt_prefix", "KSTD")],
                "KALP__GST__RECEIPT_PREFIX",
            ),
            (
                vec![("gst.refund_prefix", "KS")],
                "KALP__GST__REFUND_PREFIX",
            ),
            (vec![("gst.rate_bps", "-1")], "KALP__GST__RATE_BPS"),
        ] {
            let overrides: Vec<(&str, String)> =
                overrides.iter().map(|(k, v)| (*k, v.to_string())).collect();
            let err = Settings::with_overrides(&overrides)
                .expect_err(named)
                .to_string();
            assert!(err.contains(named), "{named}: {err}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        for (key, value, named) in [
            ("server.public_url", "ftp://x", "KALP__SERVER__PUBLIC_URL"),
            ("database.url", "mysql://x", "KALP__DATABASE__URL"),
            ("razorpay.key_secret", "", "KALP__RAZORPAY__KEY_SECRET"),
            ("razorpay.key_id", "rzp test", "KALP__RAZORPAY__KEY_ID"),
            (
                "billing.paise_per_credit",
                "0",
                "KALP__BILLING__PAISE_PER_CREDIT",
            ),
            (
                "billing.min_topup_paise",
                "50",
                "KALP__BILLING__MIN_TOPUP_PAISE",
            ),
            (
                "razorpay.receipt_prefix",
                "a-very-long-staging-prefix",
                "KALP__RAZORPAY__RECEIPT_PREFIX",
            ),
            (
                "razorpay.receipt_prefix",
                "stg/1",
                "KALP__RAZORPAY__RECEIPT_PREFIX",
            ),
        ] {
            let err = Settings::with_overrides(&[(key, value.to_string())]).expect_err(key);
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        let err = Settings::with_overrides(&[("server.port", "eighty".into())]).expect_err("port");
        assert!(err.to_string().contains("port"), "{err}");
    }
}
