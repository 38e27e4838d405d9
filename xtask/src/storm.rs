//! `cargo xtask storm`: the app against floods, on a release build. Two storms, one after the
//! other, while `/healthz` is asked every 100 ms and the app's memory sampled:
//!
//! - a log-in storm: thousands of log-ins for made-up accounts, hundreds at once, from hundreds
//!   of addresses (the app trusts `X-Forwarded-For` for this run), so the per-address limits
//!   don't absorb it and the password hashing bound is what holds;
//! - a slow-client storm: a thousand connections that send a request's first bytes and then
//!   trickle one byte every two seconds, never finishing their headers.
//!
//! Goals: peak memory (VmHWM) under 300 MB and `/healthz` answered within a second throughout.
//! The figures go to stdout and `target/bench/storm.json`; a missed goal exits non-zero. Not part
//! of `cargo test`: it is a load check, and it takes about a minute.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::{
    html::csrf_of,
    stack::{Server, build_release, free_port, release_bin, rss_kb, workspace},
};

const PEAK_RSS_GOAL_MB: f64 = 300.0;
const HEALTHZ_GOAL: Duration = Duration::from_secs(1);
/// The header-read timeout the app runs with here (its default is 10 s).
const HEADER_TIMEOUT_SECS: u64 = 5;

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask storm` takes no arguments, got {arg:?}");
    }
    build_release()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(storm())
}

/// What the watchers saw.
#[derive(Default)]
struct Watch {
    healthz_max_ms: AtomicU64,
    healthz_failures: AtomicU64,
    healthz_checks: AtomicU64,
    peak_rss_kb: AtomicU64,
}

async fn storm() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("kalp-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (port, fake_port) = (free_port()?, free_port()?);
    let app = format!("http://127.0.0.1:{port}");
    let database = format!("sqlite://{}?mode=rwc", dir.join("storm.db").display());
    let _fake = Server(
        Command::new(release_bin("fake-razorpay"))
            .args(["--listen", &format!("127.0.0.1:{fake_port}")])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .context("starting fake-razorpay")?,
    );
    let web = Server(
        Command::new(release_bin("web"))
            .env("KALP__SERVER__PORT", port.to_string())
            .env("KALP__SERVER__PUBLIC_URL", &app)
            .env("KALP__DATABASE__URL", &database)
            .env(
                "KALP__RAZORPAY__BASE_URL",
                format!("http://127.0.0.1:{fake_port}"),
            )
            .env("KALP__SERVER__CLIENT_IP_HEADER", "x-forwarded-for")
            .env(
                "KALP__SERVER__HEADER_READ_TIMEOUT_SECS",
                HEADER_TIMEOUT_SECS.to_string(),
            )
            .env("KALP_CONFIG_DIR", "/nonexistent")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .context("starting the web app")?,
    );
    let pid = web.0.id();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the web app did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_mb = rss_kb(pid, "VmRSS:") as f64 / 1024.0;
    println!("storm: the app (release) is up, {idle_mb:.1} MB resident");

    let watch = Arc::new(Watch::default());
    let done = Arc::new(AtomicBool::new(false));
    let watchers = spawn_watchers(&app, pid, watch.clone(), done.clone());

    let t = Instant::now();
    let logins = login_storm(&app).await?;
    let login_secs = t.elapsed().as_secs_f64();
    let after_logins_mb = rss_kb(pid, "VmHWM:") as f64 / 1024.0;
    println!(
        "  log-in storm: {} log-ins in {login_secs:.1} s: {} checked (401), {} turned away busy (503), {} over a limit (429), {} other; peak so far {after_logins_mb:.1} MB",
        logins.total, logins.checked, logins.busy, logins.limited, logins.other
    );
    let t = Instant::now();
    let slow = slow_client_storm(port).await?;
    let slow_secs = t.elapsed().as_secs_f64();
    println!(
        "  slow-client storm: {} connections trickling headers; {} closed by the app within {:.1} s",
        slow.opened, slow.closed, slow_secs
    );
    done.store(true, Ordering::SeqCst);
    for w in watchers {
        let _ = w.await;
    }
    let peak_mb = watch
        .peak_rss_kb
        .load(Ordering::SeqCst)
        .max(rss_kb(pid, "VmHWM:")) as f64
        / 1024.0;
    let healthz_max = watch.healthz_max_ms.load(Ordering::SeqCst);
    let healthz_failures = watch.healthz_failures.load(Ordering::SeqCst);
    let healthz_checks = watch.healthz_checks.load(Ordering::SeqCst);
    let after_mb = rss_kb(pid, "VmRSS:") as f64 / 1024.0;
    println!(
        "  peak memory {peak_mb:.1} MB (goal < {PEAK_RSS_GOAL_MB} MB); {after_mb:.1} MB after; /healthz: {healthz_checks} checks, slowest {healthz_max} ms, {healthz_failures} failed (goal: every one within {} ms)",
        HEALTHZ_GOAL.as_millis()
    );
    let results = json!({
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": peak_mb,
        "after_rss_mb": after_mb,
        "healthz": {"checks": healthz_checks, "max_ms": healthz_max, "failures": healthz_failures},
        "login_storm": {"logins": logins.total, "seconds": login_secs, "peak_rss_mb": after_logins_mb, "checked": logins.checked,
                        "busy": logins.busy, "limited": logins.limited, "other": logins.other},
        "slow_client_storm": {"connections": slow.opened, "closed": slow.closed, "seconds": slow_secs},
    });
    let out = workspace().join("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("storm.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut missed = Vec::new();
    if peak_mb >= PEAK_RSS_GOAL_MB {
        missed.push(format!("peak memory {peak_mb:.1} MB"));
    }
    if healthz_failures > 0 || healthz_max > HEALTHZ_GOAL.as_millis() as u64 {
        missed.push(format!(
            "/healthz slowest {healthz_max} ms, {healthz_failures} failed"
        ));
    }
    if slow.closed < slow.opened {
        missed.push(format!(
            "{} slow connections were never closed",
            slow.opened - slow.closed
        ));
    }
    if logins.other > 0 {
        missed.push(format!("{} log-ins got an unexpected answer", logins.other));
    }
    if missed.is_empty() {
        println!("storm: every goal met");
        Ok(())
    } else {
        bail!("storm: goals missed: {}", missed.join("; "))
    }
}

fn spawn_watchers(
    app: &str,
    pid: u32,
    watch: Arc<Watch>,
    done: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let health = {
        let (app, watch, done) = (app.to_string(), watch.clone(), done.clone());
        tokio::spawn(async move {
            // A client of its own, as a load balancer's health check would be.
            let Ok(client) = reqwest::Client::builder().timeout(HEALTHZ_GOAL * 3).build() else {
                return;
            };
            while !done.load(Ordering::SeqCst) {
                let t = Instant::now();
                let ok = client
                    .get(format!("{app}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let ms = t.elapsed().as_millis() as u64;
                watch.healthz_checks.fetch_add(1, Ordering::SeqCst);
                watch.healthz_max_ms.fetch_max(ms, Ordering::SeqCst);
                if !ok {
                    watch.healthz_failures.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let memory = tokio::spawn(async move {
        while !done.load(Ordering::SeqCst) {
            watch
                .peak_rss_kb
                .fetch_max(rss_kb(pid, "VmHWM:"), Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    vec![health, memory]
}

#[derive(Default)]
struct Logins {
    total: u64,
    checked: u64,
    busy: u64,
    limited: u64,
    other: u64,
}

/// 3,000 log-ins for made-up accounts (`KALP_STORM_LOGINS` to change), 300 at a time, from 500
/// addresses.
async fn login_storm(app: &str) -> Result<Logins> {
    let logins_total: usize = std::env::var("KALP_STORM_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    const AT_ONCE: usize = 300;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(AT_ONCE)
        .build()?;
    let page = client
        .get(format!("{app}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&page)?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut tasks = Vec::with_capacity(logins_total);
    for i in 0..logins_total {
        let permit = semaphore.clone().acquire_owned().await?;
        let (client, app, csrf) = (client.clone(), app.to_string(), csrf.clone());
        tasks.push(tokio::spawn(async move {
            let status = client
                .post(format!("{app}/login"))
                .header(
                    "x-forwarded-for",
                    format!("10.{}.{}.{}", i % 5, (i / 5) % 100, 1 + i % 7),
                )
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", &format!("nobody{i}@storm.example.com")),
                    ("password", "not the password at all"),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            drop(permit);
            status
        }));
    }
    let mut logins = Logins::default();
    for task in tasks {
        logins.total += 1;
        match task.await? {
            401 => logins.checked += 1,
            503 => logins.busy += 1,
            429 => logins.limited += 1,
            _ => logins.other += 1,
        }
    }
    Ok(logins)
}

struct Slow {
    opened: u64,
    closed: u64,
}

/// 1,000 connections that start a request and trickle a header byte every 2 s; counts those the
/// app closes.
async fn slow_client_storm(port: u16) -> Result<Slow> {
    const CONNECTIONS: u64 = 1_000;
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let closed = closed.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            };
            if stream
                .write_all(b"GET /dashboard HTTP/1.1\r\nHost: storm\r\nX-Slow: ")
                .await
                .is_err()
            {
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            let give_up = Instant::now() + Duration::from_secs(HEADER_TIMEOUT_SECS * 4);
            while Instant::now() < give_up {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if stream.write_all(b"x").await.is_err() {
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(Slow {
        opened: CONNECTIONS,
        closed: closed.load(Ordering::SeqCst),
    })
}
