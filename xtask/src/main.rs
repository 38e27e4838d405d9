//! `cargo xtask <command>`: the project's automation, in plain Rust.
//!
//! - `ci`: exactly what CI runs (`.ci/run` calls it): the README's test command, the
//!   PostgreSQL-backed tests against a fresh database, `cargo fmt --check`, and clippy.
//! - `dev`: builds and runs fake-razorpay and the web app wired together, with a demo account.
//! - `dist`: release binaries and a tarball to deploy, with a systemd unit.

mod bench;
mod bench_common;
mod bench_report;
mod bench_scale;
mod browser;
mod ci;
mod dev;
mod dist;
mod e2e;
mod html;
mod stack;
mod storm;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci     run what CI runs: cargo test, the PostgreSQL tests, e2e, fmt --check, clippy
  bench  measure the ledger and the API against same-run baselines [--quick] [--only ledger|app]
         (target/bench/results.json; PostgreSQL too when DATABASE_URL is set)
  storm  a log-in storm and a slow-client storm against a release build: peak memory and
         /healthz latency against their goals (target/bench/storm.json)
  e2e    run the scenarios in fixtures/scenarios/ against the real stack over HTTP
         [--browser: the journey in headless Chromium, screenshots in target/e2e/]
  dist   release binaries and target/dist/kalp-credits-<version>.tar.gz (systemd unit, example
         environment; docs/operations.md)
  dev    run Kalp Credits locally: fake-razorpay and the web app, a demo account
         [--port 8000] [--fake-port 9010] [--database-url postgres://...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("dev") => dev::run(&args[1..]),
        Some("e2e") => e2e::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("bench-run") => bench::run_measurements(&args[1..]),
        Some("storm") => storm::run(&args[1..]),
        Some("dist") => dist::run(&args[1..]),
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
