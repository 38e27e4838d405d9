//! The auditor: recomputes everything the ledger maintains from the immutable transfers and
//! reports every disagreement. Runs in one read snapshot so concurrent writes can't fake a problem.

use std::collections::BTreeMap;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseTransaction, DbBackend, IsolationLevel, QueryResult,
    TransactionOptions, TransactionTrait,
};

use crate::{
    db::{Pools, col, stmt},
    error::LedgerResult,
    write::draw::PLAIN_DEBIT,
};

/// What the audit found. `problems` is empty when every invariant holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub accounts: usize,
    pub wallets: usize,
    pub transfers: i64,
    /// Net balance of every account, computed from transfers, by account code.
    pub balances: BTreeMap<String, i64>,
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl std::fmt::Display for AuditReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} accounts ({} wallets), {} transfers",
            self.accounts, self.wallets, self.transfers
        )?;
        for (code, net) in self
            .balances
            .iter()
            .filter(|(c, _)| c.starts_with("system:"))
        {
            writeln!(f, "  {code}: {net}")?;
        }
        if self.problems.is_empty() {
            write!(f, "audit clean")
        } else {
            writeln!(f, "{} problem(s):", self.problems.len())?;
            for p in &self.problems {
                writeln!(f, "  - {p}")?;
            }
            Ok(())
        }
    }
}

/// Transfers read per page by the allocation check (4).
const TRANSFER_PAGE: usize = 10_000;

async fn rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    sql: &str,
) -> LedgerResult<Vec<QueryResult>> {
    Ok(txn.query_all_raw(stmt(backend, sql, vec![])).await?)
}

pub(crate) async fn run(pools: &Pools) -> LedgerResult<AuditReport> {
    let backend = pools.backend;
    let options = match backend {
        DbBackend::Postgres => TransactionOptions {
            isolation_level: Some(IsolationLevel::RepeatableRead),
            access_mode: Some(AccessMode::ReadOnly),
            sqlite_transaction_mode: None,
        },
        _ => TransactionOptions::default(),
    };
    let txn = pools.read.begin_with_options(options).await?;
    let mut report = AuditReport::default();
    let p = &mut report.problems;

    // 1. Every account's net from transfers; all of them together sum to zero.
    let nets = rows(
        &txn,
        backend,
        // One pass over the transfers per side, grouped: a sum per account in a subquery would
        // scan every transfer once per account (no index leads with the accounts), hours at
        // 20,000 wallets and 2,000,000 transfers (`cargo xtask bench --scale`).
        "SELECT a.id, a.code, a.kind, \
           CAST(COALESCE(i.total, 0) AS BIGINT) AS credits_in, \
           CAST(COALESCE(o.total, 0) AS BIGINT) AS debits_out \
         FROM ledger_accounts a \
         LEFT JOIN (SELECT credit_account_id AS account_id, SUM(amount) AS total \
           FROM ledger_transfers GROUP BY credit_account_id) i ON i.account_id = a.id \
         LEFT JOIN (SELECT debit_account_id AS account_id, SUM(amount) AS total \
           FROM ledger_transfers GROUP BY debit_account_id) o ON o.account_id = a.id \
         ORDER BY a.id",
    )
    .await?;
    let mut total: i128 = 0;
    let mut net_by_id: BTreeMap<i64, i64> = BTreeMap::new();
    for row in &nets {
        let id: i64 = col(row, "id")?;
        let code: String = col(row, "code")?;
        let kind: String = col(row, "kind")?;
        let net = col::<i64>(row, "credits_in")? - col::<i64>(row, "debits_out")?;
        total += i128::from(net);
        net_by_id.insert(id, net);
        report.accounts += 1;
        if kind == "wallet" {
            report.wallets += 1;
        }
        report.balances.insert(code, net);
    }
    if total != 0 {
        p.push(format!("accounts sum to {total}, not zero"));
    }

    // 2. Each wallet's balance row equals its transfers; never negative.
    let mut undrawn_by_wallet: BTreeMap<i64, i64> = BTreeMap::new();
    let balances = rows(
        &txn,
        backend,
        // Grouped in one pass each, like the nets above.
        "SELECT b.account_id, b.available, b.reserved, b.undrawn, \
           CAST(COALESCE(l.remaining, 0) AS BIGINT) AS lots_remaining, \
           CAST(COALESCE(l.held, 0) AS BIGINT) AS lots_held, \
           CAST(COALESCE(r.pending, 0) AS BIGINT) AS pending \
         FROM ledger_balances b \
         LEFT JOIN (SELECT wallet_account_id, SUM(remaining) AS remaining, SUM(held) AS held \
           FROM ledger_lots GROUP BY wallet_account_id) l ON l.wallet_account_id = b.account_id \
         LEFT JOIN (SELECT wallet_account_id, SUM(amount) AS pending FROM ledger_reservations \
           WHERE status = 'pending' GROUP BY wallet_account_id) r \
           ON r.wallet_account_id = b.account_id \
         ORDER BY b.account_id",
    )
    .await?;
    for row in &balances {
        let wallet: i64 = col(row, "account_id")?;
        let available: i64 = col(row, "available")?;
        let reserved: i64 = col(row, "reserved")?;
        let undrawn: i64 = col(row, "undrawn")?;
        undrawn_by_wallet.insert(wallet, undrawn);
        let net = net_by_id.get(&wallet).copied().unwrap_or_default();
        if available < 0 || reserved < 0 || undrawn < 0 {
            p.push(format!(
                "wallet {wallet} is negative: available {available}, reserved {reserved}, undrawn {undrawn}"
            ));
        }
        if available + reserved != net {
            p.push(format!(
                "wallet {wallet}: balance row {available}+{reserved} but transfers net {net}"
            ));
        }
        let lots_remaining: i64 = col(row, "lots_remaining")?;
        if lots_remaining != available + undrawn {
            p.push(format!(
                "wallet {wallet}: lots hold {lots_remaining} available, balance row {available} + {undrawn} undrawn"
            ));
        }
        let lots_held: i64 = col(row, "lots_held")?;
        let pending: i64 = col(row, "pending")?;
        if lots_held != reserved || pending != reserved {
            p.push(format!(
                "wallet {wallet}: reserved {reserved}, lots hold {lots_held}, pending reservations {pending}"
            ));
        }
    }

    // 3. Each lot: what it gave up equals its allocations; what it holds equals its reservations.
    let lots = rows(
        &txn,
        backend,
        "SELECT l.id, l.original, l.remaining, l.held, \
           CAST(COALESCE(a.allocated, 0) AS BIGINT) AS allocated, \
           CAST(COALESCE(rl.held, 0) AS BIGINT) AS reserved_here \
         FROM ledger_lots l \
         LEFT JOIN (SELECT lot_id, SUM(amount) AS allocated FROM ledger_lot_allocations \
           GROUP BY lot_id) a ON a.lot_id = l.id \
         LEFT JOIN (SELECT lot_id, SUM(held) AS held FROM ledger_reservation_lots \
           GROUP BY lot_id) rl ON rl.lot_id = l.id \
         ORDER BY l.id",
    )
    .await?;
    for row in &lots {
        let lot: i64 = col(row, "id")?;
        let original: i64 = col(row, "original")?;
        let remaining: i64 = col(row, "remaining")?;
        let held: i64 = col(row, "held")?;
        let allocated: i64 = col(row, "allocated")?;
        let reserved_here: i64 = col(row, "reserved_here")?;
        if original - remaining - held != allocated {
            p.push(format!(
                "lot {lot}: original {original} - remaining {remaining} - held {held} != allocated {allocated}"
            ));
        }
        if held != reserved_here {
            p.push(format!(
                "lot {lot}: holds {held} but reservations hold {reserved_here} of it"
            ));
        }
    }

    // 4. Every credit into a wallet made exactly one lot of its amount; every debit out of a
    //    wallet is paid for by allocations summing to its amount, or (a plain debit not drawn
    //    yet) by none, and those sum to the wallet's undrawn credits.
    //    Read a page at a time, in id order, inside the same snapshot: memory holds one page
    //    however many transfers there are (all 2.1 million at once took 2.6 GB at scale).
    let mut pending: BTreeMap<i64, i64> = BTreeMap::new();
    let mut after = 0i64;
    loop {
        let transfers = rows(
            &txn,
            backend,
            &format!("SELECT t.id, t.amount, t.debit_account_id, t.credit_account_id, t.wallet_account_id, \
               CAST(CASE WHEN {PLAIN_DEBIT} THEN 1 ELSE 0 END AS BIGINT) AS plain, \
               (SELECT COUNT(*) FROM ledger_lots l WHERE l.transfer_id = t.id) AS lot_count, \
               CAST(COALESCE((SELECT SUM(l.original) FROM ledger_lots l WHERE l.transfer_id = t.id), 0) AS BIGINT) AS lot_amount, \
               CAST(COALESCE((SELECT SUM(a.amount) FROM ledger_lot_allocations a WHERE a.transfer_id = t.id), 0) AS BIGINT) AS allocated \
             FROM ledger_transfers t WHERE t.id > {after} ORDER BY t.id LIMIT {TRANSFER_PAGE}"),
        )
        .await?;
        for row in &transfers {
            report.transfers += 1;
            let id: i64 = col(row, "id")?;
            after = id;
            let amount: i64 = col(row, "amount")?;
            let wallet: i64 = col(row, "wallet_account_id")?;
            let into_wallet = col::<i64>(row, "credit_account_id")? == wallet;
            let lot_count: i64 = col(row, "lot_count")?;
            let lot_amount: i64 = col(row, "lot_amount")?;
            let allocated: i64 = col(row, "allocated")?;
            if amount <= 0 {
                p.push(format!("transfer {id} moves {amount}"));
            }
            if into_wallet && (lot_count != 1 || lot_amount != amount || allocated != 0) {
                p.push(format!(
                    "credit {id} of {amount}: {lot_count} lot(s) of {lot_amount}, {allocated} allocated"
                ));
            }
            if !into_wallet && lot_count == 0 && allocated == 0 && col::<i64>(row, "plain")? == 1 {
                *pending.entry(wallet).or_default() += amount;
            } else if !into_wallet && (lot_count != 0 || allocated != amount) {
                p.push(format!(
                    "debit {id} of {amount}: allocations sum to {allocated}"
                ));
            }
        }
        if transfers.len() < TRANSFER_PAGE {
            break;
        }
    }

    for (wallet, undrawn) in &undrawn_by_wallet {
        let pending = pending.remove(wallet).unwrap_or_default();
        if pending != *undrawn {
            p.push(format!(
                "wallet {wallet}: {undrawn} credits undrawn, but its undrawn debits sum to {pending}"
            ));
        }
    }
    for (wallet, amount) in pending {
        p.push(format!(
            "wallet {wallet}: debits of {amount} are undrawn, but it has no balance row"
        ));
    }

    // 5. Reservations: pending ones hold exactly their amount; ended ones hold nothing; a settled
    //    one spent exactly `used` in its one transfer.
    let reservations = rows(
        &txn,
        backend,
        "SELECT r.id, r.amount, r.status, r.used, \
           CAST(COALESCE((SELECT SUM(rl.held) FROM ledger_reservation_lots rl WHERE rl.reservation_id = r.id), 0) AS BIGINT) AS held, \
           CAST(COALESCE((SELECT SUM(t.amount) FROM ledger_transfers t WHERE t.reservation_id = r.id), 0) AS BIGINT) AS spent \
         FROM ledger_reservations r ORDER BY r.id",
    )
    .await?;
    for row in &reservations {
        let id: i64 = col(row, "id")?;
        let amount: i64 = col(row, "amount")?;
        let status: String = col(row, "status")?;
        let used: Option<i64> = col(row, "used")?;
        let held: i64 = col(row, "held")?;
        let spent: i64 = col(row, "spent")?;
        let expected_held = if status == "pending" { amount } else { 0 };
        if held != expected_held {
            p.push(format!(
                "reservation {id} ({status}) holds {held}, expected {expected_held}"
            ));
        }
        if spent != used.unwrap_or(0) {
            p.push(format!(
                "reservation {id} ({status}) spent {spent} but used is {used:?}"
            ));
        }
    }

    // 6. The half-hour totals (migration m0006) are exactly the sums of the transfers they cover.
    let half_hours = rows(
        &txn,
        backend,
        // The transfers are grouped once (a CTE used twice is computed once by both
        // databases), not once per direction.
        "WITH t AS ( \
           SELECT wallet_account_id, created_at / 1800000000 AS half_hour, kind, \
             CAST(SUM(amount) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS transfers \
           FROM ledger_transfers GROUP BY 1, 2, 3), \
         r AS ( \
           SELECT wallet_account_id, half_hour, kind, total, transfers \
           FROM ledger_wallet_half_hours WHERE transfers <> 0) \
         SELECT side, wallet_account_id, half_hour, kind, total, transfers FROM ( \
           SELECT 'the transfers' AS side, * FROM (SELECT * FROM t EXCEPT SELECT * FROM r) a \
           UNION ALL \
           SELECT 'the half-hour totals' AS side, * FROM (SELECT * FROM r EXCEPT SELECT * FROM t) b \
         ) d \
         ORDER BY 2, 3, 4, 1",
    )
    .await?;
    for row in &half_hours {
        let side: String = col(row, "side")?;
        let wallet: i64 = col(row, "wallet_account_id")?;
        let half_hour: i64 = col(row, "half_hour")?;
        let kind: String = col(row, "kind")?;
        let total: i64 = col(row, "total")?;
        let transfers: i64 = col(row, "transfers")?;
        p.push(format!(
            "wallet {wallet}, half-hour {half_hour}, {kind}: {side} say {total} in {transfers} transfer(s), the other side disagrees"
        ));
    }

    txn.commit().await?;
    Ok(report)
}
