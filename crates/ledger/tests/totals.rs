//! The Dashboard's sums (`totals_by_kind`, `daily_totals`) read half-hour totals that the write
//! path keeps beside the transfers (migration m0006's table; its triggers until m0007). Whatever path wrote a transfer, and whatever range is
//! asked for, they must equal the sum of the transfers themselves, and the audit must notice
//! when the totals disagree with the transfers.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use common::{assert_audit_clean, credits, key};
use ledger::{
    AccountId, Credit, CreditKind, Debit, DebitKind, HistoryQuery, Ledger, LedgerError, Op,
    Reserve, Settle, Transfer, TransferKind,
};

on_both_backends!(
    the_dashboard_sums_equal_the_transfers_whatever_path_wrote_them,
    the_audit_finds_half_hour_totals_that_disagree_with_the_transfers,
);

const HALF_HOUR_SECS: i64 = 1_800;

fn debit(wallet: AccountId, amount: i64, kind: DebitKind, k: &str) -> Debit {
    Debit {
        wallet,
        amount: credits(amount),
        kind,
        key: key(k),
        reference: None,
        memo: None,
    }
}

/// Writes through every path that inserts or removes a transfer: a credit, single debits, a
/// set-based batch, a refused debit and a refused credit (their claimed transfers are removed
/// again), a replay, a reservation settled in part and one released.
async fn write_on_every_path(ledger: &Ledger, wallet: AccountId) {
    ledger
        .credit(Credit {
            wallet,
            amount: credits(10_000),
            kind: CreditKind::Purchase,
            key: key(format!("topup:pay_{}", wallet.0)),
            reference: Some(format!("pay_{}", wallet.0)),
            memo: None,
            expires_at: None,
        })
        .await
        .expect("credit");
    for i in 0..5 {
        let d = debit(
            wallet,
            10 + i,
            DebitKind::UsageEmail,
            &format!("one-{}-{i}", wallet.0),
        );
        ledger.debit(d.clone()).await.expect("debit");
        ledger.debit(d).await.expect("replay");
    }
    let batch: Vec<Op> = (0..40)
        .map(|i| {
            let kind = if i % 3 == 0 {
                DebitKind::UsageSms
            } else {
                DebitKind::UsageEmail
            };
            Op::Debit(debit(
                wallet,
                1 + i,
                kind,
                &format!("batch-{}-{i}", wallet.0),
            ))
        })
        .collect();
    for outcome in ledger.submit(&batch).await.expect("batch") {
        outcome.expect("each charge fits");
    }
    let refused = ledger
        .debit(debit(
            wallet,
            1_000_000,
            DebitKind::UsageSms,
            &format!("too-big-{}", wallet.0),
        ))
        .await;
    assert!(
        matches!(refused, Err(LedgerError::InsufficientCredits { .. })),
        "{refused:?}"
    );
    // A credit past the balance limit: its claimed transfer is removed again, and uncounted.
    let over = ledger
        .credit(Credit {
            wallet,
            amount: credits(ledger::MAX_AMOUNT),
            kind: CreditKind::Purchase,
            key: key(format!("over-{}", wallet.0)),
            reference: Some(format!("pay_over_{}", wallet.0)),
            memo: None,
            expires_at: None,
        })
        .await;
    assert!(
        matches!(over, Err(LedgerError::BalanceLimitExceeded)),
        "{over:?}"
    );
    let hold = |amount, k: &str| Reserve {
        wallet,
        amount: credits(amount),
        kind: DebitKind::UsageSms,
        key: key(k),
        reference: None,
        expires_at: Utc::now() + Duration::minutes(10),
    };
    let settled = ledger
        .reserve(hold(300, &format!("hold-1-{}", wallet.0)))
        .await
        .expect("reserve");
    ledger
        .settle(Settle {
            reservation: settled.id,
            used: 120,
        })
        .await
        .expect("settle");
    let released = ledger
        .reserve(hold(50, &format!("hold-2-{}", wallet.0)))
        .await
        .expect("reserve");
    ledger.release(released.id).await.expect("release");
}

async fn every_transfer(ledger: &Ledger, wallet: AccountId) -> Vec<Transfer> {
    let page = ledger
        .history(
            wallet,
            &HistoryQuery {
                limit: 500,
                ..HistoryQuery::default()
            },
        )
        .await
        .expect("history");
    assert!(page.next.is_none(), "one page holds them all");
    page.entries
}

fn expected_by_kind(
    transfers: &[Transfer],
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Vec<(TransferKind, i64)> {
    let mut sums: BTreeMap<&'static str, (TransferKind, i64)> = BTreeMap::new();
    for t in transfers
        .iter()
        .filter(|t| from.is_none_or(|f| t.created_at >= f) && to.is_none_or(|e| t.created_at < e))
    {
        sums.entry(t.kind.as_str()).or_insert((t.kind, 0)).1 += t.amount;
    }
    sums.into_values().collect()
}

async fn the_dashboard_sums_equal_the_transfers_whatever_path_wrote_them(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    let other = ledger.open_wallet("user:2").await.expect("wallet");
    write_on_every_path(&ledger, wallet).await;
    write_on_every_path(&ledger, other).await;
    let transfers = every_transfer(&ledger, wallet).await;
    assert_eq!(
        transfers.len(),
        1 + 5 + 40 + 1,
        "the refused debit and the release left none"
    );

    let first = transfers.iter().map(|t| t.created_at).min().expect("some");
    let last = transfers.iter().map(|t| t.created_at).max().expect("some");
    let half_hour_start = DateTime::from_timestamp(
        first.timestamp().div_euclid(HALF_HOUR_SECS) * HALF_HOUR_SECS,
        0,
    )
    .expect("instant");
    let micro = Duration::microseconds(1);
    let ranges = [
        (None, None),
        (Some(half_hour_start), None),
        (Some(half_hour_start - Duration::days(3)), None),
        (Some(first + micro), None),
        (Some(half_hour_start), Some(last)),
        (None, Some(half_hour_start + Duration::minutes(30))),
        (Some(first), Some(first + micro)),
        (Some(last + micro), None),
    ];
    for (from, to) in ranges {
        let got = ledger
            .totals_by_kind(wallet, from, to)
            .await
            .expect("totals");
        let mut got_nonzero: Vec<_> = got.into_iter().filter(|(_, v)| *v != 0).collect();
        got_nonzero.sort_by_key(|(k, _)| k.as_str());
        assert_eq!(
            got_nonzero,
            expected_by_kind(&transfers, from, to),
            "[{from:?}, {to:?})"
        );
    }

    let ist = FixedOffset::east_opt(19_800).expect("offset");
    let nepal = FixedOffset::east_opt(20_700).expect("offset");
    for (offset, since) in [
        (ist, half_hour_start - Duration::days(14)),
        (ist, first + micro),
        (nepal, half_hour_start - Duration::days(14)),
    ] {
        let got = ledger
            .daily_totals(
                wallet,
                since,
                i64::from(offset.local_minus_utc()),
                &[TransferKind::UsageEmail, TransferKind::UsageSms],
            )
            .await
            .expect("days");
        let mut expected: BTreeMap<(chrono::NaiveDate, &'static str), i64> = BTreeMap::new();
        for t in transfers.iter().filter(|t| {
            t.created_at >= since
                && matches!(t.kind, TransferKind::UsageEmail | TransferKind::UsageSms)
        }) {
            let day = t.created_at.with_timezone(&offset).date_naive();
            *expected.entry((day, t.kind.as_str())).or_default() += t.amount;
        }
        let got: BTreeMap<_, _> = got
            .into_iter()
            .map(|(day, kind, total)| ((day, kind.as_str()), total))
            .collect();
        assert_eq!(got, expected, "days at {offset} since {since}");
    }
    assert_audit_clean(&ledger).await;
}

async fn the_audit_finds_half_hour_totals_that_disagree_with_the_transfers(ledger: Ledger) {
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    write_on_every_path(&ledger, wallet).await;
    assert_audit_clean(&ledger).await;
    ledger
        .transact(|tx| {
            Box::pin(async move {
                use sea_orm::ConnectionTrait;
                tx.execute_unprepared(
                    "UPDATE ledger_wallet_half_hours SET total = total + 1 \
                     WHERE kind = 'usage_email'",
                )
                .await
                .map_err(LedgerError::from)
            })
        })
        .await
        .expect("tamper");
    let report = ledger.audit().await.expect("audit runs");
    assert!(!report.is_clean());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("half-hour") && p.contains("usage_email")),
        "{report}"
    );
}

/// A database written before migration m0006 gets half-hour totals for every transfer it already
/// holds: m0006 and m0007 are undone by hand, the ledger opened again, and the sums and the audit
/// are as if the totals had always been kept; a debit after counts once (m0007 dropped the
/// triggers m0006 made again).
async fn existing_transfers_are_summed_when_the_migration_arrives(t: common::TestLedger) {
    let ledger = t.ledger.clone();
    let wallet = ledger.open_wallet("user:1").await.expect("wallet");
    write_on_every_path(&ledger, wallet).await;
    let before = ledger
        .totals_by_kind(wallet, None, None)
        .await
        .expect("totals");
    let undo: &[&str] = match ledger.backend() {
        sea_orm::DbBackend::Postgres => &[
            "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_add ON ledger_transfers",
            "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_remove ON ledger_transfers",
            "DROP FUNCTION IF EXISTS ledger_wallet_half_hours_add()",
            "DROP FUNCTION IF EXISTS ledger_wallet_half_hours_remove()",
            "DROP TABLE ledger_wallet_half_hours",
            "DELETE FROM ledger_migrations WHERE version IN \
             ('m0006_wallet_half_hours', 'm0007_half_hours_without_triggers')",
        ],
        _ => &[
            "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_add",
            "DROP TRIGGER IF EXISTS ledger_wallet_half_hours_remove",
            "DROP TABLE ledger_wallet_half_hours",
            "DELETE FROM ledger_migrations WHERE version IN \
             ('m0006_wallet_half_hours', 'm0007_half_hours_without_triggers')",
        ],
    };
    ledger
        .transact(|tx| {
            Box::pin(async move {
                use sea_orm::ConnectionTrait;
                for sql in undo {
                    tx.execute_unprepared(sql)
                        .await
                        .map_err(LedgerError::from)?;
                }
                Ok::<_, LedgerError>(())
            })
        })
        .await
        .expect("undo m0006");
    let reopened = Ledger::connect(&t.config).await.expect("reopen migrates");
    // m0006 created its triggers again and m0007 dropped them: a debit now is counted once.
    reopened
        .debit(debit(wallet, 7, DebitKind::UsageSms, "after"))
        .await
        .expect("debit");
    let mut expected = before;
    for (kind, total) in &mut expected {
        if *kind == TransferKind::UsageSms {
            *total += 7;
        }
    }
    assert_eq!(
        reopened
            .totals_by_kind(wallet, None, None)
            .await
            .expect("totals"),
        expected
    );
    assert_audit_clean(&reopened).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_transfers_are_summed_when_the_migration_arrives_sqlite() {
    existing_transfers_are_summed_when_the_migration_arrives(common::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn existing_transfers_are_summed_when_the_migration_arrives_postgres() {
    if let Some(t) = common::postgres().await {
        existing_transfers_are_summed_when_the_migration_arrives(t).await;
    }
}
