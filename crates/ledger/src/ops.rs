//! The write path. Every function here runs inside one write transaction and keeps the rules of
//! `docs/architecture.md`:
//! - the first statement claims the idempotency key (`INSERT … ON CONFLICT DO NOTHING`), and a
//!   balance changes only when that claim inserted a row;
//! - a wallet is debited only by a conditional `UPDATE … WHERE available >= amount`, never by
//!   reading then writing, with `CHECK (available >= 0)` behind it;
//! - a business refusal (insufficient credits, conflict) leaves nothing behind in the transaction,
//!   so a batch can refuse one item and commit the others.

use std::collections::HashMap;

use sea_orm::Value;

use crate::{
    db::{Tx, col},
    draw::draw_pending,
    error::{DbFailure, LedgerError, LedgerResult, classify},
    model::{
        Balance, Credit, Debit, Outcome, Receipt, Reservation, ReservationStatus, Reserve, Settle,
        Transfer,
    },
    one_trip,
    types::{AccountId, MAX_AMOUNT, ReservationId, SystemAccount, TransferId, TransferKind},
};

/// The start of every transfer INSERT, with its columns in the order the values follow (the
/// generic path here, `one_trip` and `batch`).
macro_rules! insert_transfer {
    () => {
        "INSERT INTO ledger_transfers (idempotency_key, fingerprint, kind, debit_account_id, \
         credit_account_id, wallet_account_id, amount, reference, memo, reservation_id, created_at)"
    };
}
pub(crate) use insert_transfer;

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

fn opt(s: &Option<String>) -> Value {
    s.clone().into()
}

/// The fields that make two requests "the same" for idempotency.
fn credit_fingerprint(c: &Credit) -> String {
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
fn reserve_fingerprint(r: &Reserve) -> String {
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
fn legacy_reserve_fingerprint(r: &Reserve, stored_expires_at: i64) -> String {
    format!("{}|{stored_expires_at}", reserve_fingerprint(r))
}

/// Inserts a transfer row unless its key exists or the wallet does not; returns the new id.
#[allow(clippy::too_many_arguments)]
async fn claim_transfer(
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
async fn resolve_unclaimed(
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
async fn unclaim_transfer(tx: &Tx, id: TransferId) -> LedgerResult<()> {
    tx.exec(
        "DELETE FROM ledger_transfers WHERE id = ?",
        vec![id.0.into()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn balance_in(tx: &Tx, wallet: AccountId) -> LedgerResult<Balance> {
    let row = tx
        .one(
            "SELECT available, reserved FROM ledger_balances WHERE account_id = ?",
            vec![wallet.0.into()],
        )
        .await?
        .ok_or(LedgerError::UnknownAccount(wallet))?;
    Ok(Balance {
        available: col(&row, "available")?,
        reserved: col(&row, "reserved")?,
    })
}

async fn load_transfer(tx: &Tx, id: TransferId) -> LedgerResult<Transfer> {
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

pub(crate) async fn credit(
    tx: &Tx,
    sys: &SystemIds,
    req: &Credit,
    now: i64,
) -> LedgerResult<Receipt> {
    let kind = req.kind.transfer_kind();
    let source = sys.get(kind.system_account())?;
    let fingerprint = credit_fingerprint(req);
    let amount = req.amount.get();
    let Some(id) = claim_transfer(
        tx,
        req.key.as_str(),
        &fingerprint,
        kind,
        source,
        req.wallet,
        req.wallet,
        amount,
        &req.reference,
        &req.memo,
        None,
        now,
    )
    .await?
    else {
        return resolve_unclaimed(tx, req.key.as_str(), &fingerprint, req.wallet).await;
    };
    // Earlier debits draw from the lots that existed when they were made, not from this one.
    draw_pending(tx, &[req.wallet]).await?;
    // The limit is checked in the WHERE so the CHECK constraint is a backstop, not the answer.
    let updated = tx
        .exec(
            "UPDATE ledger_balances SET available = available + ? \
             WHERE account_id = ? AND available + reserved <= ?",
            vec![
                amount.into(),
                req.wallet.0.into(),
                (MAX_AMOUNT - amount).into(),
            ],
        )
        .await;
    let updated = match updated {
        Err(e) if classify(&e) == DbFailure::CheckViolation => 0,
        other => other?,
    };
    if updated != 1 {
        unclaim_transfer(tx, id).await?;
        return Err(LedgerError::BalanceLimitExceeded);
    }
    tx.exec(
        "INSERT INTO ledger_lots (wallet_account_id, transfer_id, source, payment_reference, \
         original, remaining, held, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
        vec![
            req.wallet.0.into(),
            id.0.into(),
            req.kind.lot_source().as_str().into(),
            match req.kind {
                crate::CreditKind::Purchase => opt(&req.reference),
                _ => Option::<String>::None.into(),
            },
            amount.into(),
            amount.into(),
            req.expires_at.map(|t| t.timestamp_micros()).into(),
            now.into(),
        ],
    )
    .await?;
    Ok(Receipt {
        transfer: Transfer {
            id,
            key: req.key.as_str().to_string(),
            kind,
            debit_account: source,
            credit_account: req.wallet,
            wallet: req.wallet,
            amount,
            reference: req.reference.clone(),
            memo: req.memo.clone(),
            reservation: None,
            created_at: crate::types::from_micros(now),
        },
        replayed: false,
    })
}

/// Takes `amount` out of a wallet's available balance, or says how much there was.
async fn withdraw_available(
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
async fn insufficient(tx: &Tx, wallet: AccountId, required: i64) -> LedgerResult<LedgerError> {
    Ok(LedgerError::InsufficientCredits {
        available: balance_in(tx, wallet).await?.available,
        required,
    })
}

pub(crate) async fn debit(
    tx: &Tx,
    sys: &SystemIds,
    req: &Debit,
    now: i64,
) -> LedgerResult<Receipt> {
    let kind = req.kind.transfer_kind();
    let sink = sys.get(kind.system_account())?;
    let fingerprint = debit_fingerprint(req);
    let amount = req.amount.get();
    let trip = one_trip::debit(
        tx,
        &one_trip::Claim {
            key: req.key.as_str(),
            fingerprint: &fingerprint,
            kind,
            wallet: req.wallet,
            sink,
            amount,
            reference: &req.reference,
            memo: &req.memo,
            now,
        },
    )
    .await?;
    let Some(id) = trip.transfer else {
        return resolve_unclaimed(tx, req.key.as_str(), &fingerprint, req.wallet).await;
    };
    if !trip.withdrawn {
        let refusal = insufficient(tx, req.wallet, amount).await?;
        unclaim_transfer(tx, id).await?;
        return Err(refusal);
    }
    Ok(Receipt {
        transfer: debit_transfer(req, id, sink, now),
        replayed: false,
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

/// The order in which a wallet's credits are used: soonest expiry first (never-expiring last),
/// promotional before paid at equal expiry, oldest first. The index `ledger_lots_spending`
/// (migration m0003) has these very expressions, so a wallet's lots are read in this order
/// without sorting them (`draw::spending_lots`).
pub(crate) const LOT_ORDER: &str = "CASE WHEN l.expires_at IS NULL THEN 1 ELSE 0 END, l.expires_at, \
    CASE WHEN l.source = 'promotional' THEN 0 ELSE 1 END, l.id";

/// Holds `amount` of a wallet's lots, in spending order, for a reservation: `remaining` moves to
/// `held`.
async fn hold_lots(
    tx: &Tx,
    wallet: AccountId,
    amount: i64,
    reservation: ReservationId,
) -> LedgerResult<()> {
    let lots = crate::draw::spending_lots(tx, &[(wallet.0, amount)])
        .await?
        .remove(&wallet.0)
        .unwrap_or_default();
    let mut left = amount;
    let mut taken: Vec<(i64, i64)> = Vec::new();
    for (lot_id, remaining) in lots {
        if left == 0 {
            break;
        }
        let take = remaining.min(left);
        let changed = tx
            .exec(
                "UPDATE ledger_lots SET remaining = remaining - ?, held = held + ? \
                 WHERE id = ? AND remaining >= ?",
                vec![take.into(), take.into(), lot_id.into(), take.into()],
            )
            .await?;
        if changed != 1 {
            return Err(LedgerError::Inconsistent(format!(
                "lot {lot_id} changed while drawing from it"
            )));
        }
        taken.push((lot_id, take));
        left -= take;
    }
    if left != 0 {
        return Err(LedgerError::Inconsistent(format!(
            "wallet {wallet}: lots hold {} credits less than its balance",
            left
        )));
    }
    let placeholders = vec!["(?, ?, ?)"; taken.len()].join(", ");
    let mut values: Vec<Value> = Vec::with_capacity(taken.len() * 3);
    for (lot, held) in &taken {
        values.extend([reservation.0.into(), (*lot).into(), (*held).into()]);
    }
    tx.exec(
        &format!(
            "INSERT INTO ledger_reservation_lots (reservation_id, lot_id, held) \
             VALUES {placeholders}"
        ),
        values,
    )
    .await?;
    Ok(())
}

/// Records which lots paid for which transfers: `(transfer, lot, amount)` rows, a chunk of rows
/// per statement.
pub(crate) async fn record_allocations(tx: &Tx, rows: &[(i64, i64, i64)]) -> LedgerResult<()> {
    for chunk in rows.chunks(crate::batch::CHUNK) {
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
fn paid_by(transfer: TransferId, taken: &[(i64, i64)]) -> Vec<(i64, i64, i64)> {
    taken
        .iter()
        .map(|(lot, amount)| (transfer.0, *lot, *amount))
        .collect()
}

pub(crate) async fn reserve(tx: &Tx, req: &Reserve, now: i64) -> LedgerResult<Reservation> {
    let fingerprint = reserve_fingerprint(req);
    let amount = req.amount.get();
    let expires_at = req.expires_at.timestamp_micros();
    let row = tx
        .one(
            "INSERT INTO ledger_reservations (idempotency_key, fingerprint, wallet_account_id, \
             kind, amount, status, used, reference, expires_at, created_at, updated_at) \
             SELECT ?, ?, ?, ?, ?, 'pending', NULL, ?, ?, ?, ? \
             WHERE EXISTS (SELECT 1 FROM ledger_balances WHERE account_id = ?) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            vec![
                req.key.as_str().into(),
                fingerprint.clone().into(),
                req.wallet.0.into(),
                req.kind.transfer_kind().as_str().into(),
                amount.into(),
                opt(&req.reference),
                expires_at.into(),
                now.into(),
                now.into(),
                req.wallet.0.into(),
            ],
        )
        .await?;
    let Some(row) = row else {
        let existing = tx
            .one(
                &format!(
                    "SELECT {} FROM ledger_reservations WHERE idempotency_key = ?",
                    Reservation::COLUMNS
                ),
                vec![req.key.as_str().into()],
            )
            .await?;
        return match existing {
            Some(row)
                if {
                    let stored = col::<String>(&row, "fingerprint")?;
                    stored == fingerprint
                        || stored
                            == legacy_reserve_fingerprint(req, col::<i64>(&row, "expires_at")?)
                } =>
            {
                let mut found = Reservation::from_row(&row)?;
                found.replayed = true;
                Ok(found)
            }
            Some(_) => Err(LedgerError::IdempotencyConflict {
                key: req.key.as_str().into(),
            }),
            None => Err(missing_wallet(tx, req.wallet).await),
        };
    };
    let id = ReservationId(col(&row, "id")?);
    draw_pending(tx, &[req.wallet]).await?;
    if let Err(refusal) = withdraw_available(tx, req.wallet, amount, true).await? {
        tx.exec(
            "DELETE FROM ledger_reservations WHERE id = ?",
            vec![id.0.into()],
        )
        .await?;
        return Err(refusal);
    }
    hold_lots(tx, req.wallet, amount, id).await?;
    Ok(Reservation {
        id,
        key: req.key.as_str().to_string(),
        wallet: req.wallet,
        kind: req.kind,
        amount,
        status: ReservationStatus::Pending,
        used: None,
        reference: req.reference.clone(),
        // As stored (microseconds), so a replay answers exactly the same.
        expires_at: chrono::DateTime::from_timestamp_micros(expires_at).unwrap_or(req.expires_at),
        created_at: crate::types::from_micros(now),
        replayed: false,
    })
}

async fn load_reservation(tx: &Tx, id: ReservationId) -> LedgerResult<Reservation> {
    let row = tx
        .one(
            &format!(
                "SELECT {} FROM ledger_reservations WHERE id = ?",
                Reservation::COLUMNS
            ),
            vec![id.0.into()],
        )
        .await?
        .ok_or(LedgerError::UnknownReservation(id))?;
    Reservation::from_row(&row)
}

/// Ends a pending reservation: spends `used` (a transfer to the usage account, drawn from the
/// lots it held) and returns the rest to the wallet. `status` is what it ends as.
pub(crate) async fn finish_reservation(
    tx: &Tx,
    sys: &SystemIds,
    id: ReservationId,
    used: i64,
    status: ReservationStatus,
    now: i64,
) -> LedgerResult<Reservation> {
    if used < 0 {
        return Err(LedgerError::InvalidAmount(format!(
            "{used} credits used is negative"
        )));
    }
    // Only a pending, unexpired reservation can be settled; the sweep ends expired ones. The status guard makes a concurrent second settle change nothing.
    let expiry_guard = match status {
        ReservationStatus::Expired => " AND expires_at <= ?",
        ReservationStatus::Settled => " AND expires_at > ?",
        // Releasing gives the credits back either way; an overdue hold may be released early.
        _ => "",
    };
    let mut values: Vec<Value> = vec![
        status.as_str().into(),
        (status == ReservationStatus::Settled)
            .then_some(used)
            .into(),
        now.into(),
        id.0.into(),
        used.into(),
    ];
    if !expiry_guard.is_empty() {
        values.push(now.into());
    }
    let updated = tx
        .exec(
            &format!(
                "UPDATE ledger_reservations SET status = ?, used = ?, updated_at = ? \
                 WHERE id = ? AND status = 'pending' AND amount >= ?{expiry_guard}"
            ),
            values,
        )
        .await?;
    let mut reservation = load_reservation(tx, id).await?;
    if updated != 1 {
        return match reservation.status {
            s if s == status
                && (s != ReservationStatus::Settled || reservation.used == Some(used)) =>
            {
                reservation.replayed = true;
                Ok(reservation)
            }
            ReservationStatus::Settled if status == ReservationStatus::Settled => {
                Err(LedgerError::IdempotencyConflict {
                    key: format!("reservation:{id}:settle"),
                })
            }
            ReservationStatus::Pending if used > reservation.amount => {
                Err(LedgerError::InvalidAmount(format!(
                    "{used} credits used exceeds the {} reserved",
                    reservation.amount
                )))
            }
            ReservationStatus::Pending if status == ReservationStatus::Expired => Err(
                LedgerError::InvalidRequest(format!("reservation {id} has not expired yet")),
            ),
            ReservationStatus::Pending => Err(LedgerError::ReservationNotPending {
                id,
                status: "expired".into(),
            }),
            other => Err(LedgerError::ReservationNotPending {
                id,
                status: other.as_str().into(),
            }),
        };
    }
    // Debits made while this was held drew from the lots as they were then, without the hold:
    // settle them before the hold goes back to the lots.
    draw_pending(tx, &[reservation.wallet]).await?;
    let held = tx
        .all(
            &format!(
                "SELECT rl.lot_id, rl.held FROM ledger_reservation_lots rl \
                 JOIN ledger_lots l ON l.id = rl.lot_id \
                 WHERE rl.reservation_id = ? AND rl.held > 0 ORDER BY {LOT_ORDER}"
            ),
            vec![id.0.into()],
        )
        .await?;
    let mut to_spend = used;
    let mut spent: Vec<(i64, i64)> = Vec::new();
    for row in &held {
        let lot: i64 = col(row, "lot_id")?;
        let amount: i64 = col(row, "held")?;
        let take = amount.min(to_spend);
        let give_back = amount - take;
        to_spend -= take;
        if take > 0 {
            spent.push((lot, take));
        }
        let changed = tx
            .exec(
                "UPDATE ledger_lots SET held = held - ?, remaining = remaining + ? \
                 WHERE id = ? AND held >= ?",
                vec![amount.into(), give_back.into(), lot.into(), amount.into()],
            )
            .await?;
        if changed != 1 {
            return Err(LedgerError::Inconsistent(format!(
                "lot {lot} holds less than reservation {id}"
            )));
        }
    }
    if to_spend != 0 {
        return Err(LedgerError::Inconsistent(format!(
            "reservation {id} holds {to_spend} credits less than it should"
        )));
    }
    tx.exec(
        "UPDATE ledger_reservation_lots SET held = 0 WHERE reservation_id = ?",
        vec![id.0.into()],
    )
    .await?;
    let changed = tx
        .exec(
            "UPDATE ledger_balances SET reserved = reserved - ?, available = available + ? \
             WHERE account_id = ? AND reserved >= ?",
            vec![
                reservation.amount.into(),
                (reservation.amount - used).into(),
                reservation.wallet.0.into(),
                reservation.amount.into(),
            ],
        )
        .await?;
    if changed != 1 {
        return Err(LedgerError::Inconsistent(format!(
            "wallet {} reserves less than reservation {id}",
            reservation.wallet
        )));
    }
    if used > 0 {
        let kind = reservation.kind.transfer_kind();
        let key = format!("reservation:{id}:settle");
        let transfer = claim_transfer(
            tx,
            &key,
            &format!("settle|{id}|{used}"),
            kind,
            reservation.wallet,
            sys.get(kind.system_account())?,
            reservation.wallet,
            used,
            &reservation.reference,
            &None,
            Some(id),
            now,
        )
        .await?
        .ok_or_else(|| LedgerError::Inconsistent(format!("reservation {id} was settled twice")))?;
        record_allocations(tx, &paid_by(transfer, &spent)).await?;
    }
    reservation.used = (status == ReservationStatus::Settled).then_some(used);
    Ok(reservation)
}

pub(crate) async fn settle(
    tx: &Tx,
    sys: &SystemIds,
    req: &Settle,
    now: i64,
) -> LedgerResult<Reservation> {
    finish_reservation(
        tx,
        sys,
        req.reservation,
        req.used,
        ReservationStatus::Settled,
        now,
    )
    .await
}

/// The settle transfer of a reservation, if it spent anything.
pub(crate) async fn settle_transfer(tx: &Tx, id: ReservationId) -> LedgerResult<Option<Transfer>> {
    let row = tx
        .one(
            "SELECT id FROM ledger_transfers WHERE reservation_id = ?",
            vec![id.0.into()],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(load_transfer(tx, TransferId(col(&row, "id")?)).await?)),
        None => Ok(None),
    }
}

/// Releases every pending reservation whose time is up. Returns how many.
pub(crate) async fn expire_reservations(
    tx: &Tx,
    sys: &SystemIds,
    as_of: i64,
    limit: u64,
) -> LedgerResult<u64> {
    let due = tx
        .all(
            "SELECT id FROM ledger_reservations WHERE status = 'pending' AND expires_at <= ? \
             ORDER BY expires_at, id LIMIT ?",
            vec![as_of.into(), (limit as i64).into()],
        )
        .await?;
    let mut count = 0;
    for row in &due {
        let id = ReservationId(col(row, "id")?);
        finish_reservation(tx, sys, id, 0, ReservationStatus::Expired, as_of).await?;
        count += 1;
    }
    Ok(count)
}

/// Moves the unspent, unreserved credits of every lot past its expiry to the expiry account.
pub(crate) async fn expire_lots(
    tx: &Tx,
    sys: &SystemIds,
    as_of: i64,
    limit: u64,
) -> LedgerResult<u64> {
    let expiry = sys.get(SystemAccount::Expiry)?;
    // What the wallets spent comes out of their lots first: only what is left of a lot expires.
    let wallets = tx
        .all(
            "SELECT DISTINCT wallet_account_id FROM ledger_lots \
             WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?",
            vec![as_of.into(), (limit as i64).into()],
        )
        .await?
        .iter()
        .map(|row| col(row, "wallet_account_id").map(AccountId))
        .collect::<LedgerResult<Vec<_>>>()?;
    draw_pending(tx, &wallets).await?;
    let due = tx
        .all(
            "SELECT id, wallet_account_id, original, remaining, held FROM ledger_lots \
             WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ? \
             ORDER BY expires_at, id LIMIT ?",
            vec![as_of.into(), (limit as i64).into()],
        )
        .await?;
    let mut count = 0;
    for row in &due {
        let lot: i64 = col(row, "id")?;
        let wallet = AccountId(col(row, "wallet_account_id")?);
        let original: i64 = col(row, "original")?;
        let remaining: i64 = col(row, "remaining")?;
        let held: i64 = col(row, "held")?;
        // Credits a lot has permanently given up only grow, so this key is new for every
        // expiry of the lot (a lot can expire again after a reservation releases into it).
        let key = format!("expiry:lot:{lot}:{}", original - remaining - held);
        let transfer = claim_transfer(
            tx,
            &key,
            &format!("expiry|{lot}|{remaining}"),
            TransferKind::Expiry,
            wallet,
            expiry,
            wallet,
            remaining,
            &None,
            &Some(format!("lot {lot} expired")),
            None,
            as_of,
        )
        .await?
        .ok_or_else(|| LedgerError::Inconsistent(format!("lot {lot} expired twice")))?;
        let changed = tx
            .exec(
                "UPDATE ledger_balances SET available = available - ? \
                 WHERE account_id = ? AND available >= ?",
                vec![remaining.into(), wallet.0.into(), remaining.into()],
            )
            .await?;
        let lot_changed = tx
            .exec(
                "UPDATE ledger_lots SET remaining = 0 WHERE id = ? AND remaining = ?",
                vec![lot.into(), remaining.into()],
            )
            .await?;
        if changed != 1 || lot_changed != 1 {
            return Err(LedgerError::Inconsistent(format!(
                "wallet {wallet} could not give up lot {lot}"
            )));
        }
        record_allocations(tx, &paid_by(transfer, &[(lot, remaining)])).await?;
        count += 1;
    }
    Ok(count)
}

/// Takes back up to `max` credits from a wallet's paid lots (for a refund Razorpay made): the
/// lots of `prefer` (the refunded payment) first, then other paid lots, soonest expiry first.
/// Promotional credits are never taken. Returns the transfer, if anything could be taken.
pub(crate) async fn take_back_paid(
    tx: &Tx,
    sys: &SystemIds,
    req: &crate::model::TakeBack,
    now: i64,
) -> LedgerResult<Option<Receipt>> {
    let fingerprint = format!("takeback|{}|{}|{:?}", req.wallet, req.max, req.reference);
    if let Some(row) = tx
        .one(
            &format!(
                "SELECT {}, fingerprint FROM ledger_transfers WHERE idempotency_key = ?",
                Transfer::COLUMNS
            ),
            vec![req.key.as_str().into()],
        )
        .await?
    {
        return if col::<String>(&row, "fingerprint")? == fingerprint {
            Ok(Some(Receipt {
                transfer: Transfer::from_row(&row)?,
                replayed: true,
            }))
        } else {
            Err(LedgerError::IdempotencyConflict {
                key: req.key.as_str().into(),
            })
        };
    }
    draw_pending(tx, &[req.wallet]).await?;
    let prefer = req.reference.clone().unwrap_or_default();
    let lots = tx
        .all(
            &format!(
                "SELECT l.id, l.remaining FROM ledger_lots l \
                 WHERE l.wallet_account_id = ? AND l.remaining > 0 AND l.source = 'paid' \
                 ORDER BY CASE WHEN l.payment_reference = ? THEN 0 ELSE 1 END, {LOT_ORDER}"
            ),
            vec![req.wallet.0.into(), prefer.into()],
        )
        .await?;
    let mut left = req.max.get();
    let mut taken: Vec<(i64, i64)> = Vec::new();
    for lot in &lots {
        if left == 0 {
            break;
        }
        let id: i64 = col(lot, "id")?;
        let take = col::<i64>(lot, "remaining")?.min(left);
        taken.push((id, take));
        left -= take;
    }
    let amount: i64 = taken.iter().map(|(_, t)| t).sum();
    if amount == 0 {
        return Ok(None);
    }
    let kind = TransferKind::RefundReversal;
    let id = claim_transfer(
        tx,
        req.key.as_str(),
        &fingerprint,
        kind,
        req.wallet,
        sys.get(kind.system_account())?,
        req.wallet,
        amount,
        &req.reference,
        &req.memo,
        None,
        now,
    )
    .await?
    .ok_or_else(|| LedgerError::Inconsistent("take-back key appeared mid-transaction".into()))?;
    if let Err(refusal) = withdraw_available(tx, req.wallet, amount, false).await? {
        return Err(LedgerError::Inconsistent(format!(
            "paid lots exceed the balance: {refusal}"
        )));
    }
    for (lot, take) in &taken {
        let changed = tx
            .exec(
                "UPDATE ledger_lots SET remaining = remaining - ? WHERE id = ? AND remaining >= ?",
                vec![(*take).into(), (*lot).into(), (*take).into()],
            )
            .await?;
        if changed != 1 {
            return Err(LedgerError::Inconsistent(format!(
                "lot {lot} changed while taking back"
            )));
        }
    }
    record_allocations(tx, &paid_by(id, &taken)).await?;
    Ok(Some(Receipt {
        transfer: load_transfer(tx, id).await?,
        replayed: false,
    }))
}

/// Runs one operation of a batch.
pub(crate) async fn apply(
    tx: &Tx,
    sys: &SystemIds,
    op: &crate::Op,
    now: i64,
) -> LedgerResult<Outcome> {
    use crate::Op;
    match op {
        Op::Credit(c) => credit(tx, sys, c, now).await.map(Outcome::Transfer),
        Op::Debit(d) => debit(tx, sys, d, now).await.map(Outcome::Transfer),
        Op::Reserve(r) => reserve(tx, r, now).await.map(Outcome::Reservation),
        Op::Settle(s) => settle(tx, sys, s, now).await.map(Outcome::Reservation),
        Op::Release(id) => finish_reservation(tx, sys, *id, 0, ReservationStatus::Released, now)
            .await
            .map(Outcome::Reservation),
    }
}

/// A refusal that leaves the transaction usable for the other items of a batch.
pub(crate) fn is_refusal(e: &LedgerError) -> bool {
    !matches!(
        e,
        LedgerError::Storage(_) | LedgerError::Inconsistent(_) | LedgerError::Contention(_)
    )
}
