//! Transfer primitives: the system accounts, the fingerprints that tell a replay from a
//! conflict, claiming an idempotency key (the first statement of every operation), explaining a
//! claim that inserted nothing, the guarded withdrawal, and the allocation rows that say which
//! lots paid for a transfer.

use std::collections::HashMap;

use sea_orm::Value;

use crate::{
    db::{Tx, col},
    error::{DbFailure, LedgerError, LedgerResult, classify},
    model::{Balance, Credit, Debit, Receipt, Reserve, Transfer},
    types::{AccountId, ReservationId, SystemAccount, TransferId, TransferKind},
    write::sql::{CHUNK, insert_transfer},
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

/// Inserts a transfer row unless its key exists or the wallet does not; returns the new id.
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
    let row = tx
        .one(
            concat!(
                insert_transfer!(),
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE EXISTS (SELECT 1 FROM ledger_balances WHERE account_id = ?) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
            ),
            vec![
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
            ],
        )
        .await?;
    row.map(|r| col::<i64>(&r, "id").map(TransferId))
        .transpose()
}

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

/// Removes a transfer this same transaction inserted, when the request is refused. It was never
/// visible to anyone else, so immutability of committed transfers is untouched.
pub(crate) async fn unclaim_transfer(tx: &Tx, id: TransferId) -> LedgerResult<()> {
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
