//! Races, on SQLite and PostgreSQL: many tasks at once against one wallet.

mod common;

use chrono::{Duration, Utc};
use common::{assert_audit_clean, credits, key};
use ledger::{
    Balance, Credit, CreditKind, Debit, DebitKind, Ledger, LedgerError, Reserve, TransferKind,
};

on_both_backends!(
    sixty_four_debits_on_one_wallet_spend_exactly_what_it_has,
    thirty_two_submissions_of_one_transfer_land_once,
    thirty_two_submissions_of_one_debit_land_once,
    concurrent_reservations_never_over_reserve,
);

async fn sixty_four_debits_on_one_wallet_spend_exactly_what_it_has(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:busy").await.expect("wallet");
    ledger
        .credit(Credit {
            wallet,
            amount: credits(1_000),
            kind: CreditKind::Purchase,
            key: key("topup:pay_race"),
            reference: Some("pay_race".into()),
            memo: None,
            expires_at: None,
        })
        .await
        .expect("credit");
    // 64 debits of 30: 33 fit into 1,000 (990), 31 must be refused.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .debit(Debit {
                        wallet,
                        amount: credits(30),
                        kind: DebitKind::UsageSms,
                        key: key(format!("sms-{i}")),
                        reference: None,
                        memo: None,
                    })
                    .await
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(LedgerError::InsufficientCredits {
                required: 30,
                available,
            }) => {
                assert!(available < 30, "refused with {available} available");
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((ok, refused), (33, 31));
    assert_eq!(
        ledger.balance(wallet).await.expect("balance"),
        Balance {
            available: 10,
            reserved: 0
        }
    );
    assert_audit_clean(&ledger).await;
}

async fn thirty_two_submissions_of_one_transfer_land_once(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let request = Credit {
        wallet,
        amount: credits(250),
        kind: CreditKind::Purchase,
        key: key("topup:pay_29QQoUBi66xm2f"),
        reference: Some("pay_29QQoUBi66xm2f".into()),
        memo: None,
        expires_at: None,
    };
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (ledger, request) = (ledger.clone(), request.clone());
            tokio::spawn(async move { ledger.credit(request).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut created = 0;
    for task in tasks {
        let receipt = task
            .await
            .expect("task")
            .expect("every submission succeeds");
        ids.push(receipt.transfer.id);
        if !receipt.replayed {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one submission created the transfer");
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "all submissions answer with the same transfer"
    );
    assert_eq!(
        ledger.balance(wallet).await.expect("balance").available,
        250
    );
    assert_audit_clean(&ledger).await;
}

async fn thirty_two_submissions_of_one_debit_land_once(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(Credit {
            wallet,
            amount: credits(100),
            kind: CreditKind::Grant,
            key: key("grant-1"),
            reference: None,
            memo: None,
            expires_at: None,
        })
        .await
        .expect("credit");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .debit(Debit {
                        wallet,
                        amount: credits(7),
                        kind: DebitKind::UsageEmail,
                        key: key("charge:batch-42"),
                        reference: Some("batch-42".into()),
                        memo: None,
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        let receipt = task
            .await
            .expect("task")
            .expect("every submission succeeds");
        assert_eq!(receipt.transfer.kind, TransferKind::UsageEmail);
    }
    assert_eq!(ledger.balance(wallet).await.expect("balance").available, 93);
    assert_audit_clean(&ledger).await;
}

async fn concurrent_reservations_never_over_reserve(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    ledger
        .credit(Credit {
            wallet,
            amount: credits(1_000),
            kind: CreditKind::Purchase,
            key: key("topup:pay_A"),
            reference: None,
            memo: None,
            expires_at: None,
        })
        .await
        .expect("credit");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                ledger
                    .reserve(Reserve {
                        wallet,
                        amount: credits(100),
                        kind: DebitKind::UsageEmail,
                        key: key(format!("campaign-{i}")),
                        reference: None,
                        expires_at: Utc::now() + Duration::minutes(10),
                    })
                    .await
            })
        })
        .collect();
    let mut held = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => held += 1,
            Err(LedgerError::InsufficientCredits { .. }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(held, 10);
    assert_eq!(
        ledger.balance(wallet).await.expect("balance"),
        Balance {
            available: 0,
            reserved: 1_000
        }
    );
    assert_audit_clean(&ledger).await;
}
