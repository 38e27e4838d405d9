//! What happens to lots besides a plain debit's drawing (`draw`): holding them for a reservation
//! and letting go of them, expiry (what is left of a lot past its date goes to the expiry
//! account) and a refund's take-back (paid credits only, the refunded payment's lots first).

use sea_orm::Value;

use crate::{
    db::{Tx, col},
    error::{LedgerError, LedgerResult},
    model::{Receipt, TakeBack, Transfer},
    types::{AccountId, ReservationId, SystemAccount, TransferKind},
    write::{
        claims::{
            SystemIds, claim_transfer, load_transfer, paid_by, record_allocations,
            withdraw_available,
        },
        draw::{draw_pending, spending_lots},
        sql::LOT_ORDER,
    },
};

/// Holds `amount` of a wallet's lots, in spending order, for a reservation: `remaining` moves to
/// `held`.
pub(crate) async fn hold_lots(
    tx: &Tx,
    wallet: AccountId,
    amount: i64,
    reservation: ReservationId,
) -> LedgerResult<()> {
    let lots = spending_lots(tx, &[(wallet.0, amount)])
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

/// Lets go of the lots a reservation held: `used` of them is spent (in spending order), the rest
/// goes back to the lots. Returns the `(lot, amount)`s spent.
pub(crate) async fn unhold_lots(
    tx: &Tx,
    id: ReservationId,
    used: i64,
) -> LedgerResult<Vec<(i64, i64)>> {
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
    Ok(spent)
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
    req: &TakeBack,
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
