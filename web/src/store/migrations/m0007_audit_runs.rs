//! The audit's latest findings, kept so that Needs attention can show them: each run of
//! `web audit` or `/admin/audit` is recorded with its differences.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0007_audit_runs",
    sql: AUDIT_RUNS,
};

const AUDIT_RUNS: &str = r#"
CREATE TABLE web_audit_runs (
    id {ID},
    ran_at {INT} NOT NULL,
    days {INT} NOT NULL,
    clean {INT} NOT NULL CHECK (clean IN (0, 1)),
    -- One difference per line.
    differences TEXT NOT NULL
){STRICT};
"#;
