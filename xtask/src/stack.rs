//! The stack the end-to-end runs, the browser journey, the benchmarks and the storms start:
//! fake-razorpay and the web app as child processes, the binaries they run, and waiting for a
//! port.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// fake-razorpay and the web app, as child processes.
pub struct Stack {
    pub app: String,
    pub fake: String,
    port: u16,
    database: String,
    /// Settings the web app runs with beyond the defaults (a scenario's price change).
    settings: Vec<(String, String)>,
    web: Option<Child>,
    fake_child: Child,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bin(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    target.join("debug").join(name)
}

pub fn wait_for(port: u16, what: &str) -> Result<()> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} did not start on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

impl Stack {
    pub fn start() -> Result<Stack> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "-q", "-p", "fake-razorpay", "-p", "web"])
            .status()?;
        if !built.success() {
            bail!("the build failed");
        }
        let dir = std::env::temp_dir().join(format!("kalp-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let database = format!("sqlite://{}?mode=rwc", dir.join("kalp.db").display());
        let (port, fake_port) = (free_port()?, free_port()?);
        let app = format!("http://127.0.0.1:{port}");
        let fake = format!("http://127.0.0.1:{fake_port}");
        let fake_child = Command::new(bin("fake-razorpay"))
            .args([
                "--listen",
                &format!("127.0.0.1:{fake_port}"),
                "--webhook-url",
                &format!("{app}/webhooks/razorpay"),
            ])
            .args(["--webhook-backoff-ms", "100", "--webhook-max-attempts", "8"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting fake-razorpay")?;
        let mut stack = Stack {
            app,
            fake,
            port,
            database,
            settings: Vec::new(),
            web: None,
            fake_child,
            _dir: TempDir(dir),
        };
        wait_for(fake_port, "fake-razorpay")?;
        stack.start_web()?;
        Ok(stack)
    }

    fn web_command(&self) -> Command {
        let mut command = Command::new(bin("web"));
        command
            .env("KALP__SERVER__PORT", self.port.to_string())
            .env("KALP__SERVER__PUBLIC_URL", &self.app)
            .env("KALP__DATABASE__URL", &self.database)
            .env("KALP__RAZORPAY__BASE_URL", &self.fake)
            .env("KALP__RECONCILE__INTERVAL_SECS", "0")
            .env("KALP__RECONCILE__MIN_AGE_SECS", "0")
            // No SMTP server here: emails wait in the outbox (web/tests/emails.rs sends them).
            .env("KALP__EMAIL__SMTP_URL", "")
            .env("KALP_CONFIG_DIR", "/nonexistent")
            .env("RUST_LOG", "warn")
            .envs(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// True when the web app runs with settings beyond the defaults.
    pub fn has_custom_settings(&self) -> bool {
        !self.settings.is_empty()
    }

    /// Restarts the web app with `name=value` among its settings (`None`: back to defaults).
    pub fn restart_with(&mut self, setting: Option<(&str, String)>) -> Result<()> {
        self.settings.clear();
        if let Some((name, value)) = setting {
            self.settings.push((name.to_string(), value));
        }
        self.restart()
    }

    fn start_web(&mut self) -> Result<()> {
        let child = self
            .web_command()
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the web app")?;
        self.web = Some(child);
        wait_for(self.port, "the web app")
    }

    /// Kills the web app with SIGKILL and starts it again on the same database.
    pub fn restart(&mut self) -> Result<()> {
        if let Some(mut web) = self.web.take() {
            let _ = web.kill();
            let _ = web.wait();
        }
        self.start_web()
    }

    /// Runs `web <command>` against the stack's database; true when it exits 0.
    pub fn web_tool(&self, args: &[&str]) -> Result<bool> {
        Ok(self
            .web_command()
            .args(args)
            .stdout(Stdio::null())
            .status()?
            .success())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut web) = self.web.take() {
            let _ = web.kill();
            let _ = web.wait();
        }
        let _ = self.fake_child.kill();
        let _ = self.fake_child.wait();
    }
}

/// Where `KALP_BENCH_BINARIES` points: a directory holding another build's `web` and
/// `fake-razorpay`, for comparing that build with this one under the same driver (issue 17's
/// A/B runs, docs/benchmarks.md). Nothing is built then.
fn other_binaries() -> Option<std::path::PathBuf> {
    std::env::var_os("KALP_BENCH_BINARIES").map(Into::into)
}

/// xtask, the web app and fake-razorpay, optimised (unless `KALP_BENCH_BINARIES` names others).
pub fn build_release() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if let Some(dir) = other_binaries() {
        println!("using the web app and fake-razorpay in {}", dir.display());
        return Ok(());
    }
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

pub fn release_bin(name: &str) -> std::path::PathBuf {
    if let Some(dir) = other_binaries().filter(|_| matches!(name, "web" | "fake-razorpay")) {
        return dir.join(name);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| workspace().join("target"));
    target.join("release").join(name)
}

/// A child process killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
