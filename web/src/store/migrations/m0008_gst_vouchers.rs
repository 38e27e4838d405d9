//! GST documents (issue 19): customers' billing profiles, receipt and refund vouchers with
//! everything printed on them (a voucher never changes once issued: the parties are copied into
//! it), and the counters that number each series consecutively per financial year.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0008_gst_vouchers",
    sql: GST_VOUCHERS,
};

const GST_VOUCHERS: &str = r#"
CREATE TABLE web_billing_profiles (
    user_id {INT} PRIMARY KEY REFERENCES web_users (id),
    legal_name TEXT NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
    address TEXT NOT NULL CHECK (length(address) BETWEEN 1 AND 500),
    state_code {INT} NOT NULL,
    gstin TEXT,
    updated_at {INT} NOT NULL
){STRICT};

-- The last number given in each series and financial year. Taking a number is one upsert that
-- holds the row until its transaction ends: a number rolled back is given again (no gaps) and
-- never twice (no duplicates).
CREATE TABLE web_voucher_counters (
    kind TEXT NOT NULL CHECK (kind IN ('receipt', 'refund')),
    financial_year {INT} NOT NULL,
    last {INT} NOT NULL CHECK (last > 0),
    PRIMARY KEY (kind, financial_year)
){STRICT};

CREATE TABLE web_vouchers (
    id {ID},
    kind TEXT NOT NULL CHECK (kind IN ('receipt', 'refund')),
    number TEXT NOT NULL UNIQUE CHECK (length(number) <= 16),
    financial_year {INT} NOT NULL,
    sequence {INT} NOT NULL CHECK (sequence > 0),
    topup_id {INT} NOT NULL REFERENCES web_topups (id),
    user_id {INT} NOT NULL REFERENCES web_users (id),
    payment_id TEXT NOT NULL,
    refund_id TEXT UNIQUE,
    receipt_voucher_id {INT} REFERENCES web_vouchers (id),
    amount_paise {INT} NOT NULL CHECK (amount_paise > 0),
    taxable_paise {INT} NOT NULL,
    cgst_paise {INT} NOT NULL,
    sgst_paise {INT} NOT NULL,
    igst_paise {INT} NOT NULL,
    rate_bps {INT} NOT NULL,
    place_of_supply {INT} NOT NULL,
    sac TEXT NOT NULL,
    seller_name TEXT NOT NULL,
    seller_address TEXT NOT NULL,
    seller_gstin TEXT NOT NULL,
    buyer_name TEXT NOT NULL,
    buyer_address TEXT NOT NULL,
    buyer_gstin TEXT,
    issued_at {INT} NOT NULL,
    UNIQUE (kind, financial_year, sequence),
    CHECK (taxable_paise + cgst_paise + sgst_paise + igst_paise = amount_paise)
){STRICT};
CREATE UNIQUE INDEX web_vouchers_receipt_of_topup ON web_vouchers (topup_id) WHERE kind = 'receipt';
CREATE INDEX web_vouchers_user ON web_vouchers (user_id, id);
CREATE INDEX web_vouchers_issued ON web_vouchers (issued_at);
"#;
