//! Test databases: a fresh SQLite file per test, or a fresh PostgreSQL schema per test when
//! `KALP_TEST_POSTGRES_URL` is set. With `KALP_REQUIRE_POSTGRES=1` (CI) a missing or unreachable
//! PostgreSQL fails the test instead of skipping it.
#![allow(dead_code)]

use ledger::{ConnectConfig, Ledger};

pub struct TestLedger {
    pub ledger: Ledger,
    /// How to open the same database again.
    pub config: ConnectConfig,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

pub async fn sqlite() -> TestLedger {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ledger.db").display()
    );
    let config = ConnectConfig::new(url);
    let ledger = Ledger::connect(&config).await.expect("open sqlite ledger");
    TestLedger {
        ledger,
        config,
        _dir: Some(dir),
        pg_cleanup: None,
    }
}

pub fn postgres_url() -> Option<String> {
    let url = std::env::var("KALP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let required = std::env::var("KALP_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if url.is_none() {
        assert!(
            !required,
            "KALP_REQUIRE_POSTGRES=1 but KALP_TEST_POSTGRES_URL is not set"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set KALP_TEST_POSTGRES_URL to run the PostgreSQL variant"
        );
    }
    url
}

pub async fn postgres() -> Option<TestLedger> {
    let url = postgres_url()?;
    let schema = format!(
        "t_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let mut config = ConnectConfig::new(url.clone());
    config.pg_schema = Some(schema.clone());
    config.pool_size = 16;
    let ledger = Ledger::connect(&config).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {} is unreachable: {e}",
            ledger::redact_url(&url)
        )
    });
    Some(TestLedger {
        ledger,
        config,
        _dir: None,
        pg_cleanup: Some((url, schema)),
    })
}

impl Drop for TestLedger {
    fn drop(&mut self) {
        // Drop the test's schema on a thread of its own: Drop can't await.
        if let Some((url, schema)) = self.pg_cleanup.take() {
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    use sea_orm::ConnectionTrait;
                    if let Ok(db) = sea_orm::Database::connect(url).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Runs an async scenario `fn(Ledger)` once on SQLite and once on PostgreSQL, as two tests named
/// `<scenario>::sqlite` and `<scenario>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let t = $crate::common::sqlite().await;
                super::$scenario(t.ledger.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(t) = $crate::common::postgres().await else { return };
                super::$scenario(t.ledger.clone()).await;
            }
        }
    )+};
}

pub fn key(s: impl Into<String>) -> ledger::IdempotencyKey {
    ledger::IdempotencyKey::new(s).expect("valid key")
}

pub fn credits(n: i64) -> ledger::Credits {
    ledger::Credits::new(n).expect("positive credits")
}

pub async fn assert_audit_clean(ledger: &Ledger) {
    let report = ledger.audit().await.expect("audit runs");
    assert!(report.is_clean(), "audit found problems:\n{report}");
}

/// The runtime a property test's cases run on (proptest's closures are synchronous).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Wallets `user:0` … `user:{n-1}`.
pub async fn open_wallets(ledger: &Ledger, n: usize) -> Vec<ledger::AccountId> {
    let mut wallets = Vec::with_capacity(n);
    for i in 0..n {
        wallets.push(
            ledger
                .open_wallet(&format!("user:{i}"))
                .await
                .expect("wallet"),
        );
    }
    wallets
}
