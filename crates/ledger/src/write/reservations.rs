//! Reservations: credits held for a campaign (from the balance and from the lots, in spending
//! order), then settled with what was used (spent from the held lots, the rest returned),
//! released, or expired by the sweep.

use sea_orm::Value;

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    model::{Reservation, ReservationStatus, Reserve, Settle, Transfer},
    types::{ReservationId, TransferId},
    write::{
        claims::{
            SystemIds, claim_transfer, legacy_reserve_fingerprint, load_transfer, missing_wallet,
            opt, paid_by, record_allocations, reserve_fingerprint, withdraw_available,
        },
        draw::draw_pending,
        lots::{hold_lots, unhold_lots},
    },
};

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
    let marked = mark_finished(tx, id, used, status, now).await?;
    let mut reservation = load_reservation(tx, id).await?;
    if !marked {
        return already_finished(reservation, id, used, status);
    }
    // Debits made while this was held drew from the lots as they were then, without the hold:
    // settle them before the hold goes back to the lots.
    draw_pending(tx, &[reservation.wallet]).await?;
    let spent = unhold_lots(tx, id, used).await?;
    unhold_balance(tx, &reservation, used).await?;
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

/// Moves a pending reservation to `status`; false when it was not pending (or, settling, had
/// expired; expiring, had not), so that a concurrent second finish changes nothing.
async fn mark_finished(
    tx: &Tx,
    id: ReservationId,
    used: i64,
    status: ReservationStatus,
    now: i64,
) -> LedgerResult<bool> {
    // Only a pending, unexpired reservation can be settled; the sweep ends expired ones.
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
    Ok(updated == 1)
}

/// The answer to finishing a reservation that was not pending: a replay of the same finish, or
/// why not.
fn already_finished(
    mut reservation: Reservation,
    id: ReservationId,
    used: i64,
    status: ReservationStatus,
) -> LedgerResult<Reservation> {
    match reservation.status {
        s if s == status && (s != ReservationStatus::Settled || reservation.used == Some(used)) => {
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
    }
}

/// Moves a reservation out of its wallet's reserved balance: what was not used becomes available
/// again.
async fn unhold_balance(tx: &Tx, reservation: &Reservation, used: i64) -> LedgerResult<()> {
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
            "wallet {} reserves less than reservation {}",
            reservation.wallet, reservation.id
        )));
    }
    Ok(())
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
