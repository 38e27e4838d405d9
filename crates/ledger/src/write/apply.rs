//! One operation of a submitted list (`Ledger::submit`), and which failures are refusals that
//! leave the transaction usable for the others.

use crate::{
    db::Tx,
    error::{LedgerError, LedgerResult},
    model::{Op, OpOutcome, ReservationStatus},
    write::{
        claims::SystemIds,
        credit::credit,
        debit::debit,
        reservations::{finish_reservation, reserve, settle},
    },
};

/// Runs one operation of a batch.
pub(crate) async fn apply(tx: &Tx, sys: &SystemIds, op: &Op, now: i64) -> LedgerResult<OpOutcome> {
    match op {
        Op::Credit(c) => credit(tx, sys, c, now).await.map(OpOutcome::Transfer),
        Op::Debit(d) => debit(tx, sys, d, now).await.map(OpOutcome::Transfer),
        Op::Reserve(r) => reserve(tx, r, now).await.map(OpOutcome::Reservation),
        Op::Settle(s) => settle(tx, sys, s, now).await.map(OpOutcome::Reservation),
        Op::Release(id) => finish_reservation(tx, sys, *id, 0, ReservationStatus::Released, now)
            .await
            .map(OpOutcome::Reservation),
    }
}

/// A refusal that leaves the transaction usable for the other items of a batch.
pub(crate) fn is_refusal(e: &LedgerError) -> bool {
    !matches!(
        e,
        LedgerError::Storage(_) | LedgerError::Inconsistent(_) | LedgerError::Contention(_)
    )
}
