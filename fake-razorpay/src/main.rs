//! `cargo run -p fake-razorpay -- [flags]`: Razorpay on your own machine.

use std::{process::ExitCode, time::Duration};

use fake_razorpay::{FakeSettings, Faults};
use razorpay::Secret;

const USAGE: &str = "usage: fake-razorpay [flags]   (each flag also reads FAKE_RAZORPAY_<NAME>)

  --listen ADDR:PORT            where to listen (default 127.0.0.1:9010)
  --key-id ID                   API key id (default rzp_test_KalpDevKey0001)
  --key-secret SECRET           API key secret
  --webhook-url URL             where webhooks go (default: none)
  --webhook-secret SECRET       webhook signing secret
  --webhook-backoff-ms MS       first retry delay, doubling after each failure (default 2000)
  --webhook-max-attempts N      attempts per delivery (default 16)
faults (switchable later with POST /_fake/faults):
  --webhook-duplicates N        extra deliveries of every event
  --webhook-delay-ms MS         delay before the first delivery
  --webhook-reorder             deliver a payment's events in reverse order
  --webhooks-before-callback    deliver webhooks before answering the browser
  --webhook-fail-first N        first N attempts of each delivery fail
  --api-error-percent P         share of /v1 calls answered 500
  --api-timeout-percent P       share of /v1 calls that hang first
  --api-timeout-ms MS           how long they hang (default 30000)
  --late-authorization          successes are reported failed, authorised later
  --late-authorization-delay-ms MS   when (0: on POST /_fake/payments/{id}/authorize)
  --close-tab                   payments go through, the callback never comes
  --manual-capture              payments stop at authorized; nobody but the merchant captures
  --capture-window-ms MS        authorised payments not captured within MS are refunded (0: never)
  --pending-ms MS               payments stay created this long before the bank answers
  --pending-outcome O           then: complete (the method's own result) or timeout
  --refund-outcome O            refunds (answered pending) become processed, stay pending, or failed
  --refund-delay-ms MS          how long refunds stay pending first (default 0)
  --no-failure-callback         failed attempts post nothing back; the customer stays to retry";

struct Args {
    pairs: Vec<(String, Option<String>)>,
}

const SWITCHES: &[&str] = &[
    "webhook-reorder",
    "webhooks-before-callback",
    "late-authorization",
    "close-tab",
    "manual-capture",
    "no-failure-callback",
];

impl Args {
    fn parse() -> Result<Args, String> {
        let mut pairs = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            if name == "help" {
                return Err(String::new());
            }
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None if SWITCHES.contains(&name) => (name.to_string(), None),
                None => (
                    name.to_string(),
                    Some(args.next().ok_or(format!("--{name} needs a value"))?),
                ),
            };
            pairs.push((name, value));
        }
        Ok(Args { pairs })
    }

    /// The flag's value, else the environment's (`FAKE_RAZORPAY_WEBHOOK_URL` for `--webhook-url`).
    fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().unwrap_or_else(|| "true".into()))
            .or_else(|| {
                std::env::var(format!(
                    "FAKE_RAZORPAY_{}",
                    name.replace('-', "_").to_uppercase()
                ))
                .ok()
            })
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: {v:?} is not a number")),
            None => Ok(default),
        }
    }

    /// One of an enum's snake_case names (`--refund-outcome failed`).
    fn choice<T: serde::de::DeserializeOwned>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            Some(v) => serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| format!("--{name}: {v:?} is not one of the allowed values")),
            None => Ok(default),
        }
    }

    fn switch(&self, name: &str) -> Result<bool, String> {
        match self.get(name).as_deref() {
            None | Some("false" | "0" | "") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(v) => Err(format!("--{name}: {v:?} is not true or false")),
        }
    }

    fn check_known(&self) -> Result<(), String> {
        const KNOWN: &[&str] = &[
            "listen",
            "key-id",
            "key-secret",
            "webhook-url",
            "webhook-secret",
            "webhook-backoff-ms",
            "webhook-max-attempts",
            "webhook-duplicates",
            "webhook-delay-ms",
            "webhook-reorder",
            "webhooks-before-callback",
            "webhook-fail-first",
            "api-error-percent",
            "api-timeout-percent",
            "api-timeout-ms",
            "late-authorization",
            "late-authorization-delay-ms",
            "close-tab",
            "manual-capture",
            "capture-window-ms",
            "pending-ms",
            "pending-outcome",
            "refund-outcome",
            "refund-delay-ms",
            "no-failure-callback",
        ];
        match self
            .pairs
            .iter()
            .find(|(n, _)| !KNOWN.contains(&n.as_str()))
        {
            Some((n, _)) => Err(format!("unknown flag --{n}")),
            None => Ok(()),
        }
    }
}

fn configure(args: &Args) -> Result<(String, FakeSettings, Faults), String> {
    args.check_known()?;
    let defaults = FakeSettings::default();
    let settings = FakeSettings {
        key_id: args.get("key-id").unwrap_or(defaults.key_id),
        key_secret: args
            .get("key-secret")
            .map(Secret::new)
            .unwrap_or(defaults.key_secret),
        webhook_url: args.get("webhook-url").filter(|u| !u.is_empty()),
        webhook_secret: args
            .get("webhook-secret")
            .map(Secret::new)
            .unwrap_or(defaults.webhook_secret),
        webhook_backoff: Duration::from_millis(args.number("webhook-backoff-ms", 2_000)?),
        webhook_max_attempts: args.number("webhook-max-attempts", 16)?,
        ..defaults
    };
    let d = Faults::default();
    let faults = Faults {
        webhook_duplicates: args.number("webhook-duplicates", d.webhook_duplicates)?,
        webhook_delay_ms: args.number("webhook-delay-ms", d.webhook_delay_ms)?,
        webhook_reorder: args.switch("webhook-reorder")?,
        webhooks_before_callback: args.switch("webhooks-before-callback")?,
        webhook_fail_first: args.number("webhook-fail-first", d.webhook_fail_first)?,
        api_error_percent: args
            .number("api-error-percent", d.api_error_percent)?
            .min(100),
        api_timeout_percent: args
            .number("api-timeout-percent", d.api_timeout_percent)?
            .min(100),
        api_timeout_ms: args.number("api-timeout-ms", d.api_timeout_ms)?,
        late_authorization: args.switch("late-authorization")?,
        late_authorization_delay_ms: args
            .number("late-authorization-delay-ms", d.late_authorization_delay_ms)?,
        close_tab: args.switch("close-tab")?,
        manual_capture: args.switch("manual-capture")?,
        capture_window_ms: args.number("capture-window-ms", d.capture_window_ms)?,
        pending_ms: args.number("pending-ms", d.pending_ms)?,
        pending_outcome: args.choice("pending-outcome", d.pending_outcome)?,
        refund_outcome: args.choice("refund-outcome", d.refund_outcome)?,
        refund_delay_ms: args.number("refund-delay-ms", d.refund_delay_ms)?,
        failure_callback: !args.switch("no-failure-callback")?,
    };
    let listen = args
        .get("listen")
        .unwrap_or_else(|| "127.0.0.1:9010".into());
    Ok((listen, settings, faults))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,fake_razorpay=info".into()),
        )
        .init();
    let (listen, settings, faults) = match Args::parse().and_then(|a| configure(&a)) {
        Ok(config) => config,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("fake-razorpay: {message}\n");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "fake-razorpay: cannot listen on {listen}: {e} (is another process using the port? pass --listen)"
            );
            return ExitCode::FAILURE;
        }
    };
    let webhook = settings
        .webhook_url
        .clone()
        .unwrap_or_else(|| "(none)".into());
    let running = match fake_razorpay::serve_on(listener, settings, faults).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-razorpay: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "fake-razorpay on {} (dashboard {}/_fake/, webhooks to {webhook})",
        running.url(),
        running.url()
    );
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping");
    drop(running);
    ExitCode::SUCCESS
}
