//! The first tables: users, sessions, top-ups, webhook events, API keys, charges, reservations,
//! alerts, the outbox and refunds.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0001_create_web_tables",
    sql: SCHEMA,
};

const SCHEMA: &str = r#"
CREATE TABLE web_users (
    id {ID},
    email TEXT NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
    password_hash TEXT NOT NULL,
    wallet_account_id {INT} NOT NULL UNIQUE REFERENCES ledger_accounts (id),
    created_at {INT} NOT NULL
){STRICT};

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id {INT} NOT NULL REFERENCES web_users (id),
    created_at {INT} NOT NULL,
    expires_at {INT} NOT NULL
){STRICT};
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE web_login_failures (
    id {ID},
    email TEXT NOT NULL,
    at {INT} NOT NULL
){STRICT};
CREATE INDEX web_login_failures_email ON web_login_failures (email, at);

CREATE TABLE web_topups (
    id {ID},
    user_id {INT} NOT NULL REFERENCES web_users (id),
    amount_paise {INT} NOT NULL CHECK (amount_paise > 0),
    credits {INT} NOT NULL CHECK (credits > 0),
    status TEXT NOT NULL CHECK (status IN ('creating', 'pending', 'paid', 'failed', 'cancelled', 'expired', 'flagged')),
    razorpay_order_id TEXT UNIQUE,
    razorpay_payment_id TEXT UNIQUE,
    method TEXT,
    failure_reason TEXT,
    flag_reason TEXT,
    credited_transfer_id {INT} UNIQUE REFERENCES ledger_transfers (id),
    -- Reconciliation's lease: one instance checks a top-up at a time.
    reconcile_locked_until {INT},
    created_at {INT} NOT NULL,
    updated_at {INT} NOT NULL,
    CHECK ((status = 'paid') = (credited_transfer_id IS NOT NULL))
){STRICT};
CREATE INDEX web_topups_user ON web_topups (user_id, id);
CREATE INDEX web_topups_status ON web_topups (status, created_at);

-- Razorpay webhooks, stored as received (deduplicated by event id) and processed by a worker.
CREATE TABLE web_webhook_events (
    event_id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at {INT} NOT NULL,
    processed_at {INT},
    attempts {INT} NOT NULL DEFAULT 0,
    locked_until {INT},
    last_error TEXT
){STRICT};
CREATE INDEX web_webhook_events_pending ON web_webhook_events (received_at) WHERE processed_at IS NULL;

-- API keys for Kalp Studio's sending services: only a hash is kept; the key is shown once.
CREATE TABLE web_api_keys (
    id {ID},
    user_id {INT} NOT NULL REFERENCES web_users (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at {INT} NOT NULL,
    revoked_at {INT}
){STRICT};
CREATE INDEX web_api_keys_user ON web_api_keys (user_id, id);

-- Answers to charges, by the caller's Idempotency-Key: a retry gets the original answer.
CREATE TABLE web_charges (
    id {ID},
    user_id {INT} NOT NULL REFERENCES web_users (id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status {INT} NOT NULL,
    response TEXT NOT NULL,
    created_at {INT} NOT NULL,
    UNIQUE (user_id, idempotency_key)
){STRICT};

-- Reservations made through the API: the ledger's reservation and the price per message.
CREATE TABLE web_reservations (
    ledger_reservation_id {INT} PRIMARY KEY REFERENCES ledger_reservations (id),
    user_id {INT} NOT NULL REFERENCES web_users (id),
    service TEXT NOT NULL CHECK (service IN ('email', 'sms')),
    unit_credits {INT} NOT NULL CHECK (unit_credits > 0),
    quantity {INT} NOT NULL CHECK (quantity > 0),
    created_at {INT} NOT NULL
){STRICT};

-- Low-balance alerts: one per downward crossing of the threshold; re-armed above it.
CREATE TABLE web_alert_settings (
    user_id {INT} PRIMARY KEY REFERENCES web_users (id),
    threshold {INT} NOT NULL CHECK (threshold >= 0),
    armed {INT} NOT NULL CHECK (armed IN (0, 1))
){STRICT};
CREATE TABLE web_alerts (
    id {ID},
    user_id {INT} NOT NULL REFERENCES web_users (id),
    threshold {INT} NOT NULL,
    balance {INT} NOT NULL,
    created_at {INT} NOT NULL
){STRICT};
CREATE INDEX web_alerts_user ON web_alerts (user_id, id);
-- Emails to send, written in the same transaction as what caused them.
CREATE TABLE web_outbox (
    id {ID},
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at {INT} NOT NULL,
    sent_at {INT}
){STRICT};

-- Refunds Razorpay reported, each applied once: credits taken back, and any shortfall.
CREATE TABLE web_refunds (
    refund_id TEXT PRIMARY KEY,
    topup_id {INT} NOT NULL REFERENCES web_topups (id),
    payment_id TEXT NOT NULL,
    amount_paise {INT} NOT NULL CHECK (amount_paise > 0),
    credits {INT} NOT NULL CHECK (credits >= 0),
    taken {INT} NOT NULL CHECK (taken >= 0),
    shortfall {INT} NOT NULL CHECK (shortfall >= 0),
    transfer_id {INT} REFERENCES ledger_transfers (id),
    created_at {INT} NOT NULL
){STRICT};
"#;
