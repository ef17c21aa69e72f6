//! The SQLite side: opening `meta.sqlite3` (WAL, `synchronous=FULL`), schema migrations keyed by
//! `PRAGMA user_version`, and the generic JSON resource table with its [`Tx`] handle.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use crate::{Kind, StoreError};

/// Schema migrations, applied in order; migration `i` moves `user_version` from `i` to `i + 1`.
/// Never edit a shipped entry: append a new one.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE resources (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    parent  TEXT,
    body    TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX resources_by_parent ON resources (kind, parent, seq);

CREATE TABLE buckets (
    name        TEXT PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    versioning  TEXT NOT NULL
);

CREATE TABLE versions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket          TEXT NOT NULL REFERENCES buckets (name),
    key             TEXT NOT NULL,
    version_id      TEXT NOT NULL,
    delete_marker   INTEGER NOT NULL,
    file            TEXT,
    etag            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    modified_ms     INTEGER NOT NULL,
    content_type    TEXT,
    user_metadata   TEXT NOT NULL,
    UNIQUE (bucket, key, version_id)
);
CREATE INDEX versions_by_key ON versions (bucket, key, seq);

CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    bucket          TEXT NOT NULL REFERENCES buckets (name),
    key             TEXT NOT NULL,
    content_type    TEXT,
    user_metadata   TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);

CREATE TABLE parts (
    upload_id   TEXT NOT NULL REFERENCES uploads (id),
    part_number INTEGER NOT NULL,
    file        TEXT NOT NULL,
    etag        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE streams (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    version     INTEGER NOT NULL,
    description TEXT,
    role_arn    TEXT,
    files       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
"#];

/// Opens (creating if needed) the database at `path` and brings its schema up to date.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::db(format!(
            "could not switch {} to WAL (mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies every migration the database has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(version).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::db(format!(
            "database schema version {current} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", to_i64(index as u64 + 1))?;
        tx.commit()?;
    }
    Ok(())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::db_source("SQLite", e)
    }
}

/// Starts a write transaction that takes the database write lock at once (no lock upgrades later).
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Wall-clock milliseconds since the Unix epoch (the store is a driver: it may read the clock).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Converts a non-negative SQLite integer into `u64` (negative values only come from a corrupt row).
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Converts a `u64` into an SQLite integer, saturating (sizes and times never get near `i64::MAX`).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Reads column `index` as JSON text into `T`; unreadable JSON is a conversion error of that column.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    index: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

// ===== generic JSON resources =====

/// Inserts a resource; `AlreadyExists` when `(kind, id)` is taken.
pub(crate) fn insert_resource(
    conn: &Connection,
    kind: &str,
    id: &str,
    parent: Option<&str>,
    body: &Value,
) -> Result<(), StoreError> {
    let inserted = conn.execute(
        "INSERT INTO resources (kind, id, parent, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, id) DO NOTHING",
        params![kind, id, parent, body.to_string()],
    )?;
    if inserted == 0 {
        let kind = match kind {
            "thing" => Kind::Thing,
            "thing-group" => Kind::ThingGroup,
            "ota-update" => Kind::OtaUpdate,
            "signer-profile" => Kind::SigningProfile,
            "signer-job" => Kind::SigningJob,
            "acm-certificate" => Kind::Certificate,
            "job" => Kind::Job,
            _ => Kind::JobExecution,
        };
        return Err(StoreError::already_exists(kind, id));
    }
    Ok(())
}

/// Inserts or replaces a resource; a replaced resource keeps its place in the insertion order.
pub(crate) fn put_resource(
    conn: &Connection,
    kind: &str,
    id: &str,
    parent: Option<&str>,
    body: &Value,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO resources (kind, id, parent, body) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (kind, id) DO UPDATE SET parent = excluded.parent, body = excluded.body",
        params![kind, id, parent, body.to_string()],
    )?;
    Ok(())
}

/// Reads one resource body.
pub(crate) fn get_resource(
    conn: &Connection,
    kind: &str,
    id: &str,
) -> Result<Option<Value>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT body FROM resources WHERE kind = ?1 AND id = ?2",
            params![kind, id],
            |row| json_column(row, 0),
        )
        .optional()?)
}

/// Lists `(id, body)` of one kind in insertion order, optionally only the children of `parent`.
pub(crate) fn list_resources(
    conn: &Connection,
    kind: &str,
    parent: Option<&str>,
) -> Result<Vec<(String, Value)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM resources WHERE kind = ?1 AND (?2 IS NULL OR parent = ?2) ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![kind, parent], |row| {
        Ok((row.get(0)?, json_column(row, 1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes one resource; `true` when it existed.
pub(crate) fn delete_resource(conn: &Connection, kind: &str, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM resources WHERE kind = ?1 AND id = ?2",
        params![kind, id],
    )? > 0)
}

/// A write transaction over the resource table, handed to the closure of [`crate::Store::transaction`].
///
/// Everything done through it commits together when the closure returns `Ok`, and is rolled back when it
/// returns `Err` (or panics). The methods mirror the resource methods of [`crate::Store`].
pub struct Tx<'a> {
    pub(crate) tx: Transaction<'a>,
}

impl Tx<'_> {
    /// Inserts a resource; `AlreadyExists` when `(kind, id)` is taken.
    pub fn insert_resource(
        &mut self,
        kind: &str,
        id: &str,
        parent: Option<&str>,
        body: &Value,
    ) -> Result<(), StoreError> {
        insert_resource(&self.tx, kind, id, parent, body)
    }

    /// Inserts or replaces a resource.
    pub fn put_resource(
        &mut self,
        kind: &str,
        id: &str,
        parent: Option<&str>,
        body: &Value,
    ) -> Result<(), StoreError> {
        put_resource(&self.tx, kind, id, parent, body)
    }

    /// Reads one resource body (sees this transaction's own writes).
    pub fn get_resource(&mut self, kind: &str, id: &str) -> Result<Option<Value>, StoreError> {
        get_resource(&self.tx, kind, id)
    }

    /// Lists `(id, body)` of one kind in insertion order, optionally only the children of `parent`.
    pub fn list_resources(
        &mut self,
        kind: &str,
        parent: Option<&str>,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        list_resources(&self.tx, kind, parent)
    }

    /// Deletes one resource; `true` when it existed.
    pub fn delete_resource(&mut self, kind: &str, id: &str) -> Result<bool, StoreError> {
        delete_resource(&self.tx, kind, id)
    }
}
