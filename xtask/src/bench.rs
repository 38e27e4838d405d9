//! `cargo xtask bench [--quick]`: how fast the ledger and the API are on this machine, each
//! figure beside a baseline measured in the same process and run (machines are noisy: compare
//! ratios). Writes a table to stdout and `target/bench/results.json`. Builds in release mode and
//! re-runs itself optimised. SQLite always (WAL, synchronous=FULL); PostgreSQL too when
//! `DATABASE_URL` points at one.

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use ledger::{
    ConnectConfig, Credit, CreditKind, Credits, Debit, DebitKind, IdempotencyKey, Ledger, Op,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use serde_json::{Value, json};

use crate::e2e::{csrf_of, field, hidden_fields, workspace};

#[derive(Debug, Clone, serde::Serialize)]
struct Figure {
    name: String,
    backend: String,
    unit: String,
    value: f64,
    baseline: Option<f64>,
    ratio: Option<f64>,
    note: String,
}

struct Plan {
    seconds: Duration,
    quick: bool,
}

/// Builds everything in release mode and runs the measurements optimised.
pub fn run(args: &[String]) -> Result<()> {
    const USAGE: &str = "usage: cargo xtask bench [--quick] [--only ledger|app]";
    let mut forwarded = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--quick" => forwarded.push(arg.clone()),
            "--only" => match rest.next().map(String::as_str) {
                Some(part @ ("ledger" | "app")) => {
                    forwarded.extend(["--only".to_string(), part.to_string()])
                }
                _ => bail!(USAGE),
            },
            _ => bail!(USAGE),
        }
    }
    build_release()?;
    let mut command = Command::new(release_bin("xtask"));
    command.arg("bench-run").args(&forwarded);
    if !command.status()?.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}

/// xtask, the web app and fake-razorpay, optimised.
pub(crate) fn build_release() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("building in release mode…");
    let built = Command::new(&cargo)
        .current_dir(workspace())
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "xtask",
            "-p",
            "web",
            "-p",
            "fake-razorpay",
        ])
        .status()?;
    if !built.success() {
        bail!("the release build failed");
    }
    Ok(())
}

pub(crate) fn release_bin(name: &str) -> std::path::PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| workspace().join("target"));
    target.join("release").join(name)
}

pub fn run_measurements(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    // `--only ledger` or `--only app`: one half of the figures, to measure a change to it.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let plan = Plan {
        seconds: Duration::from_secs(if quick { 3 } else { 10 }),
        quick,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    let dir = std::env::temp_dir().join(format!("kalp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.join("ledger.db").display()),
    )];
    if let Ok(url) = std::env::var("DATABASE_URL") {
        backends.push(("postgres", url));
    }
    if only != Some("app") {
        for (name, url) in &backends {
            figures.extend(runtime.block_on(ledger_figures(name, url, &plan))?);
        }
    }
    if only != Some("ledger") {
        figures.extend(runtime.block_on(api_figures(&plan, &dir))?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(&figures, started.elapsed())
}

fn per_sec(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

fn figure(
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

/// Runs `tasks` copies of `work(task, i)` until `for_how_long` passes; returns the operations
/// that succeeded and the time taken.
async fn hammer<F, Fut>(tasks: usize, for_how_long: Duration, work: F) -> (u64, Duration)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let (done, elapsed, _) = load(tasks, for_how_long, work).await;
    (done, elapsed)
}

const WALLETS: usize = 2_000;

async fn ledger_figures(backend: &str, url: &str, plan: &Plan) -> Result<Vec<Figure>> {
    let mut config = ConnectConfig::new(url.to_string());
    if backend == "postgres" {
        config.pg_schema = Some(format!("bench_{}", std::process::id()));
    }
    let ledger = Ledger::connect(&config)
        .await
        .with_context(|| format!("opening {backend}"))?;
    println!("{backend}: preparing {WALLETS} wallets…");
    let mut wallets = Vec::new();
    for i in 0..WALLETS {
        let wallet = ledger.open_wallet(&format!("bench:{i}")).await?;
        ledger
            .credit(Credit {
                wallet,
                amount: Credits::new(1_000_000_000)?,
                kind: CreditKind::Grant,
                key: IdempotencyKey::new(format!("bench-seed:{i}"))?,
                reference: None,
                memo: None,
                expires_at: None,
            })
            .await?;
        wallets.push(wallet);
    }
    let wallets = Arc::new(wallets);
    // The baseline's own connection, with the ledger's durability settings.
    let db = baseline_connection(&config).await?;
    let db_backend = ledger.backend();
    prepare_baseline(&db, db_backend).await?;
    let mut out = Vec::new();

    // One debit per transaction, 8 tasks.
    let l = ledger.clone();
    let w = wallets.clone();
    let (ops, elapsed) = hammer(8, plan.seconds, move |t, i| {
        let (l, w) = (l.clone(), w.clone());
        async move {
            let wallet = w[(t * 7919 + i as usize * 104_729) % w.len()];
            l.debit(Debit {
                wallet,
                amount: Credits::new(1).expect("one"),
                kind: DebitKind::UsageEmail,
                key: IdempotencyKey::new(format!("d:{t}:{i}")).expect("key"),
                reference: None,
                memo: None,
            })
            .await
            .is_ok()
        }
    })
    .await;
    let value = per_sec(ops, elapsed);
    let d = db.clone();
    let (base_ops, base_elapsed) = hammer(8, plan.seconds, move |t, i| {
        let d = d.clone();
        async move {
            baseline_debit(
                &d,
                db_backend,
                (t * 7919 + i as usize * 104_729) % WALLETS,
                &format!("b:{t}:{i}"),
            )
            .await
            .is_ok()
        }
    })
    .await;
    out.push(figure("ledger.debit.single", backend, "debits/s", value, Some(per_sec(base_ops, base_elapsed)), "8 tasks, one debit per transaction; baseline: conditional UPDATE + INSERT in hand-written SQL"));
    // Those debits drew from no lot yet (see crates/ledger/src/draw.rs): the sweep that does it
    // afterwards is part of their cost, so it is measured too.
    let started = Instant::now();
    ledger.draw_pending().await?;
    out.push(figure(
        "ledger.debit.single.draw",
        backend,
        "debits/s",
        per_sec(ops, started.elapsed()),
        None,
        "the housekeeping sweep drawing those debits from their lots afterwards",
    ));

    // 1,000 debits over many wallets per transaction.
    let batches = if plan.quick { 5 } else { 20 };
    let started = Instant::now();
    for b in 0..batches {
        let ops: Vec<Op> = (0..1_000)
            .map(|i| {
                Op::Debit(Debit {
                    wallet: wallets[(b * 1_000 + i) % WALLETS],
                    amount: Credits::new(1).expect("one"),
                    kind: DebitKind::UsageSms,
                    key: IdempotencyKey::new(format!("batch:{b}:{i}")).expect("key"),
                    reference: None,
                    memo: None,
                })
            })
            .collect();
        ledger.submit(&ops).await?;
    }
    let value = per_sec(batches as u64 * 1_000, started.elapsed());
    let started = Instant::now();
    for b in 0..batches {
        let txn = db.begin().await?;
        for i in 0..1_000 {
            baseline_statements(
                &txn,
                db_backend,
                (b * 1_000 + i) % WALLETS,
                &format!("bb:{b}:{i}"),
            )
            .await?;
        }
        txn.commit().await?;
    }
    let base = per_sec(batches as u64 * 1_000, started.elapsed());
    out.push(figure(
        "ledger.debit.batched",
        backend,
        "debits/s",
        value,
        Some(base),
        "1,000 debits over many wallets per transaction",
    ));

    // Idempotent top-up credits, then their replays.
    let l = ledger.clone();
    let w = wallets.clone();
    let (ops, elapsed) = hammer(8, plan.seconds, move |t, i| {
        let (l, w) = (l.clone(), w.clone());
        async move {
            l.credit(Credit {
                wallet: w[(t * 31 + i as usize) % w.len()],
                amount: Credits::new(1_000).expect("credits"),
                kind: CreditKind::Purchase,
                key: IdempotencyKey::new(format!("topup:pay_{t}_{i}")).expect("key"),
                reference: Some(format!("pay_{t}_{i}")),
                memo: None,
                expires_at: None,
            })
            .await
            .is_ok()
        }
    })
    .await;
    let fresh = per_sec(ops, elapsed);
    let count = ops / 8;
    let l = ledger.clone();
    let w = wallets.clone();
    let (replays, elapsed) = hammer(8, plan.seconds, move |t, i| {
        let (l, w) = (l.clone(), w.clone());
        let i = i % count.max(1);
        async move {
            l.credit(Credit {
                wallet: w[(t * 31 + i as usize) % w.len()],
                amount: Credits::new(1_000).expect("credits"),
                kind: CreditKind::Purchase,
                key: IdempotencyKey::new(format!("topup:pay_{t}_{i}")).expect("key"),
                reference: Some(format!("pay_{t}_{i}")),
                memo: None,
                expires_at: None,
            })
            .await
            .is_ok_and(|r| r.replayed)
        }
    })
    .await;
    out.push(figure(
        "ledger.topup",
        backend,
        "credits/s",
        fresh,
        None,
        "idempotent credit per Razorpay payment, 8 tasks",
    ));
    out.push(figure(
        "ledger.topup.replay",
        backend,
        "replays/s",
        per_sec(replays, elapsed),
        None,
        "the same payments reported again: nothing moves",
    ));
    let audit = ledger.audit().await?;
    if !audit.is_clean() {
        bail!("the ledger audit failed after the benchmark: {audit}");
    }
    if let Some(schema) = config.pg_schema.as_ref().filter(|_| backend == "postgres") {
        let _ = db
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
        // Let PostgreSQL write out what the benchmark dirtied now, not during the next figures.
        let _ = db.execute_unprepared("CHECKPOINT").await;
    }
    Ok(out)
}

async fn baseline_connection(config: &ConnectConfig) -> Result<DatabaseConnection> {
    let mut options = sea_orm::ConnectOptions::new(config.url.clone());
    // One writer on SQLite, as the ledger has; a pool as large as the ledger's on PostgreSQL.
    let pool = if config.url.starts_with("sqlite:") {
        1
    } else {
        config.pool_size.max(2)
    };
    options.max_connections(pool).sqlx_logging(false);
    options.map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
    });
    if let Some(schema) = &config.pg_schema {
        options.set_schema_search_path(schema.clone());
    }
    Ok(sea_orm::Database::connect(options).await?)
}

async fn prepare_baseline(db: &DatabaseConnection, backend: DbBackend) -> Result<()> {
    let int = if backend == DbBackend::Sqlite {
        "INTEGER"
    } else {
        "BIGINT"
    };
    db.execute_unprepared(&format!("CREATE TABLE IF NOT EXISTS bench_balances (id {int} PRIMARY KEY, available {int} NOT NULL CHECK (available >= 0))")).await?;
    db.execute_unprepared(&format!("CREATE TABLE IF NOT EXISTS bench_transfers (key TEXT PRIMARY KEY, wallet {int} NOT NULL, amount {int} NOT NULL)")).await?;
    let txn = db.begin().await?;
    for i in 0..WALLETS {
        txn.execute_raw(ledger::statement(backend, "INSERT INTO bench_balances (id, available) VALUES (?, 1000000000) ON CONFLICT (id) DO NOTHING", vec![(i as i64).into()])).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The minimal hand-written debit: the conditional balance update and the transfer row.
async fn baseline_statements<C: ConnectionTrait>(
    c: &C,
    backend: DbBackend,
    wallet: usize,
    key: &str,
) -> Result<()> {
    let updated = c
        .execute_raw(ledger::statement(
            backend,
            "UPDATE bench_balances SET available = available - 1 WHERE id = ? AND available >= 1",
            vec![(wallet as i64).into()],
        ))
        .await?;
    if updated.rows_affected() != 1 {
        bail!("baseline overdraft");
    }
    c.execute_raw(ledger::statement(
        backend,
        "INSERT INTO bench_transfers (key, wallet, amount) VALUES (?, ?, 1)",
        vec![key.into(), (wallet as i64).into()],
    ))
    .await?;
    Ok(())
}

async fn baseline_debit(
    db: &DatabaseConnection,
    backend: DbBackend,
    wallet: usize,
    key: &str,
) -> Result<()> {
    let options = sea_orm::TransactionOptions {
        sqlite_transaction_mode: (backend == DbBackend::Sqlite)
            .then_some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    };
    let txn = db.begin_with_options(options).await?;
    baseline_statements(&txn, backend, wallet, key).await?;
    txn.commit().await?;
    Ok(())
}

/// A child process killed when dropped.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1_000.0
}

/// Latencies of `tasks` concurrent clients calling `request` for `for_how_long`.
async fn load<F, Fut>(
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

async fn api_figures(plan: &Plan, dir: &std::path::Path) -> Result<Vec<Figure>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
    };
    let (port, fake_port) = (free()?, free()?);
    let app = format!("http://127.0.0.1:{port}");
    let fake_url = format!("http://127.0.0.1:{fake_port}");
    let database = format!("sqlite://{}?mode=rwc", dir.join("web.db").display());
    let web_env = |c: &mut Command| {
        c.env("KALP__SERVER__PORT", port.to_string())
            .env("KALP__SERVER__PUBLIC_URL", &app)
            .env("KALP__DATABASE__URL", &database)
            .env("KALP__RAZORPAY__BASE_URL", &fake_url)
            .env("KALP__USAGE__RATE_PER_SEC", "1000000")
            .env("KALP__USAGE__RATE_BURST", "1000000")
            .env("KALP__USAGE__DEFAULT_ALERT_THRESHOLD", "0")
            .env("KALP_CONFIG_DIR", "/nonexistent")
            .env("RUST_LOG", "error");
    };
    let mut seed = Command::new(release_bin("web"));
    web_env(&mut seed);
    if !seed
        .args([
            "seed-demo",
            "bench@example.com",
            "correct horse battery",
            "900000000",
        ])
        .stdout(Stdio::null())
        .status()?
        .success()
    {
        bail!("could not seed the benchmark account");
    }
    let _fake = Server(
        Command::new(release_bin("fake-razorpay"))
            .args([
                "--listen",
                &format!("127.0.0.1:{fake_port}"),
                "--webhook-url",
                &format!("{app}/webhooks/razorpay"),
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let mut web = Command::new(release_bin("web"));
    web_env(&mut web);
    let web = Server(web.stdout(Stdio::null()).spawn()?);
    let pid = web.0.id();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", fake_port)).is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kb(pid, "VmRSS:");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(128)
        .build()?;
    let login = client
        .get(format!("{app}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = csrf_of(&login)?;
    client
        .post(format!("{app}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "bench@example.com"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await?;
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
    let key = page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string();
    let api = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let mut out = Vec::new();

    // Whole top-ups: Add Credits → pay on the fake → callback → credited. First, so that every
    // run measures them on the same database, however many charges the next figure manages.
    let journeys = if plan.quick { 200 } else { 1_000 };
    // Warm-up, untimed: the first journeys open the connections and prepare the statements of
    // every step (with 40 journeys, the p99 was the slowest of those first eight).
    let warm_up: Vec<_> = (0..8)
        .map(|_| {
            let (client, app, fake_url) = (client.clone(), app.clone(), fake_url.clone());
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
    let mut lat = Vec::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, app, fake_url, counter) = (
                client.clone(),
                app.clone(),
                fake_url.clone(),
                counter.clone(),
            );
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while counter.fetch_add(1, Ordering::Relaxed) < journeys {
                    let t0 = Instant::now();
                    if journey(&client, &app, &fake_url).await.is_ok() {
                        lat.push(t0.elapsed());
                    }
                }
                lat
            })
        })
        .collect();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    lat.sort();
    out.push(figure(
        "journey.topup",
        "sqlite",
        "top-ups/s",
        per_sec(lat.len() as u64, elapsed),
        None,
        "8 concurrent customers",
    ));
    out.push(figure(
        "journey.topup.p99",
        "sqlite",
        "ms",
        percentile(&lat, 0.99),
        None,
        "goal: under 50 ms",
    ));

    let (a, k) = (api.clone(), key.clone());
    let url = format!("{app}/api/v1/whoami");
    let (base_ops, base_elapsed, _) = load(64, plan.seconds, move |_, _| {
        let (a, k, url) = (a.clone(), k.clone(), url.clone());
        async move {
            a.get(url)
                .bearer_auth(k)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let (a, k) = (api.clone(), key.clone());
    let url = format!("{app}/api/v1/charges");
    let (ops, elapsed, lat) = load(64, plan.seconds, move |t, i| {
        let (a, k, url) = (a.clone(), k.clone(), url.clone());
        async move {
            a.post(url)
                .bearer_auth(k)
                .header("Idempotency-Key", format!("bench-{t}-{i}"))
                .json(&json!({"service": "email", "quantity": 1}))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 201)
        }
    })
    .await;
    let loaded_rss = rss_kb(pid, "VmHWM:");
    out.push(figure(
        "api.charges",
        "sqlite",
        "charges/s",
        per_sec(ops, elapsed),
        Some(per_sec(base_ops, base_elapsed)),
        "64 connections, durable; baseline: an authenticated no-op endpoint",
    ));
    out.push(figure(
        "api.charges.p50",
        "sqlite",
        "ms",
        percentile(&lat, 0.50),
        None,
        "",
    ));
    out.push(figure(
        "api.charges.p99",
        "sqlite",
        "ms",
        percentile(&lat, 0.99),
        None,
        "goal: under 10 ms",
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
        "sqlite",
        "ms",
        times[2].as_secs_f64() * 1_000.0,
        None,
        "median of 5",
    ));

    out.push(figure(
        "web.rss.idle",
        "sqlite",
        "MB",
        idle_rss as f64 / 1024.0,
        None,
        "goal: under 64 MB",
    ));
    out.push(figure(
        "web.rss.peak",
        "sqlite",
        "MB",
        loaded_rss.max(rss_kb(pid, "VmHWM:")) as f64 / 1024.0,
        None,
        "peak under the charges load",
    ));
    drop(web);
    Ok(out)
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
    println!("\nwritten to target/bench/results.json in {elapsed:.0?}");
    Ok(())
}
