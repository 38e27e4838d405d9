//! `cargo xtask <command>`: the project's automation, in plain Rust.
//!
//! - `ci`: exactly what CI runs (`.ci/run` calls it): the README's test command, the
//!   PostgreSQL-backed tests against a fresh database, `cargo fmt --check`, and clippy.
//! - `dev`: runs the app locally (the web app and fake-razorpay are not built yet).

mod ci;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci     run what CI runs: cargo test, the PostgreSQL tests, fmt --check, clippy
  dev    run Kalp Credits locally (fake-razorpay and the web app)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("dev") => dev(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dev() -> anyhow::Result<()> {
    anyhow::bail!(
        "`cargo xtask dev` will start fake-razorpay and the web app wired together, with a demo \
         account; neither is built yet (see the open issues). Until then: `cargo test`, and \
         `cargo run -p ledger -- migrate|audit --database-url URL`."
    )
}
