//! An online copy of a SQLite database (`web backup PATH`): `VACUUM INTO` writes a consistent
//! snapshot to a new file while the app keeps serving. PostgreSQL has its own tools
//! (docs/operations.md).

use sea_orm::{DbBackend, Statement};

use super::{StoreError, StoreResult, Writer};

/// Writes a consistent copy of the SQLite database to `path` (a new file).
pub async fn vacuum_into(writer: &impl Writer, path: &str) -> StoreResult<()> {
    if writer.get_database_backend() != DbBackend::Sqlite {
        return Err(StoreError::Db(sea_orm::DbErr::Custom(
            "backup copies SQLite databases; for PostgreSQL use pg_dump (docs/operations.md)"
                .into(),
        )));
    }
    writer
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "VACUUM INTO ?",
            [path.into()],
        ))
        .await?;
    Ok(())
}
