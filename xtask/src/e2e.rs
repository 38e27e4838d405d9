//! `cargo xtask e2e`: starts fake-razorpay and the web app on free ports (a fresh SQLite
//! database) and runs every scenario in `fixtures/scenarios/` over HTTP, driving payments with
//! the fake's `/_fake/orders/{id}/pay`. One progress line per scenario, a summary, and a non-zero
//! exit with what differed when anything fails. `--browser` drives headless Chromium instead.
//!
//! It stays one file: a scenario's every action (`do = "…"` in the TOML) beside the checks its
//! `[expect]` table names.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    html::{csrf_of, field, hidden_fields},
    stack::{Stack, workspace},
};

/// fake-razorpay's development credentials, which the stack's web app uses too.
const DEV_KEY_ID: &str = "rzp_test_KalpDevKey0001";
const DEV_KEY_SECRET: &str = "kalp_dev_key_secret_not_for_production";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    pub amount: String,
    #[serde(default)]
    pub faults: Option<toml::Table>,
    #[serde(default)]
    pub step: Vec<ScenarioStep>,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioStep {
    #[serde(rename = "do")]
    pub action: String,
    // pay
    pub method: Option<String>,
    pub vpa: Option<String>,
    pub number: Option<String>,
    pub otp: Option<String>,
    pub bank: Option<String>,
    pub wallet: Option<String>,
    pub outcome: Option<String>,
    pub late_authorization: Option<bool>,
    pub close_tab: Option<bool>,
    /// Pay even though the order is paid: a second payment both the bank and Razorpay accepted.
    pub second_payment: Option<bool>,
    // authorize, resolve, process_refund: which payment or refund of this scenario (1-based;
    // the latest when left out)
    pub nth: Option<usize>,
    // wait
    pub ms: Option<u64>,
    // set_price
    pub paise_per_credit: Option<i64>,
    // callback
    pub times: Option<u32>,
    // check
    pub balance: Option<i64>,
    pub page: Option<String>,
    // new_topup
    pub amount: Option<String>,
    // refund
    pub amount_paise: Option<i64>,
    // race
    pub count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub balance: i64,
    pub history_rows: usize,
    pub page: Option<String>,
    /// Text the top-up's page must not show (a stranger's words).
    pub page_lacks: Option<String>,
    /// Text Credit History must show.
    pub history_contains: Option<String>,
    pub deliveries_at_least: Option<usize>,
    #[serde(default)]
    pub audit_clean: bool,
}

/// One customer going through one scenario.
struct Run<'a> {
    stack: &'a mut Stack,
    client: reqwest::Client,
    email: String,
    order: String,
    topup_path: String,
    callback_url: String,
    cancel_url: String,
    answer: Value,
    /// Every payment and refund this scenario made, in order.
    payments: Vec<String>,
    refunds: Vec<String>,
    differences: Vec<String>,
}

fn browser_client() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

impl Run<'_> {
    async fn get(&self, path: &str) -> Result<String> {
        Ok(self
            .client
            .get(format!("{}{path}", self.stack.app))
            .send()
            .await?
            .text()
            .await?)
    }

    async fn sign_up(&mut self) -> Result<()> {
        let page = self.get("/signup").await?;
        let response = self
            .client
            .post(format!("{}/signup", self.stack.app))
            .form(&[
                ("csrf", csrf_of(&page)?.as_str()),
                ("email", self.email.as_str()),
                ("password", "correct horse battery"),
            ])
            .send()
            .await?;
        if response.status() != 303 {
            bail!("sign-up answered {}", response.status());
        }
        Ok(())
    }

    async fn new_topup(&mut self, amount: &str) -> Result<()> {
        let form = self.get("/billing/topup").await?;
        let response = self
            .client
            .post(format!("{}/billing/topups", self.stack.app))
            .form(&[("csrf", csrf_of(&form)?.as_str()), ("amount", amount)])
            .send()
            .await?;
        if response.status() != 200 {
            bail!("Add Credits answered {}", response.status());
        }
        let fields = hidden_fields(&response.text().await?);
        self.order = field(&fields, "order_id");
        self.callback_url = field(&fields, "callback_url");
        self.cancel_url = field(&fields, "cancel_url");
        self.topup_path = self
            .callback_url
            .trim_start_matches(&self.stack.app)
            .trim_end_matches("/callback")
            .to_string();
        Ok(())
    }

    fn pay_body(step: &ScenarioStep) -> Value {
        let mut body = json!({"method": step.method.clone().unwrap_or_else(|| "upi".into())});
        for (key, value) in [
            ("vpa", &step.vpa),
            ("number", &step.number),
            ("otp", &step.otp),
            ("bank", &step.bank),
            ("wallet", &step.wallet),
            ("outcome", &step.outcome),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        for (key, value) in [
            ("late_authorization", step.late_authorization),
            ("close_tab", step.close_tab),
            ("second_payment", step.second_payment),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        body
    }

    async fn pay(&mut self, step: &ScenarioStep) -> Result<()> {
        let response = self
            .client
            .post(format!(
                "{}/_fake/orders/{}/pay",
                self.stack.fake, self.order
            ))
            .json(&Self::pay_body(step))
            .send()
            .await?;
        let status = response.status();
        self.answer = response.json().await?;
        if status != 200 {
            bail!("the fake refused the payment: {}", self.answer);
        }
        if let Some(id) = self.answer["payment"]["id"].as_str() {
            self.payments.push(id.to_string());
        }
        Ok(())
    }

    /// The `nth` (1-based) of `items`, or the latest.
    fn pick<'a>(items: &'a [String], nth: Option<usize>, what: &str) -> Result<&'a str> {
        let index = match nth {
            Some(n) => n.checked_sub(1).context("nth counts from 1")?,
            None => items
                .len()
                .checked_sub(1)
                .context(format!("no {what} yet"))?,
        };
        items
            .get(index)
            .map(String::as_str)
            .with_context(|| format!("there is no {what} number {}", index + 1))
    }

    /// Someone without an account posts failure fields for this top-up, with words of their
    /// own and a payment of another order named in `error[metadata]`. Nothing may change.
    async fn stranger_failure(&mut self) -> Result<()> {
        let receipt = format!("stranger_{}", self.order);
        let order: Value = self
            .client
            .post(format!("{}/v1/orders", self.stack.fake))
            .basic_auth(DEV_KEY_ID, Some(DEV_KEY_SECRET))
            .json(&json!({"amount": 10_000, "currency": "INR", "receipt": receipt}))
            .send()
            .await?
            .json()
            .await?;
        let other = order["id"].as_str().context("the fake made no order")?;
        let paid: Value = self
            .client
            .post(format!("{}/_fake/orders/{other}/pay", self.stack.fake))
            .json(&json!({"method": "upi", "vpa": "success@razorpay", "close_tab": true}))
            .send()
            .await?
            .json()
            .await?;
        let named = paid["payment"]["id"]
            .as_str()
            .unwrap_or("pay_000000000000000");
        let words = "Call +91 90000 00000 or pay at http://evil.example";
        let response = browser_client()?
            .post(&self.callback_url)
            .form(&[
                ("error[code]", "BAD_REQUEST_ERROR"),
                ("error[description]", words),
                ("error[reason]", words),
                (
                    "error[metadata]",
                    &json!({"payment_id": named, "order_id": self.order}).to_string(),
                ),
            ])
            .send()
            .await?;
        let status = response.status();
        let page = response.text().await?;
        if status != 200 || !page.contains("The payment did not complete") {
            self.differences
                .push(format!("a stranger's failure post answered {status}"));
        }
        if page.contains("evil.example") {
            self.differences
                .push("the answer to a stranger repeats their words".into());
        }
        Ok(())
    }

    async fn callback(&self, fields: &Value, url: &str) -> Result<u16> {
        let form: Vec<(String, String)> = fields
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        // A cross-site POST carries none of our cookies.
        Ok(browser_client()?
            .post(url)
            .form(&form)
            .send()
            .await?
            .status()
            .as_u16())
    }

    async fn balance(&self) -> Result<i64> {
        let page = self.get("/billing").await?;
        let marker = "data-testid=\"balance\">";
        let start = page.find(marker).context("no balance on Billing")? + marker.len();
        let text: String = page[start..]
            .split('<')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        Ok(text.parse()?)
    }

    async fn wait_webhooks(&self) -> Result<()> {
        let started = Instant::now();
        loop {
            let log: Value = self
                .client
                .get(format!("{}/_fake/webhooks", self.stack.fake))
                .send()
                .await?
                .json()
                .await?;
            let pending = log
                .as_array()
                .map(|a| a.iter().filter(|d| d["status"] == "pending").count())
                .unwrap_or(0);
            if pending == 0 {
                // Give the app's inbox worker a moment to process what was delivered.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("{pending} webhook deliveries still pending after 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn check(&mut self, what: &str, balance: Option<i64>, page: Option<&str>) -> Result<()> {
        if let Some(expected) = balance {
            let got = self.balance().await?;
            if got != expected {
                self.differences
                    .push(format!("{what}: balance {got}, expected {expected}"));
            }
        }
        if let Some(text) = page {
            let shown = self.get(&self.topup_path.clone()).await?;
            if !shown.contains(text) {
                self.differences
                    .push(format!("{what}: the top-up page does not say {text:?}"));
            }
        }
        Ok(())
    }

    async fn step(&mut self, step: &ScenarioStep, amount: &str) -> Result<()> {
        match step.action.as_str() {
            "pay" => self.pay(step).await,
            "new_topup" => {
                self.new_topup(step.amount.as_deref().unwrap_or(amount))
                    .await
            }
            "callback" => {
                for _ in 0..step.times.unwrap_or(1) {
                    if self.answer["callback"].is_null() {
                        bail!("no callback fields: the tab was closed");
                    }
                    let fields = self.answer["callback"].clone();
                    let status = self.callback(&fields, &self.callback_url.clone()).await?;
                    // A signed success goes on to the top-up's page; a failure (unsigned) gets
                    // a neutral page of its own.
                    let expected = if fields["razorpay_signature"].is_string() {
                        303
                    } else {
                        200
                    };
                    if status != expected {
                        self.differences.push(format!(
                            "the callback answered {status}, expected {expected}"
                        ));
                    }
                }
                Ok(())
            }
            "forge_callback" => {
                let payment = self.answer["payment"]["id"]
                    .as_str()
                    .unwrap_or("pay_FAKEFAKEFAKE01")
                    .to_string();
                let forged = json!({"razorpay_payment_id": payment, "razorpay_order_id": self.order, "razorpay_signature": "0".repeat(64)});
                let status = self.callback(&forged, &self.callback_url.clone()).await?;
                if status != 400 {
                    self.differences
                        .push(format!("a forged callback answered {status}, not 400"));
                }
                Ok(())
            }
            "cancel" => {
                // Razorpay's cancel_url is a GET: a page offering Cancel this top-up, a form.
                let page = self
                    .client
                    .get(&self.cancel_url)
                    .send()
                    .await?
                    .text()
                    .await?;
                let response = self
                    .client
                    .post(&self.cancel_url)
                    .form(&[("csrf", csrf_of(&page)?)])
                    .send()
                    .await?;
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let billing = self.get(&location).await?;
                if !billing.contains("Payment cancelled") {
                    self.differences
                        .push("Billing does not say the payment was cancelled".into());
                }
                Ok(())
            }
            "wait_webhooks" => self.wait_webhooks().await,
            "webhooks_off" => self.fake_config(json!({"webhook_url": null})).await,
            "webhooks_on" => {
                self.fake_config(
                    json!({"webhook_url": format!("{}/webhooks/razorpay", self.stack.app)}),
                )
                .await
            }
            "authorize" => {
                let payment = Self::pick(&self.payments, step.nth, "payment")?.to_string();
                let response = self
                    .client
                    .post(format!(
                        "{}/_fake/payments/{payment}/authorize",
                        self.stack.fake
                    ))
                    .send()
                    .await?;
                if response.status() != 200 {
                    bail!("late authorisation refused: {}", response.text().await?);
                }
                Ok(())
            }
            "refund" => {
                let payment = self.answer["payment"]["id"]
                    .as_str()
                    .context("no payment to refund")?
                    .to_string();
                let mut body = json!({});
                if let Some(amount) = step.amount_paise {
                    body["amount"] = json!(amount);
                }
                let response = self
                    .client
                    .post(format!("{}/v1/payments/{payment}/refund", self.stack.fake))
                    .basic_auth(DEV_KEY_ID, Some(DEV_KEY_SECRET))
                    .json(&body)
                    .send()
                    .await?;
                if response.status() != 200 {
                    bail!("the refund was refused: {}", response.text().await?);
                }
                let refund: Value = response.json().await?;
                if let Some(id) = refund["id"].as_str() {
                    self.refunds.push(id.to_string());
                }
                Ok(())
            }
            "resolve" => {
                let payment = Self::pick(&self.payments, step.nth, "payment")?.to_string();
                let outcome = step.outcome.clone().unwrap_or_else(|| "complete".into());
                self.fake_control(
                    &format!("/_fake/payments/{payment}/resolve"),
                    json!({ "outcome": outcome }),
                )
                .await
            }
            "process_refund" => {
                let refund = Self::pick(&self.refunds, step.nth, "refund")?.to_string();
                let outcome = step.outcome.clone().unwrap_or_else(|| "processed".into());
                self.fake_control(
                    &format!("/_fake/refunds/{refund}/process"),
                    json!({ "outcome": outcome }),
                )
                .await
            }
            "wait" => {
                tokio::time::sleep(Duration::from_millis(step.ms.unwrap_or(500))).await;
                Ok(())
            }
            "set_price" => {
                let price = step
                    .paise_per_credit
                    .context("set_price needs paise_per_credit")?;
                self.stack
                    .restart_with(Some(("KALP__BILLING__PAISE_PER_CREDIT", price.to_string())))
            }
            "stranger_failure" => self.stranger_failure().await,
            "restart" => self.stack.restart(),
            "reconcile" => {
                if !self.stack.web_tool(&["reconcile"])? {
                    self.differences.push("web reconcile failed".into());
                }
                Ok(())
            }
            "race" => {
                let count = step.count.unwrap_or(2);
                let mut top_ups = Vec::new();
                for _ in 0..count {
                    self.new_topup(amount).await?;
                    top_ups.push((self.order.clone(), self.callback_url.clone()));
                }
                let mut tasks = Vec::new();
                for (order, callback) in top_ups {
                    let (client, fake) = (self.client.clone(), self.stack.fake.clone());
                    tasks.push(tokio::spawn(async move {
                        let answer: Value = client
                            .post(format!("{fake}/_fake/orders/{order}/pay"))
                            .json(&json!({"method": "upi", "vpa": "success@razorpay"}))
                            .send()
                            .await?
                            .json()
                            .await?;
                        let form: Vec<(String, String)> = answer["callback"]
                            .as_object()
                            .map(|o| {
                                o.iter()
                                    .map(|(k, v)| {
                                        (k.clone(), v.as_str().unwrap_or_default().to_string())
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        browser_client()?.post(&callback).form(&form).send().await?;
                        anyhow::Ok(())
                    }));
                }
                for task in tasks {
                    task.await??;
                }
                Ok(())
            }
            "check" => {
                self.check("check", step.balance, step.page.as_deref())
                    .await
            }
            other => bail!("unknown step {other:?}"),
        }
    }

    /// A control call on the fake that must succeed.
    async fn fake_control(&self, path: &str, body: Value) -> Result<()> {
        let response = self
            .client
            .post(format!("{}{path}", self.stack.fake))
            .json(&body)
            .send()
            .await?;
        if response.status() != 200 {
            bail!("the fake refused {path}: {}", response.text().await?);
        }
        Ok(())
    }

    async fn fake_config(&self, body: Value) -> Result<()> {
        self.client
            .post(format!("{}/_fake/config", self.stack.fake))
            .json(&body)
            .send()
            .await?;
        Ok(())
    }
}

async fn run_scenario(stack: &mut Stack, name: &str, scenario: &Scenario) -> Result<Vec<String>> {
    let client = browser_client()?;
    // Faults apply to this scenario only.
    let faults = scenario
        .faults
        .clone()
        .map(serde_json::to_value)
        .transpose()?
        .unwrap_or_else(|| json!({}));
    let response = client
        .post(format!("{}/_fake/faults", stack.fake))
        .json(&faults)
        .send()
        .await?;
    if response.status() != 200 {
        bail!("the fake refused the faults: {}", response.text().await?);
    }
    // Webhooks on, whatever the previous scenario did.
    client
        .post(format!("{}/_fake/config", stack.fake))
        .json(&json!({"webhook_url": format!("{}/webhooks/razorpay", stack.app)}))
        .send()
        .await?;
    let mut run = Run {
        email: format!("{}@e2e.example.com", name.replace('_', "-")),
        stack,
        client,
        order: String::new(),
        topup_path: String::new(),
        callback_url: String::new(),
        cancel_url: String::new(),
        answer: Value::Null,
        payments: Vec::new(),
        refunds: Vec::new(),
        differences: Vec::new(),
    };
    run.sign_up().await?;
    run.new_topup(&scenario.amount).await?;
    for (i, step) in scenario.step.iter().enumerate() {
        run.step(step, &scenario.amount)
            .await
            .with_context(|| format!("step {} ({})", i + 1, step.action))?;
    }
    let expect = &scenario.expect;
    run.check("end", Some(expect.balance), expect.page.as_deref())
        .await?;
    if let Some(text) = &expect.page_lacks {
        let shown = run.get(&run.topup_path.clone()).await?;
        if shown.contains(text.as_str()) {
            run.differences
                .push(format!("the top-up page shows {text:?}"));
        }
    }
    if let Some(text) = &expect.history_contains {
        let shown = run.get("/billing/history").await?;
        if !shown.contains(text.as_str()) {
            run.differences
                .push(format!("Credit History does not say {text:?}"));
        }
    }
    let csv = run.get("/billing/history.csv?type=topups").await?;
    let rows = csv.lines().count().saturating_sub(1);
    if rows != expect.history_rows {
        run.differences.push(format!(
            "Credit History shows {rows} top-up row(s), expected {}",
            expect.history_rows
        ));
    }
    if let Some(at_least) = expect.deliveries_at_least {
        let log: Value = run
            .client
            .get(format!("{}/_fake/webhooks", run.stack.fake))
            .send()
            .await?
            .json()
            .await?;
        let order = run.order.clone();
        let n = log
            .as_array()
            .map(|a| a.iter().filter(|d| d["order_id"] == order.as_str()).count())
            .unwrap_or(0);
        if n < at_least {
            run.differences.push(format!(
                "{n} webhook deliveries for the order, expected at least {at_least}"
            ));
        }
    }
    if expect.audit_clean && !run.stack.web_tool(&["audit", "--days", "1"])? {
        run.differences.push("`web audit` found differences".into());
    }
    let differences = std::mem::take(&mut run.differences);
    // A scenario that changed the app's settings leaves the next one the defaults.
    if stack.has_custom_settings() {
        stack.restart_with(None)?;
    }
    Ok(differences)
}

pub fn load_scenarios(dir: &Path) -> Result<Vec<(String, Scenario)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("scenario")
                .to_string();
            let text = std::fs::read_to_string(&path)?;
            let scenario: Scenario = toml::from_str(&text)
                .with_context(|| format!("{} is not a valid scenario", path.display()))?;
            Ok((name, scenario))
        })
        .collect()
}

pub fn run(args: &[String]) -> Result<()> {
    let browser = match args {
        [] => false,
        [flag] if flag == "--browser" => true,
        _ => bail!("usage: cargo xtask e2e [--browser]"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if browser {
        return runtime.block_on(crate::browser::run());
    }
    let scenarios = load_scenarios(&workspace().join("fixtures/scenarios"))?;
    let mut stack = Stack::start()?;
    println!(
        "e2e: {} scenarios against {} (fake-razorpay {})",
        scenarios.len(),
        stack.app,
        stack.fake
    );
    let mut failed = Vec::new();
    let started = Instant::now();
    for (name, scenario) in &scenarios {
        let t = Instant::now();
        let outcome = runtime.block_on(run_scenario(&mut stack, name, scenario));
        match outcome {
            Ok(differences) if differences.is_empty() => {
                println!(
                    "  ok    {name:<36} {:>6.1?}  {}",
                    t.elapsed(),
                    scenario.description
                );
            }
            Ok(differences) => {
                println!(
                    "  FAIL  {name:<36} {:>6.1?}  {}",
                    t.elapsed(),
                    scenario.description
                );
                for d in &differences {
                    println!("          - {d}");
                }
                failed.push(name.clone());
            }
            Err(e) => {
                println!("  FAIL  {name:<36} {:>6.1?}  {e:#}", t.elapsed());
                failed.push(name.clone());
            }
        }
    }
    let passed = scenarios.len() - failed.len();
    println!(
        "e2e: {passed} passed, {} failed in {:.1?}",
        failed.len(),
        started.elapsed()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("failed scenarios: {}", failed.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_parses() {
        let scenarios =
            load_scenarios(&workspace().join("fixtures/scenarios")).expect("scenarios load");
        assert!(scenarios.len() >= 30, "{} scenarios", scenarios.len());
    }
}
