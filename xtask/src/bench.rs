//! `cargo xtask bench [--quick] [--only ledger|app|journey] [--journeys N] [--scale]`: how fast the ledger and the API are on this machine, each
//! figure beside a baseline measured in the same run (machines are noisy: compare ratios). The
//! ledger's figures come from `crates/ledger/benches/ledger.rs` (SQLite always; PostgreSQL too
//! when `DATABASE_URL` points at one); the app's from release builds of the web app and
//! fake-razorpay, driven over HTTP from here. Writes a table to stdout and
//! `target/bench/results.json`.
//!
//! It stays one file: each figure's workload, its baseline and its report are read together.

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    bench_common::{
        AppDatabase, AppUnderTest, Figure, PASSWORD, browser, charges, create_api_key, figure,
        keyed_load, log_in, per_sec, percentile,
    },
    html::{csrf_of, field, hidden_fields},
    stack::{build_release, release_bin, rss_kb, workspace},
};

struct BenchPlan {
    seconds: Duration,
    /// Top-up journeys to time (200 quick, 1,000 full, or `--journeys N`).
    journeys: u64,
    /// `--only journey`: the journeys and nothing after them, for comparing one change's effect
    /// on the top-up path with more journeys than a quick run times.
    journey_only: bool,
}

/// The ledger's figures (`cargo bench -p ledger`, optimised), then the app's, on release builds.
pub fn run(args: &[String]) -> Result<()> {
    const USAGE: &str = "usage: cargo xtask bench [--quick] [--only ledger|app|journey] [--journeys N] [--scale] | --report";
    // `--scale` measures the ledger and the app on preloaded databases instead of empty ones.
    let mut quick = false;
    let mut scale = false;
    let mut only = None;
    let mut journeys = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            // The report and charts again from the last run's results.json, measuring nothing.
            "--report" => return report_again(),
            "--quick" => quick = true,
            // Years of data (issue 21): the ledger's reads and audit, then the app's.
            "--scale" => scale = true,
            "--only" => match rest.next().map(String::as_str) {
                Some(part @ ("ledger" | "app" | "journey")) => only = Some(part),
                _ => bail!(USAGE),
            },
            "--journeys" => match rest.next().and_then(|n| n.parse::<u64>().ok()) {
                Some(n) if n > 0 => journeys = Some(n),
                _ => bail!(USAGE),
            },
            _ => bail!(USAGE),
        }
    }
    let dir = workspace().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let ledger_json = dir.join("ledger.json");
    let _ = std::fs::remove_file(&ledger_json);
    if only.is_none() || only == Some("ledger") {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(&cargo);
        command
            .current_dir(workspace())
            .args(["bench", "-q", "-p", "ledger", "--bench", "ledger", "--"])
            .arg("--out")
            .arg(&ledger_json);
        if quick {
            command.arg("--quick");
        }
        if scale {
            command.arg("--scale");
        }
        if !command.status()?.success() {
            bail!("the ledger benchmark failed");
        }
    }
    let mut command = Command::new(release_bin("xtask"));
    command.arg("bench-run");
    if quick {
        command.arg("--quick");
    }
    if only == Some("ledger") {
        command.arg("--no-app");
    }
    if scale {
        command.arg("--scale");
    }
    if only == Some("journey") {
        command.arg("--journey-only");
    }
    if let Some(n) = journeys {
        command.arg(format!("--journeys={n}"));
    }
    build_release()?;
    if !command.status()?.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}

/// The app's figures, optimised (`bench-run`, started by [`run`]), reported with the ledger's.
pub fn run_measurements(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let journeys = args
        .iter()
        .find_map(|a| a.strip_prefix("--journeys=")?.parse().ok())
        .unwrap_or(if quick { 200 } else { 1_000 });
    let plan = BenchPlan {
        seconds: Duration::from_secs(if quick { 3 } else { 10 }),
        journeys,
        journey_only: args.iter().any(|a| a == "--journey-only"),
    };
    let started = Instant::now();
    let mut figures: Vec<Figure> =
        match std::fs::read_to_string(workspace().join("target/bench/ledger.json")) {
            Ok(text) => serde_json::from_str(&text)?,
            Err(_) => Vec::new(),
        };
    if !args.iter().any(|a| a == "--no-app") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let dir = std::env::temp_dir().join(format!("kalp-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sqlite = AppDatabase {
            backend: "sqlite",
            url: format!("sqlite://{}?mode=rwc", dir.join("web.db").display()),
            schema: None,
            baseline_url: format!(
                "sqlite://{}?mode=rwc",
                dir.join("durable-baseline.db").display()
            ),
            baseline_schema: None,
        };
        let scale = args.iter().any(|a| a == "--scale");
        let measure = |db: &AppDatabase| {
            if scale {
                runtime.block_on(crate::bench_scale::scale_figures(plan.seconds, db))
            } else {
                runtime.block_on(api_figures(&plan, db))
            }
        };
        figures.extend(measure(&sqlite)?);
        let _ = std::fs::remove_dir_all(&dir);
        // Production runs PostgreSQL: the same figures there, in a schema of this run's own.
        if let Some(url) = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| u.starts_with("postgres"))
        {
            let schema = format!("kalp_bench_{}", std::process::id());
            let baseline_schema = format!("{schema}_baseline");
            let postgres = AppDatabase {
                backend: "postgres",
                url: url.clone(),
                schema: Some(schema.clone()),
                baseline_url: url.clone(),
                baseline_schema: Some(baseline_schema.clone()),
            };
            let measured = measure(&postgres);
            drop_schema(&url, &schema);
            drop_schema(&url, &baseline_schema);
            figures.extend(measured?);
            compare_with_the_ledger(&mut figures);
        }
    }
    report(&figures, started.elapsed())
}

/// Drops the benchmark's PostgreSQL schema with `psql` (best effort: a left-over schema is named).
pub(crate) fn drop_schema(url: &str, schema: &str) {
    let dropped = Command::new("psql")
        .args([
            url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !dropped {
        eprintln!("could not drop the schema {schema} (psql missing?): drop it by hand");
    }
}

/// On PostgreSQL the goal for charges over HTTP is a share of what the ledger alone does in
/// batches in the same run (issue 21: at least 0.8).
fn compare_with_the_ledger(figures: &mut Vec<Figure>) {
    let find = |name: &str| {
        figures
            .iter()
            .find(|f| f.name == name && f.backend == "postgres")
            .map(|f| f.value)
    };
    if let (Some(api), Some(ledger)) = (find("api.charges"), find("ledger.debit.batched")) {
        figures.push(figure(
            "api.charges.vs_ledger",
            "postgres",
            "charges/s",
            api,
            Some(ledger),
            "baseline: ledger.debit.batched, same run; goal: ratio ≥ 0.8",
        ));
    }
}

async fn api_figures(plan: &BenchPlan, db: &AppDatabase) -> Result<Vec<Figure>> {
    let backend = db.backend;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let under_test = AppUnderTest::new(db)?;
    let (app, fake_url) = (under_test.app.clone(), under_test.fake_url.clone());
    // The API's account, and eight customers of their own for the top-up journeys.
    let customers: Vec<String> = (0..8)
        .map(|i| format!("bench-customer-{i}@example.com"))
        .collect();
    for (email, credits) in std::iter::once(("bench@example.com", "900000000"))
        .chain(customers.iter().map(|e| (e.as_str(), "1")))
    {
        under_test.run(&["seed-demo", email, PASSWORD, credits])?;
    }
    let _fake = under_test.start_fake()?;
    let web = under_test.serve().await?;
    let pid = web.0.id();
    let idle_rss = rss_kb(pid, "VmRSS:");
    let client = browser()?;
    log_in(&client, &app, "bench@example.com").await?;
    let mut customer_clients = Vec::new();
    for email in &customers {
        let customer = browser()?;
        log_in(&customer, &app, email).await?;
        customer_clients.push(customer);
    }
    let key = create_api_key(&client, &app).await?;
    let api = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let mut out = Vec::new();

    // Whole top-ups: Add Credits → pay on the fake → callback → credited. First, so that every
    // run measures them on the same database, however many charges the next figure manages.
    // Eight customers at once, each topping up their own account; then the same number of
    // top-ups by one customer from eight tabs at once, which PostgreSQL serialises on the
    // wallet's balance row (a credit holds it until its transaction commits).
    let (lat, elapsed) = time_journeys(&customer_clients, &app, &fake_url, plan.journeys).await;
    out.push(figure(
        "journey.topup",
        backend,
        "top-ups/s",
        per_sec(lat.len() as u64, elapsed),
        None,
        "8 customers at once, each their own account",
    ));
    out.push(figure(
        "journey.topup.p99",
        backend,
        "ms",
        percentile(&lat, 0.99),
        None,
        "goal: under 50 ms",
    ));
    let one_account = vec![client.clone(); 8];
    let (lat, elapsed) = time_journeys(&one_account, &app, &fake_url, plan.journeys).await;
    out.push(figure(
        "journey.topup.one_account",
        backend,
        "top-ups/s",
        per_sec(lat.len() as u64, elapsed),
        None,
        "one customer, 8 top-ups at once (the shape of earlier runs)",
    ));
    out.push(figure(
        "journey.topup.one_account.p99",
        backend,
        "ms",
        percentile(&lat, 0.99),
        None,
        "",
    ));
    if plan.journey_only {
        return Ok(out);
    }

    let (base_ops, base_elapsed, _) = keyed_load(
        &api,
        &key,
        reqwest::Method::GET,
        format!("{app}/api/v1/whoami"),
        plan.seconds,
    )
    .await;
    // The durable baseline just before the charges, so both see the disk of the same minute.
    let (durable_ops, durable_elapsed, durable_lat) = keyed_load(
        &api,
        &key,
        reqwest::Method::POST,
        format!("{app}/api/v1/benchmark/durable-append"),
        plan.seconds,
    )
    .await;
    if durable_ops == 0 {
        bail!("the durable baseline answered nothing: is benchmark.durable_baseline_url set?");
    }
    let (ops, elapsed, lat) = charges(&api, &app, &key, plan.seconds, "bench").await;
    let loaded_rss = rss_kb(pid, "VmHWM:");
    let durable = per_sec(durable_ops, durable_elapsed);
    out.push(figure(
        "api.charges.durable_baseline",
        backend,
        "appends/s",
        durable,
        None,
        "64 connections; the same HTTP stack, key and group commit, one row appended per request \
         to a one-table database, durably",
    ));
    out.push(figure(
        "api.charges.durable_baseline.p99",
        backend,
        "ms",
        percentile(&durable_lat, 0.99),
        None,
        "",
    ));
    out.push(figure(
        "api.charges.vs_durable_baseline",
        backend,
        "charges/s",
        per_sec(ops, elapsed),
        Some(durable),
        "baseline: api.charges.durable_baseline, same run; goal: ratio ≥ 0.5",
    ));
    out.push(figure(
        "api.charges",
        backend,
        "charges/s",
        per_sec(ops, elapsed),
        Some(per_sec(base_ops, base_elapsed)),
        "64 connections, durable; baseline: an authenticated no-op endpoint",
    ));
    out.push(figure(
        "api.charges.p50",
        backend,
        "ms",
        percentile(&lat, 0.50),
        None,
        "",
    ));
    out.push(figure(
        "api.charges.p99",
        backend,
        "ms",
        percentile(&lat, 0.99),
        None,
        if backend == "postgres" {
            "goal: under 15 ms"
        } else {
            "goal: under 10 ms"
        },
    ));

    let lines: Vec<Value> = (0..10_000)
        .map(|i| json!({"destination": format!("u{i}@example.com")}))
        .collect();
    let body = json!({"service": "email", "lines": lines});
    let mut times = Vec::new();
    for i in 0..5 {
        let t0 = Instant::now();
        let r = api
            .post(format!("{app}/api/v1/charges"))
            .bearer_auth(&key)
            .header("Idempotency-Key", format!("big-{i}"))
            .json(&body)
            .send()
            .await?;
        if r.status().as_u16() != 201 {
            bail!("the 10,000-line charge answered {}", r.status());
        }
        times.push(t0.elapsed());
    }
    times.sort();
    out.push(figure(
        "api.charges.batch10k",
        backend,
        "ms",
        times[2].as_secs_f64() * 1_000.0,
        None,
        "median of 5",
    ));

    out.push(figure(
        "web.rss.idle",
        backend,
        "MB",
        idle_rss as f64 / 1024.0,
        None,
        "goal: under 64 MB",
    ));
    out.push(figure(
        "web.rss.peak",
        backend,
        "MB",
        loaded_rss.max(rss_kb(pid, "VmHWM:")) as f64 / 1024.0,
        None,
        "peak under the charges load",
    ));
    drop(web);
    Ok(out)
}

/// `journeys` top-ups by one task per client, after an untimed warm-up (the first journeys open
/// the connections and prepare every step's statements: with 40 journeys, the p99 was the
/// slowest of those first eight). The latencies, sorted, and the time they took.
async fn time_journeys(
    clients: &[reqwest::Client],
    app: &str,
    fake_url: &str,
    journeys: u64,
) -> (Vec<Duration>, Duration) {
    let warm_up: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, app, fake_url) = (client.clone(), app.to_string(), fake_url.to_string());
            tokio::spawn(async move {
                for _ in 0..2 {
                    let _ = journey(&client, &app, &fake_url).await;
                }
            })
        })
        .collect();
    for task in warm_up {
        let _ = task.await;
    }
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .map(|client| {
            let (client, app, fake_url, counter) = (
                client.clone(),
                app.to_string(),
                fake_url.to_string(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let (mut lat, mut failures) = (Vec::new(), Vec::new());
                while counter.fetch_add(1, Ordering::Relaxed) < journeys {
                    let t0 = Instant::now();
                    match journey(&client, &app, &fake_url).await {
                        Ok(()) => lat.push(t0.elapsed()),
                        Err(e) => failures.push(e),
                    }
                }
                (lat, failures)
            })
        })
        .collect();
    let (mut lat, mut failures) = (Vec::new(), Vec::new());
    for t in tasks {
        let (done, failed) = t.await.unwrap_or_default();
        lat.extend(done);
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    // A failed journey is not counted as a top-up: say so, or a slower figure would hide it.
    if let Some(first) = failures.first() {
        eprintln!(
            "warning: {} of {journeys} journeys failed (the figure counts only the {} that \
             completed); the first: {first:#}",
            failures.len(),
            lat.len()
        );
    }
    lat.sort();
    (lat, elapsed)
}

async fn journey(client: &reqwest::Client, app: &str, fake: &str) -> Result<()> {
    let form = client
        .get(format!("{app}/billing/topup"))
        .send()
        .await?
        .text()
        .await?;
    let redirect = client
        .post(format!("{app}/billing/topups"))
        .form(&[("csrf", csrf_of(&form)?.as_str()), ("amount", "100")])
        .send()
        .await?
        .text()
        .await?;
    let fields = hidden_fields(&redirect);
    let (order, callback) = (field(&fields, "order_id"), field(&fields, "callback_url"));
    let paid: Value = client
        .post(format!("{fake}/_fake/orders/{order}/pay"))
        .json(&json!({"method": "upi", "vpa": "success@razorpay"}))
        .send()
        .await?
        .json()
        .await?;
    let fields: Vec<(String, String)> = paid["callback"]
        .as_object()
        .context("no callback fields")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let r = client.post(callback).form(&fields).send().await?;
    if r.status().as_u16() != 303 {
        bail!("callback answered {}", r.status());
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or_default().trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
            })
        })
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}

/// `--report`: report.html and the charts from `target/bench/results.json` as it is.
fn report_again() -> Result<()> {
    let dir = workspace().join("target/bench");
    let text = std::fs::read_to_string(dir.join("results.json"))
        .context("no target/bench/results.json: run the benchmark first")?;
    let doc: Value = serde_json::from_str(&text)?;
    let figures: Vec<Figure> = serde_json::from_value(doc["results"].clone())?;
    let seconds = doc["seconds"].as_f64().unwrap_or_default();
    let date = doc["date"].as_str().unwrap_or_default();
    let machine = doc["machine"].as_str().unwrap_or_default();
    write_report(&dir, &figures, machine, date, seconds)?;
    println!("written to target/bench/report.html and its charts (*.svg)");
    Ok(())
}

fn write_report(
    dir: &std::path::Path,
    figures: &[Figure],
    machine: &str,
    date: &str,
    seconds: f64,
) -> Result<()> {
    std::fs::write(
        dir.join("report.html"),
        crate::bench_report::html(figures, machine, date, seconds),
    )?;
    for chart in crate::bench_report::charts(figures) {
        std::fs::write(dir.join(format!("{}.svg", chart.name)), chart.svg)?;
    }
    Ok(())
}

fn report(figures: &[Figure], elapsed: Duration) -> Result<()> {
    println!();
    println!(
        "{:<26} {:<9} {:>12} {:<11} {:>12} {:>7}  note",
        "figure", "backend", "value", "unit", "baseline", "ratio"
    );
    for f in figures {
        println!(
            "{:<26} {:<9} {:>12.1} {:<11} {:>12} {:>7}  {}",
            f.name,
            f.backend,
            f.value,
            f.unit,
            f.baseline.map(|b| format!("{b:.1}")).unwrap_or_default(),
            f.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            f.note
        );
    }
    let dir = workspace().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let results: Vec<Value> = figures
        .iter()
        .map(|f| json!({"name": f.name, "backend": f.backend, "unit": f.unit, "value": f.value, "baseline": f.baseline, "ratio": f.ratio, "note": f.note}))
        .collect();
    let doc = json!({"machine": machine(), "date": chrono::Utc::now().to_rfc3339(), "seconds": elapsed.as_secs_f64(), "results": results});
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&doc)?,
    )?;
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    write_report(&dir, figures, &machine(), &date, elapsed.as_secs_f64())?;
    println!(
        "\nwritten to target/bench/results.json, report.html and its charts (*.svg) in {elapsed:.0?}"
    );
    Ok(())
}
