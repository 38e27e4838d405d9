//! `cargo xtask dev`: builds and runs fake-razorpay, the development mailbox (crates/mailbox:
//! every email the app sends lands on its page) and the web app wired together, with a demo
//! account, streaming their logs with prefixes; Ctrl-C stops all three.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

const DEMO_EMAIL: &str = "demo@kalp.studio";
const DEMO_PASSWORD: &str = "kalp-demo-password";
const DEMO_CREDITS: &str = "5000";

struct Options {
    port: u16,
    fake_port: u16,
    smtp_port: u16,
    mailbox_port: u16,
    database_url: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        port: 8000,
        fake_port: 9010,
        smtp_port: 2525,
        mailbox_port: 8025,
        database_url: None,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |name: &str| {
            rest.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .context("--port takes a port number")?
            }
            "--fake-port" => {
                options.fake_port = value("--fake-port")?
                    .parse()
                    .context("--fake-port takes a port number")?
            }
            "--smtp-port" => {
                options.smtp_port = value("--smtp-port")?
                    .parse()
                    .context("--smtp-port takes a port number")?
            }
            "--mailbox-port" => {
                options.mailbox_port = value("--mailbox-port")?
                    .parse()
                    .context("--mailbox-port takes a port number")?
            }
            "--database-url" => options.database_url = Some(value("--database-url")?),
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask dev [--port 8000] [--fake-port 9010] [--smtp-port 2525] [--mailbox-port 8025] [--database-url postgres://…]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown option {other:?} (try --help)"),
        }
    }
    Ok(options)
}

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn ensure_free(port: u16, what: &str, flag: &str) -> Result<()> {
    if TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!(
            "port {port} is taken, so {what} can't start there: stop whatever uses it, or pass {flag} <another port>"
        );
    }
    Ok(())
}

/// Runs a child with its output prefixed, line by line.
fn spawn_prefixed(mut command: Command, prefix: &'static str) -> Result<Child> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {prefix}"))?;
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("[{prefix}] {line}");
            }
        });
    }
    Ok(child)
}

fn wait_for(port: u16, what: &str) -> Result<()> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} did not start listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    ensure_free(options.port, "the web app", "--port")?;
    ensure_free(options.fake_port, "fake-razorpay", "--fake-port")?;
    ensure_free(
        options.smtp_port,
        "the mailbox's SMTP server",
        "--smtp-port",
    )?;
    ensure_free(options.mailbox_port, "the mailbox's page", "--mailbox-port")?;
    let root = workspace();
    println!("building fake-razorpay, the mailbox and the web app…");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "-p", "fake-razorpay", "-p", "mailbox", "-p", "web"])
        .status()?;
    if !built.success() {
        bail!("the build failed");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = |name: &str| target.join("debug").join(name);
    let database = match &options.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(root.join("data"))?;
            format!("sqlite://{}?mode=rwc", root.join("data/kalp.db").display())
        }
    };
    let app_url = format!("http://127.0.0.1:{}", options.port);
    let fake_url = format!("http://127.0.0.1:{}", options.fake_port);
    let smtp_url = format!("smtp://127.0.0.1:{}", options.smtp_port);
    let mailbox_url = format!("http://127.0.0.1:{}/", options.mailbox_port);
    let web_env = |command: &mut Command| {
        command
            .current_dir(root.join("web"))
            .env("KALP__SERVER__PORT", options.port.to_string())
            .env("KALP__SERVER__PUBLIC_URL", &app_url)
            .env("KALP__DATABASE__URL", &database)
            .env("KALP__RAZORPAY__BASE_URL", &fake_url)
            .env("KALP__EMAIL__SMTP_URL", &smtp_url);
    };
    // Migrations and the demo account, before either server starts.
    let mut seed = Command::new(bin("web"));
    web_env(&mut seed);
    let seeded = seed
        .args(["seed-demo", DEMO_EMAIL, DEMO_PASSWORD, DEMO_CREDITS])
        .status()
        .context("running web seed-demo")?;
    if !seeded.success() {
        bail!("could not prepare the database at {database}");
    }
    let mut fake = Command::new(bin("fake-razorpay"));
    fake.args(["--listen", &format!("127.0.0.1:{}", options.fake_port)])
        .args(["--webhook-url", &format!("{app_url}/webhooks/razorpay")]);
    let mut fake = spawn_prefixed(fake, "fake")?;
    wait_for(options.fake_port, "fake-razorpay")?;
    let mut mailbox = Command::new(bin("mailbox"));
    mailbox
        .args(["--smtp", &format!("127.0.0.1:{}", options.smtp_port)])
        .args(["--http", &format!("127.0.0.1:{}", options.mailbox_port)]);
    let mut mailbox = match spawn_prefixed(mailbox, "mail") {
        Ok(child) => child,
        Err(e) => {
            let _ = fake.kill();
            return Err(e);
        }
    };
    if let Err(e) = wait_for(options.smtp_port, "the mailbox") {
        let _ = fake.kill();
        let _ = mailbox.kill();
        return Err(e);
    }
    let mut web = Command::new(bin("web"));
    web_env(&mut web);
    let mut web = match spawn_prefixed(web, "web") {
        Ok(child) => child,
        Err(e) => {
            let _ = fake.kill();
            let _ = mailbox.kill();
            return Err(e);
        }
    };
    if let Err(e) = wait_for(options.port, "the web app") {
        let _ = fake.kill();
        let _ = mailbox.kill();
        let _ = web.kill();
        return Err(e);
    }
    println!();
    println!("  Kalp Credits      {app_url}");
    println!("  fake-razorpay     {fake_url}/_fake/   (orders, payments, webhooks)");
    println!(
        "  demo account      {DEMO_EMAIL} / {DEMO_PASSWORD}  ({DEMO_CREDITS} credits to start)"
    );
    println!("  mailbox           {mailbox_url}   (every email the app sends; SMTP at {smtp_url})");
    println!("  database          {database}");
    println!("  Ctrl-C stops all three.");
    println!();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if let Ok(Some(status)) = web.try_wait() {
                        println!("the web app stopped ({status})");
                        break;
                    }
                    if let Ok(Some(status)) = fake.try_wait() {
                        println!("fake-razorpay stopped ({status})");
                        break;
                    }
                    if let Ok(Some(status)) = mailbox.try_wait() {
                        println!("the mailbox stopped ({status})");
                        break;
                    }
                }
            }
        }
    });
    println!("stopping…");
    for child in [&mut web, &mut fake, &mut mailbox] {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}
