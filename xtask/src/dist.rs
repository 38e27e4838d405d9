//! `cargo xtask dist`: release binaries and a tarball to deploy (docs/operations.md):
//! `bin/web`, `bin/fake-razorpay`, the default settings for reference, a systemd unit and an
//! example environment file, packed with the system's `tar`.

use std::{fs, process::Command};

use anyhow::{Context, Result, bail};

use crate::stack::{build_release, release_bin, workspace};

const UNIT: &str = "[Unit]
Description=Kalp Credits (prepaid credits for Kalp Studio's Email and SMS)
After=network-online.target
Wants=network-online.target

[Service]
User=kalp
Group=kalp
EnvironmentFile=/etc/kalp-credits.env
WorkingDirectory=/var/lib/kalp-credits
ExecStart=/opt/kalp-credits/bin/web serve
# SIGTERM: stop accepting, finish requests, the charge batcher and the workers.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=2
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths=/var/lib/kalp-credits
PrivateTmp=true

[Install]
WantedBy=multi-user.target
";

const ENV_EXAMPLE: &str =
    "# /etc/kalp-credits.env: every setting is KALP__SECTION__KEY (docs/operations.md).
KALP__ENVIRONMENT=production
KALP__SERVER__HOST=127.0.0.1
KALP__SERVER__PORT=8000
KALP__SERVER__PUBLIC_URL=https://credits.example.com
KALP__DATABASE__URL=sqlite:///var/lib/kalp-credits/kalp.db?mode=rwc
KALP__RAZORPAY__BASE_URL=https://api.razorpay.com
KALP__RAZORPAY__KEY_ID=rzp_test_…
KALP__RAZORPAY__KEY_SECRET=…
KALP__RAZORPAY__WEBHOOK_SECRET=…
KALP__RAZORPAY__RECEIPT_PREFIX=staging-
KALP__LOG__FORMAT=json
KALP__METRICS__TOKEN=…
KALP__GST__SELLER_LEGAL_NAME=…
KALP__GST__SELLER_ADDRESS=…
KALP__GST__SELLER_STATE_CODE=27
KALP__GST__SELLER_GSTIN=…
KALP__EMAIL__SMTP_URL=smtps://user:password@smtp.example.com:465
KALP__EMAIL__FROM=Kalp Studio <billing@example.com>
";

pub fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask dist");
    }
    build_release()?;
    let manifest = fs::read_to_string(workspace().join("web/Cargo.toml"))?;
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .context("web/Cargo.toml has no version")?;
    let name = format!("kalp-credits-{version}");
    let dist = release_bin("")
        .parent()
        .map(|p| p.join("dist"))
        .context("target dir")?;
    let root = dist.join(&name);
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(root.join("bin"))?;
    fs::create_dir_all(root.join("config"))?;
    for bin in ["web", "fake-razorpay"] {
        fs::copy(release_bin(bin), root.join("bin").join(bin))
            .with_context(|| format!("copying {bin}"))?;
    }
    fs::copy(
        workspace().join("web/config/base.toml"),
        root.join("config/base.toml"),
    )?;
    fs::write(root.join("kalp-credits.service"), UNIT)?;
    fs::write(root.join("kalp-credits.env.example"), ENV_EXAMPLE)?;
    fs::copy(
        workspace().join("docs/operations.md"),
        root.join("OPERATIONS.md"),
    )?;
    let tarball = dist.join(format!("{name}.tar.gz"));
    let packed = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dist)
        .arg(&name)
        .status()
        .context("running tar")?;
    if !packed.success() {
        bail!("tar failed");
    }
    let size = fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
    println!("{} ({:.1} MB)", tarball.display(), size as f64 / 1e6);
    Ok(())
}
