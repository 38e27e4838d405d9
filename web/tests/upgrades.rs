//! A database made by an earlier version keeps what it stored. Here: the answers to API charges,
//! which moved from (user, `Idempotency-Key`) to the ledger transfer they answer for. A client
//! retrying a charge made before the upgrade still gets its original answer and is not charged
//! again.

mod common;

use std::time::Duration;

use ledger::{ConnectConfig, Credits, IdempotencyKey, Ledger};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use sea_orm_migration::MigratorTrait;
use web::{
    api::{
        batcher::{Answer, Charger, Record},
        charges::ledger_key,
    },
    store::migrations::WebMigrator,
};

/// The earlier version's own connection: it wrote its tables directly.
async fn earlier_version(config: &ConnectConfig) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(config.url.clone());
    if let Some(schema) = &config.pg_schema {
        options.set_schema_search_path(schema.clone());
    }
    sea_orm::Database::connect(options)
        .await
        .expect("the earlier version's connection")
}

async fn exec(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    db.execute_raw(ledger::statement(db.get_database_backend(), sql, values))
        .await
        .expect(sql);
}

async fn charge_answers_survive_the_move_to_their_transfer(config: ConnectConfig) {
    let ledger = Ledger::connect(&config).await.expect("ledger");
    let db = earlier_version(&config).await;
    WebMigrator::up(&db, Some(1))
        .await
        .expect("the first web migration only");

    // What the earlier version stored for one charge: the debit, and its answer by client key.
    let wallet = ledger
        .open_wallet("user:asha@example.com")
        .await
        .expect("wallet");
    exec(
        &db,
        "INSERT INTO web_users (email, password_hash, wallet_account_id, created_at) VALUES (?, 'x', ?, 0)",
        vec!["asha@example.com".into(), wallet.0.into()],
    )
    .await;
    let user_id: i64 = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM web_users",
        ))
        .await
        .expect("read")
        .expect("the user")
        .try_get("", "id")
        .expect("id");
    ledger
        .credit(ledger::Credit {
            wallet,
            amount: Credits::new(100).expect("credits"),
            kind: ledger::CreditKind::Grant,
            key: IdempotencyKey::new("grant-1").expect("key"),
            reference: None,
            memo: None,
            expires_at: None,
        })
        .await
        .expect("grant");
    let debit = ledger::Debit {
        wallet,
        amount: Credits::new(10).expect("credits"),
        kind: ledger::DebitKind::UsageEmail,
        key: IdempotencyKey::new(ledger_key(user_id, "batch-1")).expect("key"),
        reference: None,
        memo: None,
    };
    let charged = ledger.debit(debit.clone()).await.expect("charge");
    let original = format!(r#"{{"id":"chg_{}","credits":10}}"#, charged.transfer.id.0);
    exec(
        &db,
        "INSERT INTO web_charges (user_id, idempotency_key, request_hash, status, response, created_at) \
         VALUES (?, 'batch-1', 'hash-1', 201, ?, 0)",
        vec![user_id.into(), original.clone().into()],
    )
    .await;
    db.close().await.expect("the earlier version stops");

    web::store::migrations::apply(&ledger)
        .await
        .expect("the later migrations");

    let db = earlier_version(&config).await;
    assert!(
        db.execute_unprepared("SELECT COUNT(*) FROM web_charges")
            .await
            .is_err(),
        "the old table is gone"
    );
    let charger = Charger::start(ledger.clone(), Duration::from_micros(200), 64);
    let retry = |hash: &str| Record {
        user_id,
        request_hash: hash.into(),
        answer: Box::new(|_, _| "a new answer".into()),
    };
    match charger.charge(debit.clone(), Some(retry("hash-1"))).await {
        Ok(Answer::Stored { status, body }) => assert_eq!((status, body), (201, original)),
        Ok(_) => panic!("the retry was not answered from the stored answer"),
        Err(e) => panic!("the retry failed: {e}"),
    }
    assert!(
        matches!(
            charger.charge(debit, Some(retry("hash-2"))).await,
            Ok(Answer::KeyReused)
        ),
        "the same key with another request is a conflict"
    );
    assert_eq!(
        ledger.balance(wallet).await.expect("balance").available,
        90,
        "charged once"
    );
    assert!(ledger.audit().await.expect("audit").is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_answers_survive_the_upgrade_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    charge_answers_survive_the_move_to_their_transfer(ConnectConfig::new(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charge_answers_survive_the_upgrade_postgres() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let schema = format!("up_{}", std::process::id());
    let mut config = ConnectConfig::new(url.clone());
    config.pg_schema = Some(schema.clone());
    charge_answers_survive_the_move_to_their_transfer(config).await;
    if let Ok(db) = sea_orm::Database::connect(url).await {
        let _ = db
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
    }
}
