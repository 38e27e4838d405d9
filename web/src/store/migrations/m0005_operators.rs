//! Operators (issue 18): a role on accounts, the log of every operator action, which items of
//! Needs attention were resolved, customers' requests to refund unused credits, and the refunds
//! of unused credits themselves (planned, credits taken back, before Razorpay is asked).

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0005_operators",
    sql: OPERATORS,
};

const OPERATORS: &str = r#"
ALTER TABLE web_users ADD COLUMN is_operator {INT} NOT NULL DEFAULT 0 CHECK (is_operator IN (0, 1));

-- The payment a flagged top-up is about, and how an operator resolved it.
ALTER TABLE web_topups ADD COLUMN flagged_payment_id TEXT;
ALTER TABLE web_topups ADD COLUMN resolution TEXT CHECK (resolution IN ('credited', 'refunded', 'dismissed'));

-- Every operator action: who, when, what, why, and the transfer or refund it caused. The key
-- makes an action happen once: a form's own token (a double click), or the item it resolves
-- (two operators at once).
CREATE TABLE web_operator_actions (
    id {ID},
    action_key TEXT NOT NULL UNIQUE,
    operator_id {INT} NOT NULL REFERENCES web_users (id),
    customer_id {INT} REFERENCES web_users (id),
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    transfer_id {INT} REFERENCES ledger_transfers (id),
    razorpay_refund_id TEXT,
    created_at {INT} NOT NULL
){STRICT};
CREATE INDEX web_operator_actions_customer ON web_operator_actions (customer_id, id);

-- A customer's request to refund unused paid credits; at most one open per account.
CREATE TABLE web_refund_requests (
    id {ID},
    user_id {INT} NOT NULL REFERENCES web_users (id),
    status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'declined')),
    created_at {INT} NOT NULL,
    decided_at {INT},
    decided_by {INT} REFERENCES web_users (id)
){STRICT};
CREATE UNIQUE INDEX web_refund_requests_open ON web_refund_requests (user_id) WHERE status = 'requested';
CREATE INDEX web_refund_requests_user ON web_refund_requests (user_id, id);

-- One refund of unused paid credits to one payment. Planned, with its credits taken back, in one
-- transaction before Razorpay is asked; `refund_id` is Razorpay's answer (or a report of it,
-- matched by the key in the refund's notes). The key is also Razorpay's X-Refund-Idempotency.
CREATE TABLE web_credit_refunds (
    refund_key TEXT PRIMARY KEY,
    request_id {INT} REFERENCES web_refund_requests (id),
    user_id {INT} NOT NULL REFERENCES web_users (id),
    topup_id {INT} NOT NULL REFERENCES web_topups (id),
    payment_id TEXT NOT NULL,
    credits {INT} NOT NULL CHECK (credits > 0),
    amount_paise {INT} NOT NULL CHECK (amount_paise > 0),
    transfer_id {INT} NOT NULL REFERENCES ledger_transfers (id),
    refund_id TEXT UNIQUE,
    -- planned: credits taken, Razorpay not yet sure to have it; sent: Razorpay's refund is
    -- linked; returned: Razorpay refused it, the credits came back.
    status TEXT NOT NULL CHECK (status IN ('planned', 'sent', 'returned')),
    returned_transfer_id {INT} REFERENCES ledger_transfers (id),
    attempts {INT} NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL
){STRICT};
CREATE INDEX web_credit_refunds_planned ON web_credit_refunds (created_at) WHERE status = 'planned';
CREATE INDEX web_credit_refunds_user ON web_credit_refunds (user_id, created_at);
"#;
