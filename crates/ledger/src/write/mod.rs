//! The write path. Every function here runs inside one write transaction and keeps the rules of
//! `docs/architecture.md`:
//! - the first statement claims the idempotency key (`INSERT … ON CONFLICT DO NOTHING`), and a
//!   balance changes only when that claim inserted a row;
//! - a wallet is debited only by a conditional `UPDATE … WHERE available >= amount`, never by
//!   reading then writing, with `CHECK (available >= 0)` behind it;
//! - a business refusal (insufficient credits, conflict) leaves nothing behind in the transaction,
//!   so a batch can refuse one item and commit the others.
//!
//! Layers, each importing only those below it:
//! 1. `sql` (shared SQL), then `claims` (system accounts, fingerprints, key claims, the guarded
//!    withdrawal, allocation rows);
//! 2. `draw` (settling debits with their lots) and `claim_and_withdraw` (a debit in one round trip);
//! 3. `lots` (holding lots for a reservation and letting go of them, expiry, a refund's
//!    take-back), then `credit`, `debit` and `reservations` (which holds through `lots`). A
//!    credit, a reservation and every lot operation draw a wallet's outstanding debits first, so
//!    `draw` sits below them;
//! 4. `batch` (debits in sets) and `apply` (one operation of a submitted list).

pub(crate) mod apply;
pub(crate) mod batch;
pub(crate) mod claim_and_withdraw;
pub(crate) mod claims;
pub(crate) mod credit;
pub(crate) mod debit;
pub(crate) mod draw;
pub(crate) mod lots;
pub(crate) mod reservations;
pub(crate) mod sql;
