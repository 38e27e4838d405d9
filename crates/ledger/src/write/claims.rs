//! Transfer primitives: the system accounts, the fingerprints that tell a replay from a
//! conflict, claiming an idempotency key (the first statement of every operation), explaining a
//! claim that inserted nothing, the guarded withdrawal, and the allocation rows that say which
//! lots paid for a transfer.

use std::{collections::HashMap, sync::LazyLock};

use sea_orm::{DbBackend, Value};

use crate::{
    db::{Tx, col},
    error::{DbFailure, LedgerError, LedgerResult, classify},
    model::{Balance, Credit, Debit, Receipt, Reserve, Transfer},
    types::{AccountId, ReservationId, SystemAccount, TransferId, TransferKind},
    write::sql::{CHUNK, add_to_half_hours, half_hour, insert_transfer, into_half_hours},
};

/// Ids of the system accounts, read once when the ledger opens.
#[derive(Debug, Clone)]
pub(crate) struct SystemIds(HashMap<SystemAccount, AccountId>);

impl SystemIds {
    pub(crate) fn new(map: HashMap<SystemAccount, AccountId>) -> Self {
        SystemIds(map)
    }

    pub(crate) fn get(&self, account: SystemAccount) -> LedgerResult<AccountId> {
        self.0.get(&account).copied().ok_or_else(|| {
            LedgerError::Inconsistent(format!("system account {} is missing", account.code()))
        })
    }
}

pub(crate) fn opt(s: &Option<String>) -> Value {
    s.clone().into()
}

/// The fields that make two requests "the same" for idempotency.
pub(crate) fn credit_fingerprint(c: &Credit) -> String {
    format!(
        "credit|{}|{}|{}|{}|{:?}|{:?}|{:?}",
        c.wallet,
        c.amount,
        c.kind.transfer_kind().as_str(),
        c.kind.lot_source().as_str(),
        c.expires_at.map(|t| t.timestamp_micros()),
        c.reference,
        c.memo
    )
}

pub(crate) fn debit_fingerprint(d: &Debit) -> String {
    format!(
        "debit|{}|{}|{}|{:?}|{:?}",
        d.wallet,
        d.amount,
        d.kind.transfer_kind().as_str(),
        d.reference,
        d.memo
    )
}

/// What a reservation request is: who, how much, for what. Not its expiry, which the caller
/// derives from the clock, so a retry a moment later is the same request (and is answered with
/// the original reservation and its original expiry).
pub(crate) fn reserve_fingerprint(r: &Reserve) -> String {
    format!(
        "reserve|{}|{}|{}|{:?}",
        r.wallet,
        r.amount,
        r.kind.transfer_kind().as_str(),
        r.reference,
    )
}

/// The fingerprint reservations were stored with before it left out the expiry (ledger 0.1):
/// a retry of one of those still finds it.
pub(crate) fn legacy_reserve_fingerprint(r: &Reserve, stored_expires_at: i64) -> String {
    format!("{}|{stored_expires_at}", reserve_fingerprint(r))
}

/// Inserts a transfer row unless its key exists or the wallet does not, and counts it in the
/// wallet's half-hour (see `write::sql`); returns the new id. On PostgreSQL the wallet's balance
/// row is locked before its half-hour row, the order every path takes them in (a batch locks its
/// balances first), so that two paths can't deadlock on them.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn claim_transfer(
    tx: &Tx,
    key: &str,
    fingerprint: &str,
    kind: TransferKind,
    from: AccountId,
    to: AccountId,
    wallet: AccountId,
    amount: i64,
    reference: &Option<String>,
    memo: &Option<String>,
    reservation: Option<ReservationId>,
    now: i64,
) -> LedgerResult<Option<TransferId>> {
    let mut values: Vec<Value> = vec![
        key.into(),
        fingerprint.into(),
        kind.as_str().into(),
        from.0.into(),
        to.0.into(),
        wallet.0.into(),
        amount.into(),
        opt(reference),
        opt(memo),
        reservation.map(|r| r.0).into(),
        now.into(),
        wallet.0.into(),
    ];
    let sql = match tx.backend {
        DbBackend::Postgres => {
            values.push(wallet.0.into());
            &*CLAIM_COUNTED_POSTGRES
        }
        _ => &*CLAIM_COUNTED_SQLITE,
    };
    values.extend::<[Value; 4]>([
        wallet.0.into(),
        half_hour(now).into(),
        kind.as_str().into(),
        amount.into(),
    ]);
    let rows = tx.all(sql, values).await?;
    rows.first()
        .map(|r| col::<i64>(r, "id").map(TransferId))
        .transpose()
}

const CLAIM: &str = concat!(
    insert_transfer!(),
    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
     WHERE EXISTS (SELECT 1 FROM ledger_balances WHERE account_id = ?) \
     ON CONFLICT (idempotency_key) DO NOTHING"
);

static CLAIM_COUNTED_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH claim AS ({CLAIM} RETURNING id), \
         locked AS (SELECT account_id FROM ledger_balances \
           WHERE account_id = ? AND EXISTS (SELECT 1 FROM claim) FOR NO KEY UPDATE), \
         counted AS ({} SELECT ?, ?, ?, ?, 1 FROM locked{}) \
         SELECT id FROM claim",
        into_half_hours!(),
        add_to_half_hours!()
    )
});

static CLAIM_COUNTED_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{CLAIM} RETURNING id; \
         {} SELECT ?, ?, ?, ?, 1 WHERE changes() = 1{}",
        into_half_hours!(),
        add_to_half_hours!()
    )
});

/// Explains why a claim inserted nothing: the key exists (replay or conflict) or the wallet
/// doesn't.
pub(crate) async fn resolve_unclaimed(
    tx: &Tx,
    key: &str,
    fingerprint: &str,
    wallet: AccountId,
) -> LedgerResult<Receipt> {
    let existing = tx
        .one(
            &format!(
                "SELECT {}, fingerprint FROM ledger_transfers WHERE idempotency_key = ?",
                Transfer::COLUMNS
            ),
            vec![key.into()],
        )
        .await?;
    match existing {
        Some(row) => {
            let stored: String = col(&row, "fingerprint")?;
            if stored == fingerprint {
                Ok(Receipt {
                    transfer: Transfer::from_row(&row)?,
                    replayed: true,
                })
            } else {
                Err(LedgerError::IdempotencyConflict { key: key.into() })
            }
        }
        None => Err(missing_wallet(tx, wallet).await),
    }
}

pub(crate) async fn missing_wallet(tx: &Tx, wallet: AccountId) -> LedgerError {
    match tx
        .one(
            "SELECT kind FROM ledger_accounts WHERE id = ?",
            vec![wallet.0.into()],
        )
        .await
    {
        Ok(Some(_)) => LedgerError::NotAWallet(wallet),
        Ok(None) => LedgerError::UnknownAccount(wallet),
        Err(e) => e.into(),
    }
}

/// Removes a transfer this same transaction claimed with [`claim_transfer`], when the request is
/// refused, and takes it out of its half-hour again. It was never visible to anyone else, so
/// immutability of committed transfers is untouched.
pub(crate) async fn unclaim_counted(tx: &Tx, id: TransferId) -> LedgerResult<()> {
    let sql = match tx.backend {
        DbBackend::Postgres => {
            "WITH gone AS (DELETE FROM ledger_transfers WHERE id = ? \
               RETURNING wallet_account_id, created_at, kind, amount) \
             UPDATE ledger_wallet_half_hours h \
             SET total = h.total - gone.amount, transfers = h.transfers - 1 FROM gone \
             WHERE h.wallet_account_id = gone.wallet_account_id \
               AND h.half_hour = gone.created_at / 1800000000 AND h.kind = gone.kind"
        }
        _ => {
            "UPDATE ledger_wallet_half_hours \
             SET total = total - gone.amount, transfers = transfers - 1 \
             FROM (SELECT wallet_account_id, created_at, kind, amount FROM ledger_transfers \
                   WHERE id = ?) AS gone \
             WHERE ledger_wallet_half_hours.wallet_account_id = gone.wallet_account_id \
               AND ledger_wallet_half_hours.half_hour = gone.created_at / 1800000000 \
               AND ledger_wallet_half_hours.kind = gone.kind; \
             DELETE FROM ledger_transfers WHERE id = ?"
        }
    };
    let mut values: Vec<Value> = vec![id.0.into()];
    if tx.backend != DbBackend::Postgres {
        values.push(id.0.into());
    }
    tx.exec(sql, values).await?;
    Ok(())
}

/// Removes a single debit's claimed transfer when the withdrawal was refused: it was never
/// counted in its half-hour (`claim_and_withdraw`), so only the row goes.
pub(crate) async fn unclaim_uncounted(tx: &Tx, id: TransferId) -> LedgerResult<()> {
    tx.exec(
        "DELETE FROM ledger_transfers WHERE id = ?",
        vec![id.0.into()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn balance_in(tx: &Tx, wallet: AccountId) -> LedgerResult<Balance> {
    let row = tx
        .one(Balance::BY_WALLET, vec![wallet.0.into()])
        .await?
        .ok_or(LedgerError::UnknownAccount(wallet))?;
    Balance::from_row(&row)
}

pub(crate) async fn load_transfer(tx: &Tx, id: TransferId) -> LedgerResult<Transfer> {
    let row = tx
        .one(
            &format!(
                "SELECT {} FROM ledger_transfers WHERE id = ?",
                Transfer::COLUMNS
            ),
            vec![id.0.into()],
        )
        .await?
        .ok_or_else(|| LedgerError::Inconsistent(format!("transfer {id} vanished")))?;
    Transfer::from_row(&row)
}

/// Takes `amount` out of a wallet's available balance, or says how much there was.
pub(crate) async fn withdraw_available(
    tx: &Tx,
    wallet: AccountId,
    amount: i64,
    hold: bool,
) -> LedgerResult<Result<(), LedgerError>> {
    let sql = if hold {
        "UPDATE ledger_balances SET available = available - ?, reserved = reserved + ? \
         WHERE account_id = ? AND available >= ?"
    } else {
        "UPDATE ledger_balances SET available = available - ? \
         WHERE account_id = ? AND available >= ?"
    };
    let mut values: Vec<Value> = vec![amount.into()];
    if hold {
        values.push(amount.into());
    }
    values.push(wallet.0.into());
    values.push(amount.into());
    let updated = match tx.exec(sql, values).await {
        Err(e) if classify(&e) == DbFailure::CheckViolation => 0,
        other => other?,
    };
    if updated == 1 {
        return Ok(Ok(()));
    }
    Ok(Err(insufficient(tx, wallet, amount).await?))
}

/// The refusal for a withdrawal the balance did not cover, with what was available.
pub(crate) async fn insufficient(
    tx: &Tx,
    wallet: AccountId,
    required: i64,
) -> LedgerResult<LedgerError> {
    Ok(LedgerError::InsufficientCredits {
        available: balance_in(tx, wallet).await?.available,
        required,
    })
}

/// The transfer a debit made, as stored: from the wallet to `sink`.
pub(crate) fn debit_transfer(req: &Debit, id: TransferId, sink: AccountId, now: i64) -> Transfer {
    Transfer {
        id,
        key: req.key.as_str().to_string(),
        kind: req.kind.transfer_kind(),
        debit_account: req.wallet,
        credit_account: sink,
        wallet: req.wallet,
        amount: req.amount.get(),
        reference: req.reference.clone(),
        memo: req.memo.clone(),
        reservation: None,
        created_at: crate::types::from_micros(now),
    }
}

/// Records which lots paid for which transfers: `(transfer, lot, amount)` rows, a chunk of rows
/// per statement.
pub(crate) async fn record_allocations(tx: &Tx, rows: &[(i64, i64, i64)]) -> LedgerResult<()> {
    for chunk in rows.chunks(CHUNK) {
        let values = chunk
            .iter()
            .flat_map(|(t, lot, amount)| [Value::from(*t), Value::from(*lot), Value::from(*amount)])
            .collect();
        tx.exec(
            &format!(
                "INSERT INTO ledger_lot_allocations (transfer_id, lot_id, amount) VALUES {}",
                vec!["(?, ?, ?)"; chunk.len()].join(", ")
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// The allocation rows of one transfer paid by `(lot, amount)`s.
pub(crate) fn paid_by(transfer: TransferId, taken: &[(i64, i64)]) -> Vec<(i64, i64, i64)> {
    taken
        .iter()
        .map(|(lot, amount)| (transfer.0, *lot, *amount))
        .collect()
}
