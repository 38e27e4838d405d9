//! `cargo xtask e2e --browser`: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! through WebDriver) goes through the journey as a person would, by visible labels: sign up →
//! Billing → Top up → Amount → Add Credits → the checkout → UPI, Card (details, then OTP),
//! Netbanking and Wallet → back in Kalp Studio with the new balance on Billing, the Dashboard and
//! Credit History. A screenshot of every step goes to `target/e2e/`; any console error or broken
//! page fails the run.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::stack::{Stack, workspace};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    http: reqwest::Client,
    base: String,
    shots: PathBuf,
    step: usize,
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `'text'` as an XPath literal, for text with or without quotes.
fn literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!("concat('{}')", text.replace('\'', "', \"'\", '"))
    }
}

impl Driver {
    async fn start() -> Result<Driver> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !std::path::Path::new(path).exists() {
                bail!(
                    "{path} is missing: install Debian's {package} (apt-get install chromium chromium-driver)"
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let shots = workspace().join("target/e2e");
        std::fs::create_dir_all(&shots)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let session: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic"
                ]}
            }}}))
            .send()
            .await?
            .json()
            .await?;
        let id = session["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no WebDriver session: {session}"))?;
        Ok(Driver {
            base: format!("{base}/session/{id}"),
            http,
            shots,
            step: 0,
            child,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        request = request.json(&body.unwrap_or_else(|| json!({})));
        let answer: Value = request.send().await?.json().await?;
        if let Some(error) = answer["value"]["error"].as_str() {
            bail!("WebDriver {path}: {error}: {}", answer["value"]["message"]);
        }
        Ok(answer["value"].clone())
    }

    async fn goto(&self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    async fn script(&self, script: &str) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn text(&self) -> Result<String> {
        Ok(self
            .script("return document.body ? document.body.innerText : ''")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Waits until the page shows `text`, then checks for errors.
    async fn see(&self, text: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(page) = self.text().await
                && page.contains(text)
            {
                return self.no_errors().await;
            }
            if started.elapsed() > Duration::from_secs(15) {
                bail!(
                    "the page never showed {text:?}; it shows: {}",
                    self.text()
                        .await
                        .unwrap_or_default()
                        .chars()
                        .take(400)
                        .collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn no_errors(&self) -> Result<()> {
        let page = self.text().await?;
        for broken in ["Something went wrong", "Page not found", "Not allowed"] {
            if page.contains(broken) {
                bail!(
                    "a broken page: {}",
                    page.chars().take(300).collect::<String>()
                );
            }
        }
        let logs = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await
            .unwrap_or(Value::Null);
        let severe: Vec<String> = logs
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .filter(|m| !m.contains("favicon.ico"))
            .collect();
        if !severe.is_empty() {
            bail!("console errors: {severe:?}");
        }
        Ok(())
    }

    async fn find(&self, xpath: &str) -> Result<String> {
        let started = Instant::now();
        loop {
            match self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "xpath", "value": xpath})),
                )
                .await
            {
                Ok(found) => {
                    if let Some(id) = found
                        .as_object()
                        .and_then(|o| o.values().next())
                        .and_then(Value::as_str)
                    {
                        return Ok(id.to_string());
                    }
                }
                Err(e) if started.elapsed() > Duration::from_secs(15) => {
                    return Err(e.context(format!("nothing matches {xpath}")));
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the link or button whose visible text is (or starts with) `label`.
    async fn click(&self, label: &str) -> Result<()> {
        let l = literal(label);
        let xpath = format!(
            "(//a[normalize-space()={l} or starts-with(normalize-space(), {l})] | //button[normalize-space()={l} or starts-with(normalize-space(), {l})])[not(ancestor::*[@hidden])][1]"
        );
        let id = self.find(&xpath).await?;
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), None)
            .await
            .map(|_| ())
    }

    /// Types into the field whose label says `label`.
    async fn fill(&self, label: &str, text: &str) -> Result<()> {
        let xpath = format!(
            "//input[@id=//label[normalize-space()={}]/@for]",
            literal(label)
        );
        let id = self.find(&xpath).await?;
        self.call(reqwest::Method::POST, &format!("/element/{id}/clear"), None)
            .await?;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    async fn shot(&mut self, name: &str) -> Result<()> {
        self.step += 1;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default())?;
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&path, bytes)?;
        Ok(())
    }
}

/// One top-up through the browser, paying with `method`.
async fn top_up(d: &mut Driver, app: &str, method: &str, amount: &str) -> Result<()> {
    d.goto(&format!("{app}/dashboard")).await?;
    d.click("Billing").await?;
    d.see("My Credits").await?;
    d.shot(&format!("{method}-billing")).await?;
    d.click("Top up").await?;
    d.see("Add Credits").await?;
    d.fill("Amount", amount).await?;
    d.see("credits.").await?;
    d.shot(&format!("{method}-add-credits")).await?;
    // The modal's button (the page's own Top up link is outside it).
    let button = d.find("//dialog[@open]//button[normalize-space()='Add Credits'] | //form[contains(@class,'amount-form')]//button[normalize-space()='Add Credits']").await?;
    d.call(
        reqwest::Method::POST,
        &format!("/element/{button}/click"),
        None,
    )
    .await?;
    d.see("Payment Options").await?;
    tokio::time::sleep(Duration::from_millis(1200)).await; // past the loading screen
    d.shot(&format!("{method}-checkout")).await?;
    match method {
        "upi" => {
            d.click("UPI").await?;
            d.see("Pay with UPI").await?;
            d.fill("UPI ID", "success@razorpay").await?;
            d.shot("upi-id").await?;
            d.click("Pay ").await?;
        }
        "card" => {
            d.click("Card").await?;
            d.fill("Card Number", "4100 2800 0000 1007").await?;
            d.fill("Expiry (MM/YY)", "12/34").await?;
            d.fill("CVV", "123").await?;
            d.fill("Name on Card", "Asha Rao").await?;
            d.shot("card-details").await?;
            d.click("Pay ").await?;
            d.see("Enter OTP").await?;
            d.fill("OTP", "123456").await?;
            d.shot("card-otp").await?;
            d.click("Submit OTP").await?;
        }
        "netbanking" => {
            d.click("Netbanking").await?;
            d.click("HDFC Bank").await?;
            d.see("test page of HDFC Bank").await?;
            d.shot("netbanking-bank").await?;
            d.click("Success").await?;
        }
        "wallet" => {
            d.click("Wallet").await?;
            d.click("PayZapp").await?;
            d.see("test page of PayZapp").await?;
            d.shot("wallet-page").await?;
            d.click("Success").await?;
        }
        other => bail!("unknown method {other}"),
    }
    // Our confirmation (the checkout's own result page says "Payment successful" too).
    d.see("Credits added").await?;
    d.see("Payment successful").await?;
    d.shot(&format!("{method}-confirmation")).await?;
    Ok(())
}

pub async fn run() -> Result<()> {
    let stack = Stack::start()?;
    let mut d = Driver::start().await?;
    let app = stack.app.clone();
    println!("e2e --browser: headless Chromium against {app}; screenshots in target/e2e/");
    let result = async {
        d.goto(&format!("{app}/signup")).await?;
        d.see("Create your account").await?;
        d.fill("Email", "browser@e2e.example.com").await?;
        d.fill("Password", "correct horse battery").await?;
        d.shot("signup").await?;
        d.click("Sign up").await?;
        d.see("Dashboard").await?;
        for (method, amount) in [
            ("upi", "1000"),
            ("card", "500"),
            ("netbanking", "250"),
            ("wallet", "100"),
        ] {
            let started = Instant::now();
            top_up(&mut d, &app, method, amount)
                .await
                .with_context(|| format!("paying by {method}"))?;
            println!("  ok    {method:<12} {:>6.1?}", started.elapsed());
        }
        // 1,850 rupees at 10 credits a rupee.
        d.click("Billing").await?;
        d.see("18,500").await?;
        d.shot("billing-after").await?;
        d.click("Dashboard").await?;
        d.see("Credits for Email Services").await?;
        d.see("18,500").await?;
        d.shot("dashboard-after").await?;
        d.click("Credit History").await?;
        d.see("+10,000").await?;
        let history = d.text().await?;
        let rows = history.matches("Top-up #").count();
        if rows != 4 {
            bail!("Credit History shows {rows} top-ups, expected 4");
        }
        d.shot("credit-history").await?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = d.shot("failure").await;
    }
    result?;
    println!(
        "e2e --browser: 4 passed, 0 failed ({} screenshots in {})",
        d.step,
        PathBuf::from("target/e2e").display()
    );
    drop(stack);
    Ok(())
}
