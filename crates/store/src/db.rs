//! The SQLite side: opening `meta.sqlite3` (WAL, `synchronous=FULL`), schema migrations keyed by
//! `PRAGMA user_version` (the conversion of old untyped records is in `legacy.rs`).

use std::path::Path;

use rusqlite::{Connection, Transaction};

use crate::StoreError;

/// Schema migrations, applied in order; migration `i` moves `user_version` from `i` to `i + 1`.
/// Never edit a shipped entry: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
CREATE TABLE things (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE thing_groups (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE group_members (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name  TEXT NOT NULL,
    thing       TEXT NOT NULL,
    UNIQUE (group_name, thing)
);
CREATE INDEX group_members_by_thing ON group_members (thing);
CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE job_executions (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id  TEXT NOT NULL,
    thing   TEXT NOT NULL,
    body    TEXT NOT NULL,
    UNIQUE (job_id, thing)
);
CREATE TABLE ota_updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE signing_profiles (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE signing_jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE certificates (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
"#,
    r#"
CREATE TABLE device_certificates (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    ca_id   TEXT,
    body    TEXT NOT NULL
);
CREATE INDEX device_certificates_by_ca ON device_certificates (ca_id);
CREATE TABLE ca_certificates (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE policies (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE policy_versions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    policy      TEXT NOT NULL,
    version_id  INTEGER NOT NULL,
    body        TEXT NOT NULL,
    UNIQUE (policy, version_id)
);
CREATE TABLE policy_targets (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    policy  TEXT NOT NULL,
    target  TEXT NOT NULL,
    UNIQUE (policy, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets (target);
CREATE TABLE thing_principals (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    thing       TEXT NOT NULL,
    principal   TEXT NOT NULL,
    UNIQUE (thing, principal)
);
CREATE INDEX thing_principals_by_principal ON thing_principals (principal);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
];

/// The migration after which the untyped `resources` rows are converted into the typed tables
/// (by [`crate::legacy::convert_resources`], in the same transaction) and the table is dropped.
const TYPED_RECORDS_MIGRATION: usize = 1;

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
        if index == TYPED_RECORDS_MIGRATION {
            crate::legacy::convert_resources(&tx)?;
        }
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
