//! What every path Razorpay can take needs stored (docs/architecture.md, "The top-up state
//! machine"): the rate a top-up was sold at, Razorpay's failure code instead of free text (a
//! failure callback is unsigned, so its words are never kept), whether the bank has answered,
//! refunds with their status and the credits they moved, and payments that never credited.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0003_every_payment_path",
    sql: EVERY_PAYMENT_PATH,
};

const EVERY_PAYMENT_PATH: &str = r#"
-- The credits a top-up buys are fixed when it is created: its rate is stored beside them.
ALTER TABLE web_topups ADD COLUMN paise_per_credit {INT} NOT NULL DEFAULT 0 CHECK (paise_per_credit >= 0);
UPDATE web_topups SET paise_per_credit = amount_paise / credits;
-- Razorpay's reason code for a failure; pages say it in our own words.
ALTER TABLE web_topups ADD COLUMN failure_code TEXT;
ALTER TABLE web_topups DROP COLUMN failure_reason;
-- When a check found the payment still `created`: the bank has not answered.
ALTER TABLE web_topups ADD COLUMN bank_pending_at {INT};
-- Refunds of the payment that credited the top-up: paise refunded (not failed), credits taken
-- back (net of those returned), and credits that could not be taken (already spent).
ALTER TABLE web_topups ADD COLUMN refunded_paise {INT} NOT NULL DEFAULT 0 CHECK (refunded_paise >= 0);
ALTER TABLE web_topups ADD COLUMN refund_taken {INT} NOT NULL DEFAULT 0 CHECK (refund_taken >= 0);
ALTER TABLE web_topups ADD COLUMN refund_shortfall {INT} NOT NULL DEFAULT 0 CHECK (refund_shortfall >= 0);
UPDATE web_topups SET
    refunded_paise = (SELECT COALESCE(SUM(r.amount_paise), 0) FROM web_refunds r WHERE r.topup_id = web_topups.id),
    refund_taken = (SELECT COALESCE(SUM(r.taken), 0) FROM web_refunds r WHERE r.topup_id = web_topups.id),
    refund_shortfall = (SELECT COALESCE(SUM(r.shortfall), 0) FROM web_refunds r WHERE r.topup_id = web_topups.id);

ALTER TABLE web_refunds ADD COLUMN status TEXT NOT NULL DEFAULT 'processed' CHECK (status IN ('pending', 'processed', 'failed'));
-- Credits given back when the refund failed.
ALTER TABLE web_refunds ADD COLUMN returned {INT} NOT NULL DEFAULT 0 CHECK (returned >= 0);
ALTER TABLE web_refunds ADD COLUMN returned_transfer_id {INT} REFERENCES ledger_transfers (id);
ALTER TABLE web_refunds ADD COLUMN updated_at {INT} NOT NULL DEFAULT 0;
CREATE INDEX web_refunds_topup ON web_refunds (topup_id);
CREATE INDEX web_refunds_pending ON web_refunds (updated_at) WHERE status = 'pending';

-- Payments on our orders that never credited: a second captured payment on a paid order
-- (refunded by us in full), or one Razorpay returned before it was captured.
CREATE TABLE web_payments (
    payment_id TEXT PRIMARY KEY,
    topup_id {INT} NOT NULL REFERENCES web_topups (id),
    amount_paise {INT} NOT NULL CHECK (amount_paise > 0),
    kind TEXT NOT NULL CHECK (kind IN ('duplicate', 'returned')),
    refund_id TEXT,
    refund_attempts {INT} NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL
){STRICT};
CREATE INDEX web_payments_topup ON web_payments (topup_id);
CREATE INDEX web_payments_refund_due ON web_payments (created_at) WHERE kind = 'duplicate' AND refund_id IS NULL;

-- How far reconciliation has read Razorpay's payment and refund lists (Unix seconds).
CREATE TABLE web_cursors (
    name TEXT PRIMARY KEY,
    position {INT} NOT NULL
){STRICT};
"#;
