//! Schema migrations: the numbered SQL files under `migrations/`, applied in order inside one
//! transaction under a PostgreSQL advisory lock, and recorded in `schema_version`.
//!
//! Several nodes may start at once against a fresh database: the transaction-scoped advisory lock
//! makes them take turns, and each sees the versions the others recorded. A database whose schema
//! is newer than this binary's is refused rather than used.

use deadpool_postgres::tokio_postgres::Client;

use crate::error::BackendError;

/// The key of the advisory lock migrations hold ("otastrm" in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_7461_7374_726d;

/// `(version, name, SQL)`, in order; versions are 1, 2, 3, ... without gaps.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "objects", include_str!("../migrations/0001_objects.sql")),
    (2, "records", include_str!("../migrations/0002_records.sql")),
    (
        3,
        "identity",
        include_str!("../migrations/0003_identity.sql"),
    ),
];

/// The schema version this binary needs.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Brings the database to [`SCHEMA_VERSION`]; returns how many migrations this call applied.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, BackendError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version     integer PRIMARY KEY,
             name        text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(BackendError::Schema(format!(
            "the database schema is at version {current}, newer than this otastream's {SCHEMA_VERSION}"
        )));
    }
    let mut applied = 0;
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        applied += 1;
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_run_one_two_three_and_files_are_numbered_alike() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, index + 1, "no gaps, no reordering");
        }
    }
}
