//! Settings from layered sources: the defaults committed in `config/base.toml` (compiled in),
//! then `config/local.toml` if present (not committed), then environment variables `KALP__…`
//! (`KALP__SERVER__PORT`, `KALP__RAZORPAY__KEY_SECRET`, …). A missing or malformed setting stops
//! the app at start with a message that names it.

use std::collections::BTreeMap;

use razorpay::Secret;
use serde::Deserialize;

const BASE: &str = include_str!("../config/base.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub razorpay: RazorpaySettings,
    pub billing: BillingSettings,
    pub prices: PriceSettings,
    pub session: SessionSettings,
    pub reconcile: ReconcileSettings,
    pub usage: UsageSettings,
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
        Ok(())
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
