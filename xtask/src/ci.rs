//! `cargo xtask ci`: what `.ci/run` runs, runnable locally.

use std::{
    process::Command,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};

/// The machine's PostgreSQL (trust auth). Override with `KALP_CI_POSTGRES_ADMIN_URL`.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn run(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("`cargo xtask ci` takes no arguments, got {arg:?}");
    }
    // The README's command exactly as a newcomer runs it: SQLite only, PostgreSQL variants skip.
    step("cargo test (the README's test command)", || {
        cargo_without(
            &["test"],
            &["KALP_TEST_POSTGRES_URL", "KALP_REQUIRE_POSTGRES"],
        )
    })?;
    step(
        "PostgreSQL-backed tests on a fresh database",
        postgres_tests,
    )?;
    step(
        "Razorpay's official Python and Node SDKs against fake-razorpay",
        python_sdk_check,
    )?;
    step("end-to-end scenarios over HTTP (cargo xtask e2e)", || {
        cargo(&["run", "--quiet", "--package", "xtask", "--", "e2e"], &[])
    })?;
    step(
        "the journey in headless Chromium (cargo xtask e2e --browser)",
        || {
            cargo(
                &[
                    "run",
                    "--quiet",
                    "--package",
                    "xtask",
                    "--",
                    "e2e",
                    "--browser",
                ],
                &[],
            )
        },
    )?;
    step("cargo fmt --check", || {
        cargo(&["fmt", "--all", "--check"], &[])
    })?;
    step("cargo clippy", || {
        cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;
    println!("xtask ci: all steps passed");
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("==> {name}");
    let started = Instant::now();
    f().with_context(|| format!("step failed: {name}"))?;
    println!("==> {name}: ok in {:.0?}", started.elapsed());
    Ok(())
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    run_cargo(args, env, &[])
}

fn cargo_without(args: &[&str], removed: &[&str]) -> Result<()> {
    run_cargo(args, &[], removed)
}

fn run_cargo(args: &[&str], env: &[(&str, &str)], removed: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(args).envs(env.iter().copied());
    for name in removed {
        command.env_remove(name);
    }
    let status = command
        .status()
        .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Creates a database of its own for this run, runs every test whose name contains `postgres`
/// against it with `KALP_REQUIRE_POSTGRES=1` (so none can skip), and drops it afterwards.
fn postgres_tests() -> Result<()> {
    let admin_url =
        std::env::var("KALP_CI_POSTGRES_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let database = format!("kalp_ci_{}_{stamp}", std::process::id());
    admin(&admin_url, &format!("CREATE DATABASE {database}")).with_context(|| {
        format!(
            "PostgreSQL must be reachable for CI at {}",
            redact(&admin_url)
        )
    })?;
    let test_url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => bail!("KALP_CI_POSTGRES_ADMIN_URL must end in /<database>"),
    };
    let result = cargo(
        &["test", "--workspace", "--", "postgres"],
        &[
            ("KALP_TEST_POSTGRES_URL", &test_url),
            ("KALP_REQUIRE_POSTGRES", "1"),
            // .ci/run installs poppler-utils: the PDF checks may not skip here.
            ("KALP_REQUIRE_PDFTOTEXT", "1"),
        ],
    );
    let dropped = admin(
        &admin_url,
        &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
    );
    result?;
    dropped.context("could not drop the test database")
}

/// Runs one statement as PostgreSQL's administrator, with `psql` (the test database is made and
/// dropped outside the code under test).
fn admin(url: &str, sql: &str) -> Result<()> {
    let output = Command::new("psql")
        .args([
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--dbname",
            url,
        ])
        .args(["--command", sql])
        .output()
        .context("running psql (install postgresql-client)")?;
    if !output.status.success() {
        bail!(
            "psql could not run {sql}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Razorpay's own Python SDK, pointed at fake-razorpay by its base URL alone, must do what the
/// top-up journey needs (fake-razorpay/sdk-check/python_sdk.py). Required in CI; skipped locally
/// when python3 or pip is missing.
fn python_sdk_check() -> Result<()> {
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let has_python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_python {
        if in_ci {
            bail!("python3 is missing: CI checks fake-razorpay against Razorpay's Python SDK");
        }
        println!("skipped: python3 is not installed");
        return Ok(());
    }
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "razorpay",
        ])
        .status()
        .context("running pip")?;
    if !installed.success() {
        if in_ci {
            bail!("pip could not install the razorpay package");
        }
        println!("skipped: pip could not install the razorpay package");
        return Ok(());
    }
    // Build first (no time limit), then start the binary: `cargo run -p` alone may unify
    // features differently from the workspace build and recompile for minutes.
    cargo(
        &["build", "--quiet", "-p", "fake-razorpay", "-p", "web"],
        &[],
    )?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target"))
        });
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut fake = Command::new(target.join("debug/fake-razorpay"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .spawn()
        .context("starting fake-razorpay")?;
    let result = (|| {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed().as_secs() > 120 {
                bail!("fake-razorpay did not start listening on port {port}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let status = Command::new("python3")
            .args([
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../fake-razorpay/sdk-check/python_sdk.py"
                ),
                &format!("http://127.0.0.1:{port}"),
                "rzp_test_KalpDevKey0001",
                "kalp_dev_key_secret_not_for_production",
            ])
            .status()
            .context("running the SDK check")?;
        if !status.success() {
            bail!("Razorpay's Python SDK failed against fake-razorpay ({status})");
        }
        node_sdk_check(port, in_ci)
    })();
    let _ = fake.kill();
    let _ = fake.wait();
    result
}

/// The same for Razorpay's Node SDK (`razorpay` on npm), installed into a temporary folder.
fn node_sdk_check(port: u16, in_ci: bool) -> Result<()> {
    let has_node = ["node", "npm"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !has_node {
        if in_ci {
            bail!("node and npm are missing: CI checks fake-razorpay against Razorpay's Node SDK");
        }
        println!("skipped: node or npm is not installed");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("kalp-node-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let installed = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("razorpay@2")
            .status()
            .context("running npm")?;
        if !installed.success() {
            bail!("npm could not install the razorpay package");
        }
        let status = Command::new("node")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../fake-razorpay/sdk-check/node_sdk.js"
            ))
            .args([
                &format!("http://127.0.0.1:{port}"),
                "rzp_test_KalpDevKey0001",
                "kalp_dev_key_secret_not_for_production",
            ])
            .env("NODE_PATH", dir.join("node_modules"))
            .status()
            .context("running the Node SDK check")?;
        if !status.success() {
            bail!("Razorpay's Node SDK failed against fake-razorpay ({status})");
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
