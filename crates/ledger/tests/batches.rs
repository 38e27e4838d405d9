//! A batch of debits is applied set-based (a few multi-row statements for the whole batch). It
//! must answer exactly as the same debits applied one at a time, wallet by wallet in the order
//! given: the same receipts, replays, conflicts and refusals (with the same balances in them),
//! the same balances and the same credits left in every lot, and a clean audit.

mod common;

use chrono::{Duration, Utc};
use ledger::{
    AccountId, Credit, CreditKind, Debit, DebitKind, Ledger, LedgerError, Lot, Op, OpOutcome,
};
use proptest::prelude::*;

use common::{assert_audit_clean, credits, key};

const WALLETS: usize = 3;

#[derive(Debug, Clone)]
struct Case {
    /// (wallet, amount, promotional, expires in days)
    lots: Vec<(usize, i64, bool, Option<i64>)>,
    /// Debits done before the batch: (wallet, amount, key).
    earlier: Vec<(usize, i64, u8)>,
    /// The batch: (wallet — `WALLETS` is an unknown account, `WALLETS + 1` a system account —,
    /// amount, sms, key).
    batch: Vec<(usize, i64, bool, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(
            (
                0..WALLETS,
                1..300i64,
                any::<bool>(),
                prop::option::of(1..5i64),
            ),
            0..8,
        ),
        prop::collection::vec((0..WALLETS, 1..100i64, 0..30u8), 0..4),
        prop::collection::vec(
            (
                prop_oneof![12 => 0..WALLETS, 1 => Just(WALLETS), 1 => Just(WALLETS + 1)],
                1..150i64,
                any::<bool>(),
                0..30u8,
            ),
            1..30,
        ),
    )
        .prop_map(|(lots, earlier, batch)| Case {
            lots,
            earlier,
            batch,
        })
}

fn debit(wallet: AccountId, amount: i64, sms: bool, k: u8) -> Debit {
    Debit {
        wallet,
        amount: credits(amount),
        kind: if sms {
            DebitKind::UsageSms
        } else {
            DebitKind::UsageEmail
        },
        key: key(format!("debit-{k}")),
        reference: Some(format!("ref-{k}")),
        memo: None,
    }
}

/// Sets up the case's wallets, lots and earlier debits; returns the batch's debits.
async fn prepare(ledger: &Ledger, case: &Case) -> Vec<Debit> {
    let mut wallets = common::open_wallets(ledger, WALLETS).await;
    wallets.push(AccountId(999_999));
    wallets.push(
        ledger
            .system_account(ledger::SystemAccount::EmailUsage)
            .expect("system account"),
    );
    let start = Utc::now();
    for (n, &(wallet, amount, promo, days)) in case.lots.iter().enumerate() {
        ledger
            .credit(Credit {
                wallet: wallets[wallet],
                amount: credits(amount),
                kind: if promo {
                    CreditKind::Grant
                } else {
                    CreditKind::Purchase
                },
                key: key(format!("lot-{n}")),
                reference: Some(format!("pay_{n}")),
                memo: None,
                expires_at: days.map(|d| start + Duration::days(d)),
            })
            .await
            .expect("credit");
    }
    for &(wallet, amount, k) in &case.earlier {
        let _ = ledger.debit(debit(wallets[wallet], amount, false, k)).await;
    }
    case.batch
        .iter()
        .map(|&(wallet, amount, sms, k)| debit(wallets[wallet], amount, sms, k))
        .collect()
}

/// What a user could tell apart in an answer (ids and times aside).
fn answer(result: &Result<OpOutcome, LedgerError>) -> String {
    match result {
        Ok(OpOutcome::Transfer(r)) => format!(
            "{} {} {} {} {:?} replayed={}",
            r.transfer.key,
            r.transfer.wallet,
            r.transfer.amount,
            r.transfer.kind.as_str(),
            r.transfer.reference,
            r.replayed
        ),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{e:?}"),
    }
}

/// Balances and what is left in each lot (times aside: the two ledgers were set up moments apart).
async fn state(ledger: &Ledger) -> Vec<(ledger::Balance, Vec<(i64, i64, i64, i64)>)> {
    let mut out = Vec::new();
    for i in 0..WALLETS {
        let w = ledger
            .find_wallet(&format!("user:{i}"))
            .await
            .expect("read")
            .expect("wallet");
        out.push((
            ledger.balance(w).await.expect("balance"),
            ledger
                .lots(w)
                .await
                .expect("lots")
                .iter()
                .map(|l: &Lot| (l.id.0, l.original, l.remaining, l.held))
                .collect(),
        ));
    }
    out
}

async fn compare(set_based: Ledger, one_by_one: Ledger, case: Case) {
    let batch = prepare(&set_based, &case).await;
    let same = prepare(&one_by_one, &case).await;
    let ops: Vec<Op> = batch.into_iter().map(Op::Debit).collect();
    let outcomes = set_based.submit(&ops).await.expect("batch commits");

    // The reference: one debit per transaction, wallet by wallet, in the order given.
    let mut order: Vec<usize> = (0..same.len()).collect();
    order.sort_by_key(|&i| same[i].wallet.0);
    let mut expected = vec![String::new(); same.len()];
    for i in order {
        let result = one_by_one
            .debit(same[i].clone())
            .await
            .map(OpOutcome::Transfer);
        expected[i] = answer(&result);
    }
    let got: Vec<String> = outcomes.iter().map(answer).collect();
    assert_eq!(got, expected, "answers differ for {case:?}");
    assert_eq!(
        state(&set_based).await,
        state(&one_by_one).await,
        "balances or lots differ for {case:?}"
    );
    assert_audit_clean(&set_based).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 100, ..ProptestConfig::default() })]

    #[test]
    fn a_debit_batch_answers_like_one_debit_at_a_time_on_sqlite(case in case()) {
        common::runtime().block_on(async {
            let (a, b) = (common::sqlite().await, common::sqlite().await);
            compare(a.ledger.clone(), b.ledger.clone(), case).await;
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 30, ..ProptestConfig::default() })]

    #[test]
    fn a_debit_batch_answers_like_one_debit_at_a_time_on_postgres(case in case()) {
        common::runtime().block_on(async {
            let Some(a) = common::postgres().await else { return };
            let Some(b) = common::postgres().await else { return };
            compare(a.ledger.clone(), b.ledger.clone(), case).await;
        });
    }
}
