//! Indexes for retention (`retention`): housekeeping finds expired sessions and webhook events
//! processed long ago without scanning their tables.

use super::sql_migration::SqlMigration;

pub(super) const MIGRATION: SqlMigration = SqlMigration {
    name: "m0006_retention",
    sql: RETENTION,
};

const RETENTION: &str = r#"
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
CREATE INDEX web_webhook_events_processed ON web_webhook_events (processed_at) WHERE processed_at IS NOT NULL;
"#;
