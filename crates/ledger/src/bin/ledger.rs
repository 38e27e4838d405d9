//! Operator commands for the ledger: `migrate` applies pending migrations, `audit` checks every
//! invariant and exits non-zero when one is broken.
//!
//! ```text
//! cargo run -p ledger -- migrate [--database-url URL]
//! cargo run -p ledger -- audit   [--database-url URL]
//! ```
//! The URL defaults to `KALP__DATABASE__URL`, then `DATABASE_URL`.

use std::process::ExitCode;

use ledger::{ConnectConfig, Ledger, redact_url};

const USAGE: &str = "usage: ledger <migrate|audit> [--database-url URL]\n\
    The database URL defaults to KALP__DATABASE__URL, then DATABASE_URL.";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = None;
    let mut url = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--database-url" => url = rest.next().cloned(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            c if command.is_none() && !c.starts_with('-') => command = Some(c.to_string()),
            other => {
                eprintln!("unexpected argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let url = url
        .or_else(|| std::env::var("KALP__DATABASE__URL").ok())
        .or_else(|| std::env::var("DATABASE_URL").ok());
    let Some(url) = url else {
        eprintln!("no database URL: pass --database-url or set KALP__DATABASE__URL\n{USAGE}");
        return ExitCode::from(2);
    };
    let config = ConnectConfig::new(url.clone());
    match command.as_deref() {
        Some("migrate") => match Ledger::migrate(&config).await {
            Ok(applied) => {
                println!(
                    "{}: {} migration(s) applied",
                    redact_url(&url),
                    applied.len()
                );
                for name in applied {
                    println!("  {name}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("migrate failed: {e}");
                ExitCode::FAILURE
            }
        },
        Some("audit") => {
            let report = match Ledger::connect(&config).await {
                Ok(ledger) => ledger.audit().await,
                Err(e) => Err(e),
            };
            match report {
                Ok(report) => {
                    println!("{report}");
                    if report.is_clean() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("audit failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
