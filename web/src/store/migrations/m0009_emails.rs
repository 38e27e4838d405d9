//! Emails (issue 19): the outbox learns to be sent (an HTML part beside the text `body`, an
//! attached voucher, attempts with backoff, a lease so one sender at a time holds a row, and
//! parking after repeated failure), a key that writes each email once, and password-reset
//! tokens (stored hashed, single use, with an expiry).

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0009_emails",
    sql: EMAILS,
};

const EMAILS: &str = r#"
ALTER TABLE web_outbox ADD COLUMN html_body TEXT NOT NULL DEFAULT '';
ALTER TABLE web_outbox ADD COLUMN voucher_id {INT} REFERENCES web_vouchers (id);
ALTER TABLE web_outbox ADD COLUMN once_key TEXT;
ALTER TABLE web_outbox ADD COLUMN attempts {INT} NOT NULL DEFAULT 0;
ALTER TABLE web_outbox ADD COLUMN next_attempt_at {INT} NOT NULL DEFAULT 0;
ALTER TABLE web_outbox ADD COLUMN claimed_until {INT};
ALTER TABLE web_outbox ADD COLUMN last_error TEXT;
ALTER TABLE web_outbox ADD COLUMN parked_at {INT};
CREATE UNIQUE INDEX web_outbox_once ON web_outbox (once_key);
-- What the sender looks for: unsent, not parked, in the order they were written.
CREATE INDEX web_outbox_due ON web_outbox (next_attempt_at, id) WHERE sent_at IS NULL AND parked_at IS NULL;
-- What Needs attention lists on every render: the few parked, never a scan of all sent mail.
CREATE INDEX web_outbox_parked ON web_outbox (id) WHERE parked_at IS NOT NULL AND sent_at IS NULL;
-- What a customer was sent (operators' customer page, tests).
CREATE INDEX web_outbox_recipient ON web_outbox (recipient, id);

CREATE TABLE web_password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id {INT} NOT NULL REFERENCES web_users (id),
    created_at {INT} NOT NULL,
    expires_at {INT} NOT NULL,
    used_at {INT}
){STRICT};
CREATE INDEX web_password_resets_user ON web_password_resets (user_id);
"#;
