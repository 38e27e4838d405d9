//! `cargo xtask bench --scale`, the app's half (issue 21): the same app and fake as the other
//! figures, over a database preloaded with years of data by `web preload-scale`. Charges before
//! and after the preload in the same run, then the customer with 500,000 transfers: the whole
//! Credit History as CSV (time and the app's memory), the Dashboard, and one reconciliation pass
//! over 10,000 top-ups waiting for a payment.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{
    bench_common::{
        AppDatabase, AppUnderTest, Figure, PASSWORD, browser, charges, create_api_key, figure,
        log_in, per_sec, percentile,
    },
    stack::rss_kb,
};

/// The customer who owns the preloaded wallet with 500,000 transfers.
const SCALE_CUSTOMER: &str = "scale@example.com";

/// Charges before each timed run: the connections opened and the statements prepared.
const WARM_UP: Duration = Duration::from_secs(2);

/// Top-ups waiting for a payment when reconciliation runs.
const PENDING_TOPUPS: &str = "10000";

pub(crate) async fn scale_figures(seconds: Duration, db: &AppDatabase) -> Result<Vec<Figure>> {
    let backend = db.backend;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let under_test = AppUnderTest::new(db)?;
    let app = under_test.app.clone();
    let api = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let mut out = Vec::new();
    let mut timings = Vec::new();

    // Charges on the empty database first: the baseline of `scale.charges`, same run.
    under_test.run(&["seed-demo", "bench@example.com", PASSWORD, "900000000"])?;
    let _fake = under_test.start_fake()?;
    let empty = {
        let _web = under_test.serve().await?;
        let client = browser()?;
        log_in(&client, &app, "bench@example.com").await?;
        let key = create_api_key(&client, &app).await?;
        charges(&api, &app, &key, WARM_UP, "warm-empty").await;
        let (ops, elapsed, _) = charges(&api, &app, &key, seconds, "empty").await;
        per_sec(ops, elapsed)
    };

    println!("{backend}: preloading the app's database…");
    let t0 = Instant::now();
    under_test.run(&["preload-scale", SCALE_CUSTOMER, PASSWORD, PENDING_TOPUPS])?;
    timings.push(("preload", t0.elapsed()));
    out.push(figure(
        "scale.app.preload.seconds",
        backend,
        "s",
        t0.elapsed().as_secs_f64(),
        None,
        "the ledger's scale shape, its big wallet's customer, 10,000 pending top-ups with orders",
    ));

    let web = under_test.serve().await?;
    let pid = web.0.id();
    let customer = browser()?;
    log_in(&customer, &app, SCALE_CUSTOMER).await?;
    let key = create_api_key(&customer, &app).await?;
    charges(&api, &app, &key, WARM_UP, "warm-scale").await;
    let t0 = Instant::now();
    let (ops, elapsed, lat) = charges(&api, &app, &key, seconds, "scale").await;
    timings.push(("charges", t0.elapsed()));
    out.push(figure(
        "scale.charges",
        backend,
        "charges/s",
        per_sec(ops, elapsed),
        Some(empty),
        "64 connections to the 500,000-transfer wallet; baseline: the same on the empty \
         database, same run; goal: ratio ≥ 0.8",
    ));
    out.push(figure(
        "scale.charges.p99",
        backend,
        "ms",
        percentile(&lat, 0.99),
        None,
        "",
    ));

    // The whole history as CSV, read as it streams; the app's memory sampled on every chunk.
    let t0 = Instant::now();
    let idle = rss_kb(pid, "VmRSS:");
    let mut peak = idle;
    let mut response = customer
        .get(format!("{app}/billing/history.csv"))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("the CSV export answered {}", response.status());
    }
    let mut lines = 0u64;
    while let Some(chunk) = response.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        peak = peak.max(rss_kb(pid, "VmRSS:"));
    }
    let csv = t0.elapsed();
    timings.push(("csv", csv));
    if lines < 500_000 {
        bail!("the CSV export held {lines} lines, not the whole history");
    }
    out.push(figure(
        "scale.csv.seconds",
        backend,
        "s",
        csv.as_secs_f64(),
        None,
        &format!("{} rows, streamed; goal: under 5 s", lines - 1),
    ));
    out.push(figure(
        "scale.csv.peak_rss_mb",
        backend,
        "MB",
        peak.saturating_sub(idle) as f64 / 1024.0,
        None,
        "the app's RSS rise while it streams; goal: under 32 MB",
    ));

    // The Dashboard's 14 days now hold the charges just made (a heavy day of sends).
    let t0 = Instant::now();
    let dashboard = p99_of_pages(&customer, &format!("{app}/dashboard")).await?;
    timings.push(("dashboard", t0.elapsed()));
    out.push(figure(
        "scale.dashboard.p99_ms",
        backend,
        "ms",
        dashboard,
        None,
        &format!("usage by day over 14 days holding {ops} charges, over HTTP; goal: under 20 ms"),
    ));
    let first_page = p99_of_pages(&customer, &format!("{app}/billing/history")).await?;
    out.push(figure(
        "scale.history.page.http.p99_ms",
        backend,
        "ms",
        first_page,
        None,
        "Credit History's first page over HTTP (the ledger's read alone: scale.history.*)",
    ));
    drop(web);

    // One reconciliation pass, as the command operators run, over the pending top-ups.
    let t0 = Instant::now();
    let output = under_test
        .web(&["reconcile"])
        .env("KALP__RECONCILE__MIN_AGE_SECS", "0")
        .output()?;
    let reconcile = t0.elapsed();
    timings.push(("reconcile", reconcile));
    let said = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("reconciliation failed: {said}");
    }
    let checked = said
        .split(|c: char| !c.is_ascii_alphanumeric())
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == "checked")
        .and_then(|w| w[1].parse::<u64>().ok())
        .context("reconciliation did not say how many top-ups it checked")?;
    out.push(figure(
        "scale.reconcile.seconds",
        backend,
        "s",
        reconcile.as_secs_f64(),
        None,
        &format!("one pass: {checked} top-ups checked with the fake; goal: under 30 s"),
    ));
    for (part, took) in timings {
        println!("{backend}: {part} took {took:.1?}");
    }
    Ok(out)
}

/// The p99 in milliseconds of 200 loads of the page at `url`, each read to its end.
async fn p99_of_pages(client: &reqwest::Client, url: &str) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let page = client.get(url).send().await?;
        if !page.status().is_success() {
            bail!("{url} answered {}", page.status());
        }
        page.bytes().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 0.99))
}
