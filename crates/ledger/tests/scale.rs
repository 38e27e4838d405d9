//! The benchmark preload (`Ledger::preload_scale`, issue 21) writes a ledger the audit finds
//! clean, with the balances, lots and history its shape says, and the ledger keeps working on
//! top of it. On both databases, at a small shape.

mod common;

use common::{assert_audit_clean, credits, key};
use ledger::{Debit, DebitKind, HistoryQuery, Ledger, ScaleShape, TransferKind};

on_both_backends!(
    a_preloaded_ledger_is_consistent_and_keeps_working,
    the_audit_reads_every_transfer_past_its_first_page,
    a_charge_batch_looks_its_keys_up_by_index_on_a_young_ledger,
);

async fn a_preloaded_ledger_is_consistent_and_keeps_working(ledger: Ledger) {
    let shape = ScaleShape {
        wallets: 40,
        purchases: 5,
        usage: 3_000,
        big_wallet_usage: 1_000,
    };
    let preloaded = ledger.preload_scale(shape).await.expect("preloaded");
    assert_audit_clean(&ledger).await;
    let big = preloaded.big_wallet;
    // The big wallet: its first purchase is 1,000,000 + its usage; then four of 1,000; 1,000
    // debits of one credit.
    let balance = ledger.balance(big).await.expect("balance");
    assert_eq!(balance.available, 1_001_000 + 4 * 1_000 - 1_000);
    let page = ledger
        .history(big, &HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(page.entries.len(), 50);
    assert!(
        page.entries
            .iter()
            .all(|t| t.kind == TransferKind::UsageEmail)
    );
    assert!(page.next.is_some());
    // The other wallets share the remaining 2,000 debits.
    let other = ledger::AccountId(preloaded.first_wallet + 1);
    let balance = ledger.balance(other).await.expect("balance");
    let used = 10_000 + 4 * 1_000 - balance.available;
    assert!((51..=52).contains(&used), "{used}");
    // New work on top of it: a debit, then the audit again.
    ledger
        .debit(Debit {
            wallet: big,
            amount: credits(5),
            kind: DebitKind::UsageEmail,
            key: key("after-preload"),
            reference: None,
            memo: None,
        })
        .await
        .expect("debit");
    ledger.draw_pending().await.expect("draw");
    assert_audit_clean(&ledger).await;
}

/// The audit reads the transfers a page (10,000) at a time: it counts all of them, and finds a
/// debit whose allocations were changed on a later page.
async fn the_audit_reads_every_transfer_past_its_first_page(ledger: Ledger) {
    let shape = ScaleShape {
        wallets: 40,
        purchases: 5,
        usage: 12_000,
        big_wallet_usage: 1_000,
    };
    ledger.preload_scale(shape).await.expect("preloaded");
    let report = ledger.audit().await.expect("audit runs");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.transfers, 12_000 + 40 * 5);
    let last = ledger
        .transact(|tx| {
            Box::pin(async move {
                use sea_orm::ConnectionTrait;
                let row = tx
                    .query_one_raw(sea_orm::Statement::from_string(
                        tx.get_database_backend(),
                        "SELECT MAX(transfer_id) AS id FROM ledger_lot_allocations",
                    ))
                    .await?
                    .ok_or(sea_orm::DbErr::RecordNotFound("no allocations".into()))?;
                let id: i64 = row.try_get("", "id")?;
                tx.execute_unprepared(&format!(
                    "UPDATE ledger_lot_allocations SET amount = amount + 1 WHERE transfer_id = {id}"
                ))
                .await?;
                Ok::<i64, ledger::LedgerError>(id)
            })
        })
        .await
        .expect("tamper");
    assert!(
        last > 10_000,
        "the changed debit is past the first page: {last}"
    );
    let report = ledger.audit().await.expect("audit runs");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with(&format!("debit {last} of "))),
        "{report}"
    );
}

/// A batch's replay lookup probes the unique index even before the database has statistics for
/// the table: on PostgreSQL an `IN` list of 64 keys was planned as a scan of every transfer
/// until the table was analysed (docs/benchmarks.md, session 12).
async fn a_charge_batch_looks_its_keys_up_by_index_on_a_young_ledger(ledger: Ledger) {
    let shape = ScaleShape {
        wallets: 20,
        purchases: 1,
        usage: 6_000,
        big_wallet_usage: 1_000,
    };
    let preloaded = ledger.preload_scale(shape).await.expect("preloaded");
    let plans = ledger
        .explain_reads(preloaded.big_wallet, &[], chrono::Utc::now())
        .await
        .expect("plans");
    let (_, plan) = plans
        .iter()
        .find(|(what, _)| what.starts_with("charge batch"))
        .expect("the key lookup is explained");
    let plan = plan.split_once('\n').map(|(_, p)| p).unwrap_or_default();
    let scans_transfers = ["Seq Scan on ledger_transfers", "SCAN ledger_transfers"]
        .iter()
        .any(|scan| plan.contains(scan));
    assert!(
        !scans_transfers,
        "the key lookup reads every transfer:\n{plan}"
    );
    assert!(
        plan.contains("Index Scan") || plan.contains("SEARCH ledger_transfers USING"),
        "{plan}"
    );
}
