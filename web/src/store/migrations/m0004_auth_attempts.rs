//! Log-in attempts counted per key (an account, or an account and an address) in one row each,
//! so a count is one atomic statement (`store::auth_attempts::count`). They replace the table of
//! failures, whose count-then-insert let parallel guesses through.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0004_auth_attempts",
    sql: AUTH_ATTEMPTS,
};

const AUTH_ATTEMPTS: &str = r#"
CREATE TABLE web_auth_attempts (
    key TEXT PRIMARY KEY,
    window_start {INT} NOT NULL,
    attempts {INT} NOT NULL CHECK (attempts > 0)
){STRICT};
CREATE INDEX web_auth_attempts_window ON web_auth_attempts (window_start);
DROP TABLE web_login_failures;
"#;
