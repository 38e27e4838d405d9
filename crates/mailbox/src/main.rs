//! `mailbox [--smtp ADDR] [--http ADDR]`: the development mailbox (see the library), by default
//! SMTP on 127.0.0.1:2525 (the app's development `email.smtp_url`) and its page on
//! 127.0.0.1:8025.

use anyhow::Context;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut smtp = "127.0.0.1:2525".to_string();
    let mut http = "127.0.0.1:8025".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smtp" => smtp = args.next().context("--smtp needs an address")?,
            "--http" => http = args.next().context("--http needs an address")?,
            other => anyhow::bail!("unknown argument {other}: mailbox [--smtp ADDR] [--http ADDR]"),
        }
    }
    let mailbox = mailbox::start(&smtp, &http)
        .await
        .with_context(|| format!("cannot listen on {smtp} or {http}"))?;
    println!(
        "mailbox: SMTP on {} (KALP__EMAIL__SMTP_URL={}), messages at {}",
        mailbox.smtp_addr,
        mailbox.smtp_url(),
        mailbox.page_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
