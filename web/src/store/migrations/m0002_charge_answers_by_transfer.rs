//! Charge answers keyed by the ledger transfer they answer for, instead of by (user, the
//! caller's `Idempotency-Key`). The ledger's unique transfer key (which holds a hash of the
//! caller's key) already finds them, so a charge writes one index entry at a random place
//! instead of two: those random B-tree pages were about half of what each group commit wrote.

use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
use sea_orm_migration::{MigrationName, MigrationTrait, SchemaManager, async_trait};
use sha2::{Digest, Sha256};

pub(super) struct ChargeAnswersByTransfer;

impl MigrationName for ChargeAnswersByTransfer {
    fn name(&self) -> &str {
        "m0002_charge_answers_by_transfer"
    }
}

const CHARGE_ANSWERS: &str = r#"
CREATE TABLE web_charge_answers (
    transfer_id {INT} PRIMARY KEY REFERENCES ledger_transfers (id),
    user_id {INT} NOT NULL REFERENCES web_users (id),
    request_hash TEXT NOT NULL,
    status {INT} NOT NULL,
    response TEXT NOT NULL,
    created_at {INT} NOT NULL
){STRICT};
"#;

/// Rows of the old table moved per round.
const MOVE_PAGE: i64 = 500;

/// The ledger key a charge used when this migration was written: per account, and a hex SHA-256
/// of the caller's key. A frozen copy; the API's own derivation may change, this may not.
fn charge_ledger_key(user_id: i64, idempotency_key: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("charge:{user_id}:{hex}")
}

fn col<T: sea_orm::TryGetable>(row: &QueryResult, name: &str) -> Result<T, DbErr> {
    row.try_get::<T>("", name)
}

#[async_trait::async_trait]
impl MigrationTrait for ChargeAnswersByTransfer {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::sql_migration::run_sql(manager, CHARGE_ANSWERS).await?;
        let backend = manager.get_database_backend();
        let conn = manager.get_connection();
        // Each stored answer moves to the transfer its charge made: the one whose ledger key
        // the API derived from the caller's key.
        let mut after = 0i64;
        loop {
            let rows = conn
                .query_all_raw(ledger::statement(
                    backend,
                    "SELECT c.id, c.user_id, c.idempotency_key, c.request_hash, c.status, c.response, \
                     c.created_at FROM web_charges c WHERE c.id > ? ORDER BY c.id LIMIT ?",
                    vec![after.into(), MOVE_PAGE.into()],
                ))
                .await?;
            let Some(last) = rows.last() else { break };
            after = col(last, "id")?;
            for row in &rows {
                let user_id: i64 = col(row, "user_id")?;
                let key = charge_ledger_key(user_id, &col::<String>(row, "idempotency_key")?);
                let values: Vec<Value> = vec![
                    user_id.into(),
                    col::<String>(row, "request_hash")?.into(),
                    col::<i64>(row, "status")?.into(),
                    col::<String>(row, "response")?.into(),
                    col::<i64>(row, "created_at")?.into(),
                    key.into(),
                ];
                conn.execute_raw(ledger::statement(
                    backend,
                    "INSERT INTO web_charge_answers (transfer_id, user_id, request_hash, status, response, created_at) \
                     SELECT t.id, ?, ?, ?, ?, ? FROM ledger_transfers t WHERE t.idempotency_key = ?",
                    values,
                ))
                .await?;
            }
        }
        conn.execute_unprepared("DROP TABLE web_charges").await?;
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    /// The frozen key must stay what the API derived when the migration was written.
    #[test]
    fn the_frozen_charge_key_is_the_one_charges_used() {
        assert_eq!(
            super::charge_ledger_key(7, "abc"),
            "charge:7:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
