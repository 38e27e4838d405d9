//! `web doctor`: checks a deployment's configuration before it goes live and says in plain
//! words what to fix. The settings and the environment's rules, the database and its
//! migrations, Razorpay's credentials (one harmless authenticated call), the webhook secret,
//! and whether the public URL is https and reaches this app. It prints the webhook URL and the
//! events to enable in Razorpay's dashboard.

use std::time::Duration;

use razorpay::wire::ListQuery;

use crate::{
    configuration::{Environment, Settings},
    services::open_ledger,
    store,
};

/// The webhook events the app handles: enable these in Razorpay's dashboard.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "order.paid",
    "refund.created",
    "refund.processed",
    "refund.failed",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Fine(String),
    /// Works now, but not as production needs it.
    Warning(String),
    /// Must be fixed.
    Problem(String),
}

#[derive(Debug)]
pub struct DoctorReport {
    pub findings: Vec<Finding>,
    pub webhook_url: String,
}

impl DoctorReport {
    pub fn healthy(&self) -> bool {
        !self
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Problem(_)))
    }

    pub fn problems(&self) -> Vec<&str> {
        self.findings
            .iter()
            .filter_map(|f| match f {
                Finding::Problem(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl std::fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for finding in &self.findings {
            match finding {
                Finding::Fine(m) => writeln!(f, "ok       {m}")?,
                Finding::Warning(m) => writeln!(f, "warning  {m}")?,
                Finding::Problem(m) => writeln!(f, "PROBLEM  {m}")?,
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "Webhook URL for Razorpay's dashboard: {}",
            self.webhook_url
        )?;
        writeln!(f, "Events to enable: {}", WEBHOOK_EVENTS.join(", "))?;
        writeln!(
            f,
            "Secret: the value of KALP__RAZORPAY__WEBHOOK_SECRET (never shown here)."
        )?;
        write!(
            f,
            "{}",
            if self.healthy() {
                "doctor: ready to go"
            } else {
                "doctor: fix the problems above"
            }
        )
    }
}

pub async fn examine(settings: &Settings) -> DoctorReport {
    let mut findings = Vec::new();
    environment(settings, &mut findings);
    database(settings, &mut findings).await;
    razorpay_credentials(settings, &mut findings).await;
    if settings.razorpay.webhook_secret.expose().trim().is_empty() {
        findings.push(Finding::Problem(
            "the webhook secret is not set: set KALP__RAZORPAY__WEBHOOK_SECRET to the secret you enter in Razorpay's dashboard".into(),
        ));
    } else {
        findings.push(Finding::Fine("the webhook secret is set".into()));
    }
    public_url(settings, &mut findings).await;
    smtp(settings, &mut findings).await;
    DoctorReport {
        findings,
        webhook_url: format!(
            "{}/webhooks/razorpay",
            settings.server.public_url.trim_end_matches('/')
        ),
    }
}

/// The SMTP server answers (the URL itself is never printed: it may hold a password).
async fn smtp(settings: &Settings, findings: &mut Vec<Finding>) {
    match crate::emails::mailer::Mailer::from_settings(&settings.email) {
        Ok(None) => findings.push(Finding::Warning(
            "no SMTP server is set: emails (receipts, password resets) wait in the outbox; set KALP__EMAIL__SMTP_URL".into(),
        )),
        Ok(Some(mailer)) => match mailer.check_connection().await {
            Ok(()) => findings.push(Finding::Fine(format!(
                "the SMTP server answers; emails go out from {}",
                settings.email.from
            ))),
            Err(e) => findings.push(Finding::Problem(format!(
                "the SMTP server cannot be reached or refused us ({e}): check KALP__EMAIL__SMTP_URL (host, port, user and password) and the network"
            ))),
        },
        Err(e) => findings.push(Finding::Problem(e.to_string())),
    }
}

fn environment(settings: &Settings, findings: &mut Vec<Finding>) {
    match settings.environment {
        Environment::Production => findings.push(Finding::Fine(
            "environment: production (development secrets and plain http are refused)".into(),
        )),
        Environment::Development => {
            findings.push(Finding::Fine("environment: development".into()));
            if let Err(e) = settings.validate_production() {
                findings.push(Finding::Warning(format!(
                    "production would refuse this configuration: {}",
                    e.0
                )));
            }
        }
    }
}

async fn database(settings: &Settings, findings: &mut Vec<Finding>) {
    // Opening applies pending migrations, as the app does when it starts.
    match open_ledger(settings).await {
        Err(e) => findings.push(Finding::Problem(format!(
            "the database cannot be opened: {e:#} (check KALP__DATABASE__URL)"
        ))),
        Ok(ledger) => {
            findings.push(Finding::Fine(format!(
                "database {} answers",
                ledger::redact_url(&settings.database.url)
            )));
            match store::migrations::missing(&ledger.reads()).await {
                Ok(missing) if missing.is_empty() => {
                    findings.push(Finding::Fine("migrations are current".into()))
                }
                Ok(missing) => findings.push(Finding::Problem(format!(
                    "migrations not applied: {}",
                    missing.join(", ")
                ))),
                Err(e) => findings.push(Finding::Problem(format!(
                    "cannot read the applied migrations: {e}"
                ))),
            }
        }
    }
}

async fn razorpay_credentials(settings: &Settings, findings: &mut Vec<Finding>) {
    let r = &settings.razorpay;
    let mut config =
        razorpay::ClientConfig::new(r.base_url.clone(), r.key_id.clone(), r.key_secret.clone());
    config.request_timeout = Duration::from_secs(10);
    let client = match razorpay::Client::new(config) {
        Ok(client) => client,
        Err(e) => {
            findings.push(Finding::Problem(format!(
                "cannot build the Razorpay client: {e}"
            )));
            return;
        }
    };
    let mode = if r.key_id.starts_with("rzp_live_") {
        "live"
    } else if r.key_id.starts_with("rzp_test_") {
        "test"
    } else {
        "unknown (Razorpay's key ids start rzp_test_ or rzp_live_)"
    };
    // Listing one payment reads nothing of consequence and needs valid credentials.
    let query = ListQuery {
        count: Some(1),
        ..ListQuery::default()
    };
    match client.list_payments(&query).await {
        Ok(_) => findings.push(Finding::Fine(format!(
            "Razorpay at {} accepts key {} ({mode} mode)",
            r.base_url, r.key_id
        ))),
        Err(razorpay::Error::Authentication(_)) => findings.push(Finding::Problem(format!(
            "Razorpay refused key {} and its secret (401): check KALP__RAZORPAY__KEY_ID and KALP__RAZORPAY__KEY_SECRET; test and live keys are different pairs",
            r.key_id
        ))),
        Err(e) if e.is_transient() => findings.push(Finding::Problem(format!(
            "Razorpay at {} could not be reached or failed ({e}): check KALP__RAZORPAY__BASE_URL and the network, then run doctor again",
            r.base_url
        ))),
        Err(e) => findings.push(Finding::Problem(format!(
            "Razorpay refused the check: {e}"
        ))),
    }
}

async fn public_url(settings: &Settings, findings: &mut Vec<Finding>) {
    let url = settings.server.public_url.trim_end_matches('/');
    if url.starts_with("https://") {
        findings.push(Finding::Fine(format!("the public URL {url} is https")));
    } else {
        findings.push(Finding::Warning(format!(
            "the public URL {url} is not https: fine for development; Razorpay's callbacks and production need https"
        )));
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            findings.push(Finding::Problem(format!(
                "cannot build an HTTP client: {e}"
            )));
            return;
        }
    };
    match client.get(format!("{url}/healthz")).send().await {
        Ok(r) if r.status().is_success() => findings.push(Finding::Fine(format!(
            "{url}/healthz answers: the public URL reaches this app"
        ))),
        Ok(r) => findings.push(Finding::Problem(format!(
            "{url}/healthz answered {}: the public URL reaches something, but not a healthy Kalp Credits",
            r.status()
        ))),
        Err(e) => findings.push(Finding::Problem(format!(
            "{url}/healthz does not answer ({e}): start the app, and check that KALP__SERVER__PUBLIC_URL points at it"
        ))),
    }
}
