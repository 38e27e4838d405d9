//! What the app's benchmarks share: a figure and its statistics, the app and the fake started
//! on ports of their own over a database, and the requests every measurement makes (log in,
//! create an API key, charge).

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::{
    html::csrf_of,
    stack::{Server, release_bin},
};

/// The password of every account a benchmark makes.
pub(crate) const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Figure {
    pub name: String,
    pub backend: String,
    pub unit: String,
    pub value: f64,
    pub baseline: Option<f64>,
    pub ratio: Option<f64>,
    pub note: String,
}

pub(crate) fn per_sec(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

pub(crate) fn figure(
    name: &str,
    backend: &str,
    unit: &str,
    value: f64,
    baseline: Option<f64>,
    note: &str,
) -> Figure {
    Figure {
        name: name.into(),
        backend: backend.into(),
        unit: unit.into(),
        value,
        baseline,
        ratio: baseline.filter(|b| *b > 0.0).map(|b| value / b),
        note: note.into(),
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}

/// Latencies of `tasks` concurrent clients calling `request` for `for_how_long`.
pub(crate) async fn load<F, Fut>(
    tasks: usize,
    for_how_long: Duration,
    request: F,
) -> (u64, Duration, Vec<Duration>)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0;
                while started.elapsed() < for_how_long {
                    let t0 = Instant::now();
                    if request(t, i).await {
                        lat.push(t0.elapsed());
                    }
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    all.sort();
    (all.len() as u64, elapsed, all)
}

/// Where the app under measurement keeps its data: a SQLite file, or a schema of its own in the
/// PostgreSQL database `DATABASE_URL` names.
pub(crate) struct AppDatabase {
    pub backend: &'static str,
    pub url: String,
    pub schema: Option<String>,
    /// The durable baseline's own database (`POST /api/v1/benchmark/durable-append`), on the
    /// same engine: a SQLite file beside the app's, or a schema of its own.
    pub baseline_url: String,
    pub baseline_schema: Option<String>,
}

/// The app and the fake on free ports of their own, over `db`: the web app's settings for one
/// run, for its commands and its server alike.
pub(crate) struct AppUnderTest {
    pub port: u16,
    pub fake_port: u16,
    pub app: String,
    pub fake_url: String,
    database: String,
    schema: String,
    baseline_url: String,
    baseline_schema: String,
}

impl AppUnderTest {
    pub fn new(db: &AppDatabase) -> Result<AppUnderTest> {
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
        };
        let (port, fake_port) = (free()?, free()?);
        Ok(AppUnderTest {
            port,
            fake_port,
            app: format!("http://127.0.0.1:{port}"),
            fake_url: format!("http://127.0.0.1:{fake_port}"),
            database: db.url.clone(),
            schema: db.schema.clone().unwrap_or_default(),
            baseline_url: db.baseline_url.clone(),
            baseline_schema: db.baseline_schema.clone().unwrap_or_default(),
        })
    }

    /// `web ARGS` with this run's settings.
    pub fn web(&self, args: &[&str]) -> Command {
        let mut c = Command::new(release_bin("web"));
        c.args(args)
            .env("KALP__SERVER__PORT", self.port.to_string())
            .env("KALP__SERVER__PUBLIC_URL", &self.app)
            .env("KALP__DATABASE__URL", &self.database)
            .env("KALP__DATABASE__SCHEMA", &self.schema)
            .env("KALP__BENCHMARK__DURABLE_BASELINE_URL", &self.baseline_url)
            .env(
                "KALP__BENCHMARK__DURABLE_BASELINE_SCHEMA",
                &self.baseline_schema,
            )
            .env("KALP__RAZORPAY__BASE_URL", &self.fake_url)
            .env("KALP__USAGE__RATE_PER_SEC", "1000000")
            .env("KALP__USAGE__RATE_BURST", "1000000")
            .env("KALP__USAGE__DEFAULT_ALERT_THRESHOLD", "0")
            // Emails are written (their cost is measured) but not sent during a run.
            .env("KALP__EMAIL__SMTP_URL", "")
            .env("KALP_CONFIG_DIR", "/nonexistent")
            .env("RUST_LOG", "error");
        c
    }

    /// Runs a `web` command to completion.
    pub fn run(&self, args: &[&str]) -> Result<()> {
        if !self.web(args).stdout(Stdio::null()).status()?.success() {
            bail!("web {} failed", args.join(" "));
        }
        Ok(())
    }

    pub fn start_fake(&self) -> Result<Server> {
        Ok(Server(
            Command::new(release_bin("fake-razorpay"))
                .args([
                    "--listen",
                    &format!("127.0.0.1:{}", self.fake_port),
                    "--webhook-url",
                    &format!("{}/webhooks/razorpay", self.app),
                ])
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .spawn()?,
        ))
    }

    /// Starts the app and waits until it and the fake answer.
    pub async fn serve(&self) -> Result<Server> {
        let web = Server(self.web(&[]).stdout(Stdio::null()).spawn()?);
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.fake_port)).is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(web)
    }
}

/// A client that keeps its session cookie and sees redirects as they are.
pub(crate) fn browser() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(128)
        .build()?)
}

/// Creates an API key on the signed-in account's API keys page; its secret.
pub(crate) async fn create_api_key(client: &reqwest::Client, app: &str) -> Result<String> {
    let keys = client
        .get(format!("{app}/api-keys"))
        .send()
        .await?
        .text()
        .await?;
    let page = client
        .post(format!("{app}/api-keys"))
        .form(&[("csrf", csrf_of(&keys)?.as_str()), ("name", "bench")])
        .send()
        .await?
        .text()
        .await?;
    let marker = "data-testid=\"new-key\">";
    let start = page.find(marker).context("no API key")? + marker.len();
    Ok(page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// `method url` with the API key, by 64 connections for `seconds`: how many succeeded (2xx), how
/// long, and their latencies (sorted).
pub(crate) async fn keyed_load(
    api: &reqwest::Client,
    key: &str,
    method: reqwest::Method,
    url: String,
    seconds: Duration,
) -> (u64, Duration, Vec<Duration>) {
    let (api, key) = (api.clone(), key.to_string());
    load(64, seconds, move |_, _| {
        let (request, key) = (api.request(method.clone(), url.clone()), key.clone());
        async move {
            request
                .bearer_auth(key)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
}

/// Durable charges of one credit by 64 connections for `seconds`: how many, how long, and the
/// latencies (sorted).
pub(crate) async fn charges(
    api: &reqwest::Client,
    app: &str,
    key: &str,
    seconds: Duration,
    tag: &str,
) -> (u64, Duration, Vec<Duration>) {
    let (a, k, tag) = (api.clone(), key.to_string(), tag.to_string());
    let url = format!("{app}/api/v1/charges");
    load(64, seconds, move |t, i| {
        let (a, k, url) = (a.clone(), k.clone(), url.clone());
        let idempotency = format!("{tag}-{t}-{i}");
        async move {
            a.post(url)
                .bearer_auth(k)
                .header("Idempotency-Key", idempotency)
                .json(&json!({"service": "email", "quantity": 1}))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await
}

pub(crate) async fn log_in(client: &reqwest::Client, app: &str, email: &str) -> Result<()> {
    let login = client
        .get(format!("{app}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&login)?;
    let answer = client
        .post(format!("{app}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    if answer.status().as_u16() != 303 {
        bail!("could not log in as {email}: {}", answer.status());
    }
    Ok(())
}
