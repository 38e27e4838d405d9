//! `cargo bench -p ledger --bench ledger [-- --quick] [--out FILE]`: the ledger's throughput on
//! this machine, each figure beside a baseline measured in the same run (machines are noisy:
//! compare ratios). SQLite always (WAL, synchronous=FULL); PostgreSQL too when `DATABASE_URL`
//! points at one. `cargo xtask bench` runs this and adds the app's figures.
//!
//! The baseline is the least a debit can be: a conditional `UPDATE` and an `INSERT` in
//! hand-written SQL, on a connection of its own with the ledger's durability settings.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use ledger::{
    AccountId, ConnectConfig, Credit, CreditKind, Credits, Debit, DebitKind, IdempotencyKey,
    Ledger, Op,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct BenchPlan {
    seconds: Duration,
    quick: bool,
}

fn bail<T>(message: String) -> Result<T> {
    Err(message.into())
}

fn figure(
    name: &str,
    backend: &str,
    unit: &str,
    value: f64,
    baseline: Option<f64>,
    note: &str,
) -> Value {
    json!({
        "name": name,
        "backend": backend,
        "unit": unit,
        "value": value,
        "baseline": baseline,
        "ratio": baseline.filter(|b| *b > 0.0).map(|b| value / b),
        "note": note,
    })
}

/// Task `t`'s `i`th top-up credit: the same key each time, so a second run replays it.
fn topup_credit(wallets: &[AccountId], t: usize, i: u64) -> Credit {
    Credit {
        wallet: wallets[(t * 31 + i as usize) % wallets.len()],
        amount: Credits::new(1_000).expect("credits"),
        kind: CreditKind::Purchase,
        key: IdempotencyKey::new(format!("topup:pay_{t}_{i}")).expect("key"),
        reference: Some(format!("pay_{t}_{i}")),
        memo: None,
        expires_at: None,
    }
}

fn per_sec(ops: u64, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64()
}

/// Runs `tasks` copies of `work(task, i)` until `for_how_long` passes; returns the operations
/// that succeeded and the time taken.
async fn hammer<F, Fut>(tasks: usize, for_how_long: Duration, work: F) -> (u64, Duration)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let work = work.clone();
            tokio::spawn(async move {
                let (mut done, mut i) = (0u64, 0u64);
                while started.elapsed() < for_how_long {
                    if work(t, i).await {
                        done += 1;
                    }
                    i += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for h in handles {
        done += h.await.unwrap_or_default();
    }
    (done, started.elapsed())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let plan = BenchPlan {
        seconds: Duration::from_secs(if quick { 3 } else { 10 }),
        quick,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("kalp-ledger-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut backends = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", dir.join("ledger.db").display()),
    )];
    if let Ok(url) = std::env::var("DATABASE_URL") {
        backends.push(("postgres", url));
    }
    let scale = args.iter().any(|a| a == "--scale");
    let mut figures = Vec::new();
    for (name, url) in &backends {
        if scale {
            let plans = out
                .as_deref()
                .and_then(|o| std::path::Path::new(o).parent())
                .map(|dir| dir.join(format!("explain-{name}.txt")));
            figures.extend(runtime.block_on(scale_figures(name, url, plans))?);
        } else {
            figures.extend(runtime.block_on(ledger_figures(name, url, &plan))?);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    for f in &figures {
        println!("{f}");
    }
    if let Some(out) = out {
        std::fs::write(out, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}

/// The p99 of `runs` timed calls, in milliseconds.
async fn p99_ms<F, Fut>(runs: usize, mut call: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        call().await?;
        times.push(t0.elapsed());
    }
    times.sort();
    let at = ((times.len() as f64 * 0.99).ceil() as usize).clamp(1, times.len()) - 1;
    Ok(times[at].as_secs_f64() * 1_000.0)
}

/// `--scale`: the ledger preloaded with issue 21's shape (how long that takes is a figure too),
/// then Credit History's reads for the wallet with 500,000 transfers and the whole audit.
async fn scale_figures(
    backend: &str,
    url: &str,
    plans: Option<std::path::PathBuf>,
) -> Result<Vec<Value>> {
    let mut config = ConnectConfig::new(url.to_string());
    if backend == "postgres" {
        config.pg_schema = Some(format!("bench_scale_{}", std::process::id()));
    }
    let ledger = Ledger::connect(&config)
        .await
        .map_err(|e| format!("opening {backend}: {e}"))?;
    let mut out = Vec::new();
    let shape = ledger::ScaleShape::ISSUE_21;
    println!("{backend}: preloading {shape:?}…");
    let t0 = Instant::now();
    let preloaded = ledger.preload_scale(shape).await?;
    let preload = t0.elapsed();
    println!("{backend}: preloaded in {preload:.1?}");
    out.push(figure(
        "scale.preload.seconds",
        backend,
        "s",
        preload.as_secs_f64(),
        None,
        "20,000 wallets, 100,000 top-ups, 2,000,000 usage transfers, set-based",
    ));
    let big = preloaded.big_wallet;
    let first = ledger::HistoryQuery::default();
    let value = p99_ms(200, || async {
        ledger.history(big, &first).await?;
        Ok(())
    })
    .await?;
    out.push(figure(
        "scale.history.first_page.p99_ms",
        backend,
        "ms",
        value,
        None,
        "50 entries of the 500,000-transfer wallet; goal: under 20 ms",
    ));
    // Page 1,000, reached by following the keyset cursor (never OFFSET).
    let mut query = ledger::HistoryQuery::default();
    for _ in 0..999 {
        let page = ledger.history(big, &query).await?;
        query.before = page.next;
    }
    let deep = query.clone();
    let value = p99_ms(200, || async {
        ledger.history(big, &deep).await?;
        Ok(())
    })
    .await?;
    out.push(figure(
        "scale.history.deep_page.p99_ms",
        backend,
        "ms",
        value,
        None,
        "page 1,000 by keyset; goal: under 20 ms",
    ));
    // Filtered: usage only, within one month of the wallet's busiest time (its 500,000 sends
    // span the 115 days from about 730 days back, so the month holds about 130,000 of them).
    let now = chrono::Utc::now();
    let filtered = ledger::HistoryQuery {
        kinds: vec![ledger::TransferKind::UsageEmail],
        from: Some(now - chrono::Duration::days(700)),
        to: Some(now - chrono::Duration::days(670)),
        ..ledger::HistoryQuery::default()
    };
    if ledger.history(big, &filtered).await?.next.is_none() {
        return bail("the filtered range holds less than a page: it measures nothing".into());
    }
    let value = p99_ms(200, || async {
        ledger.history(big, &filtered).await?;
        Ok(())
    })
    .await?;
    out.push(figure(
        "scale.history.filtered.p99_ms",
        backend,
        "ms",
        value,
        None,
        "usage in a 30-day range of ~130,000 entries; goal: under 30 ms",
    ));
    // How each of those reads runs, for docs/benchmarks.md.
    if let Some(path) = plans {
        let pages = [
            ("history: first page".to_string(), first.clone()),
            ("history: page 1,000".to_string(), deep.clone()),
            (
                "history: usage in a 30-day range".to_string(),
                filtered.clone(),
            ),
        ];
        let explained = ledger
            .explain_reads(big, &pages, now - chrono::Duration::days(14))
            .await?;
        let text: Vec<String> = explained
            .iter()
            .map(|(what, plan)| format!("## {what}\n{plan}\n"))
            .collect();
        std::fs::write(&path, text.join("\n"))?;
        println!("{backend}: query plans written to {}", path.display());
    }
    let t0 = Instant::now();
    let report = ledger.audit().await?;
    let audit = t0.elapsed();
    if !report.is_clean() {
        return bail(format!(
            "the preloaded ledger's audit is not clean: {report}"
        ));
    }
    out.push(figure(
        "scale.audit.seconds",
        backend,
        "s",
        audit.as_secs_f64(),
        None,
        "every invariant over the whole database; goal: under 60 s",
    ));
    if backend == "postgres" {
        let schema = config.pg_schema.clone().unwrap_or_default();
        let db = baseline_connection(&ConnectConfig::new(url.to_string())).await?;
        db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
    }
    Ok(out)
}

const WALLETS: usize = 2_000;

async fn ledger_figures(backend: &str, url: &str, plan: &BenchPlan) -> Result<Vec<Value>> {
    let mut config = ConnectConfig::new(url.to_string());
    if backend == "postgres" {
        config.pg_schema = Some(format!("bench_{}", std::process::id()));
    }
    let ledger = Ledger::connect(&config)
        .await
        .map_err(|e| format!("opening {backend}: {e}"))?;
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
    let mut out: Vec<Value> = Vec::new();

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
        async move { l.credit(topup_credit(&w, t, i)).await.is_ok() }
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
            l.credit(topup_credit(&w, t, i))
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
        return bail(format!(
            "the ledger audit failed after the benchmark: {audit}"
        ));
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
        return bail("baseline overdraft".into());
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
