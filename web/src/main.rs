//! `cargo run -p web` serves the app; `cargo run -p web -- migrate` only applies migrations.

use std::process::ExitCode;

use web::{
    accounts::{EmailAddress, create_account},
    configuration::Settings,
    passwords::PasswordHashing,
    services::Services,
    startup,
};

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kalp: {e}");
            return ExitCode::from(2);
        }
    };
    web::init_tracing(settings.log.format);
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    let result = match command.as_str() {
        "serve" => serve(settings).await,
        "migrate" => web::services::open_ledger(&settings)
            .await
            .map(|_| println!("migrations applied")),
        "reconcile" => reconcile(settings).await,
        "seed-demo" => seed_demo(settings).await,
        "preload-scale" => preload_scale(settings).await,
        "operator" => operator(settings).await,
        "backup" => backup(settings).await,
        "doctor" => {
            let report = web::doctor::examine(&settings).await;
            println!("{report}");
            if report.healthy() {
                Ok(())
            } else {
                return ExitCode::FAILURE;
            }
        }
        "audit" => match audit(settings).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(anyhow::anyhow!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kalp: {e:#}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: web [serve | migrate | reconcile | audit [--days N] | seed-demo EMAIL PASSWORD CREDITS | operator add|remove EMAIL | backup PATH | doctor | preload-scale EMAIL PASSWORD PENDING]
  serve       run the app (default)
  migrate     apply database migrations
  reconcile   check pending top-ups with Razorpay once (credit, capture, expire)
  audit       ledger invariants, and captured Razorpay payments of the last N days (7) against our credits
  seed-demo   create a demo account (if missing) holding CREDITS promotional credits (once)
  operator    give an existing account the operator role (pages under /admin), or take it away
  backup      write a consistent copy of a SQLite database to PATH while the app runs
  doctor      check the configuration, database, Razorpay keys, webhook secret and public URL
  preload-scale  benchmark data (not in production): years of ledger data, its largest wallet
              owned by a new account EMAIL, and PENDING unpaid top-ups with Razorpay orders
Settings: web/config/base.toml, then config/local.toml, then KALP__* environment variables.";

async fn reconcile(settings: Settings) -> anyhow::Result<()> {
    let min_age = std::time::Duration::from_secs(settings.reconcile.min_age_secs);
    let expire_after = std::time::Duration::from_secs(settings.reconcile.expire_after_secs);
    let services = Services::connect(settings).await?;
    let report = web::reconcile::run_once(&services, min_age, expire_after).await?;
    println!("reconciliation: {report}");
    Ok(())
}

async fn audit(settings: Settings) -> anyhow::Result<bool> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let days: i64 = match args.as_slice() {
        [] => 7,
        [flag, n] if flag == "--days" => n
            .parse()
            .map_err(|_| anyhow::anyhow!("--days takes a number"))?,
        _ => anyhow::bail!("usage: web audit [--days N]"),
    };
    let services = Services::connect(settings).await?;
    let outcome = web::audit::run_and_record(&services, days).await?;
    println!("{}", outcome.ledger);
    println!(
        "Razorpay: {} captured payments checked over {days} day(s)",
        outcome.payments_checked
    );
    for line in &outcome.operator_summary {
        println!("{line}");
    }
    for d in &outcome.differences {
        println!("DIFFERENCE: {d}");
    }
    for n in &outcome.notes {
        println!("note: {n}");
    }
    println!(
        "{}",
        if outcome.is_clean() {
            "audit clean"
        } else {
            "audit found differences"
        }
    );
    Ok(outcome.is_clean())
}

async fn operator(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let (grant, email) = match args.as_slice() {
        [verb, email] if verb == "add" => (true, email),
        [verb, email] if verb == "remove" => (false, email),
        _ => anyhow::bail!("usage: web operator add|remove EMAIL"),
    };
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!(e))?;
    let ledger = web::services::open_ledger(&settings).await?;
    let address = email.as_str();
    let changed = ledger
        .autocommit(|writer| {
            Box::pin(async move { web::store::users::set_operator(writer, address, grant).await })
        })
        .await?;
    if !changed {
        anyhow::bail!("no account has the email {address}: sign up first");
    }
    println!(
        "{address} {}",
        if grant {
            "is an operator now: /admin"
        } else {
            "is no longer an operator"
        }
    );
    Ok(())
}

async fn backup(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [path] = args.as_slice() else {
        anyhow::bail!("usage: web backup PATH");
    };
    if std::path::Path::new(path).exists() {
        anyhow::bail!("{path} exists already: give a new file");
    }
    let ledger = web::services::open_ledger(&settings).await?;
    let target = path.as_str();
    ledger
        .autocommit(|writer| {
            Box::pin(async move { web::store::backup::vacuum_into(writer, target).await })
        })
        .await?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!("backup written to {path} ({bytes} bytes)");
    Ok(())
}

async fn seed_demo(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [email, password, credits] = args.as_slice() else {
        anyhow::bail!("usage: web seed-demo EMAIL PASSWORD CREDITS");
    };
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!(e))?;
    let credits: i64 = credits
        .parse()
        .map_err(|_| anyhow::anyhow!("CREDITS must be a number"))?;
    let passwords = PasswordHashing::new(1, 1);
    let state = Services::connect(settings).await?;
    let created = create_account(&state, &passwords, &email, password).await?;
    let email = email.as_str();
    let wallet = state
        .ledger
        .find_wallet(&format!("user:{email}"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{email} has no wallet"))?;
    if credits > 0 {
        state
            .ledger
            .credit(ledger::Credit {
                wallet,
                amount: ledger::Credits::new(credits)?,
                kind: ledger::CreditKind::Grant,
                key: ledger::IdempotencyKey::new(format!("demo-grant:{email}"))?,
                reference: None,
                memo: Some("Demo credits".into()),
                expires_at: None,
            })
            .await?;
    }
    let balance = state.ledger.balance(wallet).await?;
    println!(
        "demo account {email}: {} ({} credits)",
        if created.is_some() {
            "created"
        } else {
            "already there"
        },
        balance.available
    );
    Ok(())
}

async fn preload_scale(settings: Settings) -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let [email, password, pending] = args.as_slice() else {
        anyhow::bail!("usage: web preload-scale EMAIL PASSWORD PENDING");
    };
    let email = EmailAddress::parse(email).map_err(|e| anyhow::anyhow!(e))?;
    let pending: usize = pending
        .parse()
        .map_err(|_| anyhow::anyhow!("PENDING must be a number"))?;
    let services = Services::connect(settings).await?;
    let started = std::time::Instant::now();
    let report = web::scale_preload::preload(&services, &email, password, pending).await?;
    println!(
        "preloaded in {:.1} s: {} owns wallet {} (user {}), {} top-ups pending",
        started.elapsed().as_secs_f64(),
        email.as_str(),
        report.wallet.0,
        report.user_id,
        report.pending_topups
    );
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let public = settings.public_url().to_string();
    let environment = settings.environment.as_str();
    let app = startup::Application::build(settings).await?;
    tracing::info!(
        environment,
        "Kalp Credits on port {} ({public}), {environment} settings",
        app.port()
    );
    app.run_until_stopped(async {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "stopping: finishing requests in flight");
    })
    .await
}

/// SIGTERM (what service managers and containers send) or Ctrl-C.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
