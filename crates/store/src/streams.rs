//! AWS IoT streams (`CreateStream` records) and the gateway's view of their bytes.
//!
//! A stream's files are resolved against the object store when the stream is created or updated: each
//! file pins one object version (the newest live one when no version is given) with its size and ETag.
//! [`Store::stream_image`] memory-maps those versions once and caches the resulting [`StreamImage`]
//! until the stream is updated or deleted, so the block path is a map lookup plus an `Arc` clone.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::db::{self, json_column, now_ms, to_i64, to_u64};
use crate::versions::live_version;
use crate::{Store, StoreError};

/// Longest stream id AWS accepts.
const MAX_STREAM_ID_LEN: usize = 128;
/// Most files in one stream.
const MAX_STREAM_FILES: usize = 50;
/// Longest description, in characters.
const MAX_DESCRIPTION_LEN: usize = 2028;

/// A `CreateStream` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    /// Stream id: 1..=128 characters of `[a-zA-Z0-9_-]`.
    pub id: String,
    /// Free text, at most 2028 characters.
    pub description: Option<String>,
    /// The IAM role ARN the request named (stored, not used).
    pub role_arn: Option<String>,
    /// 1..=50 files with distinct file ids.
    pub files: Vec<StreamFile>,
}

/// One file of a stream request: an S3 location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFile {
    /// File id the device asks for (`f` in the stream protocol).
    pub file_id: u8,
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// Object version; `None` pins the newest live version at create/update time.
    pub version_id: Option<String>,
}

/// An `UpdateStream` request: `None` fields are left as they are. Any update bumps the version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamUpdate {
    /// New description.
    pub description: Option<String>,
    /// New role ARN.
    pub role_arn: Option<String>,
    /// New file list (replaces the whole list; resolved again).
    pub files: Option<Vec<StreamFile>>,
}

/// A stored stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Stream id.
    pub id: String,
    /// 1 at creation, +1 per update (`streamVersion`, `s` in the stream protocol).
    pub version: u64,
    /// Description.
    pub description: Option<String>,
    /// Role ARN.
    pub role_arn: Option<String>,
    /// Files sorted by file id, each pinned to an object version.
    pub files: Vec<StreamFileRecord>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Last update time, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// A stream file resolved against the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFileRecord {
    /// File id.
    pub file_id: u8,
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// The pinned object version (`"null"` in an unversioned bucket).
    pub version_id: String,
    /// Object size in bytes at resolution time.
    pub size: u64,
    /// Object ETag at resolution time.
    pub etag: String,
}

/// The bytes of one stream version, ready to be sliced into blocks.
pub struct StreamImage {
    /// Stream id.
    pub id: String,
    /// Stream version these bytes belong to.
    pub version: u64,
    /// `(file id, bytes)` sorted by file id; each `Bytes` is a memory map of the object version.
    pub files: Vec<(u8, Bytes)>,
}

impl StreamImage {
    /// The bytes of file `id`, if the stream has it.
    pub fn file(&self, id: u8) -> Option<&Bytes> {
        let index = self
            .files
            .binary_search_by_key(&id, |(file_id, _)| *file_id)
            .ok()?;
        Some(&self.files[index].1)
    }
}

impl std::fmt::Debug for StreamImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<(u8, usize)> = self
            .files
            .iter()
            .map(|(id, bytes)| (*id, bytes.len()))
            .collect();
        f.debug_struct("StreamImage")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("file_sizes", &sizes)
            .finish()
    }
}

fn invalid_request(what: impl std::fmt::Display) -> StoreError {
    StoreError::invalid("InvalidRequestException", what)
}

fn no_such_stream(id: &str) -> StoreError {
    StoreError::not_found(
        "ResourceNotFoundException",
        format_args!("stream '{id}' does not exist"),
    )
}

/// Rewords a missing bucket, key or version behind stream file `file_id` as `ResourceNotFoundException`.
fn missing_file(stream_id: &str, file_id: u8, e: StoreError) -> StoreError {
    match e {
        StoreError::NotFound(why) => StoreError::not_found(
            "ResourceNotFoundException",
            format_args!("stream '{stream_id}' file {file_id}: {why}"),
        ),
        other => other,
    }
}

fn validate_stream_id(id: &str) -> Result<(), StoreError> {
    let well_formed = (1..=MAX_STREAM_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if well_formed {
        Ok(())
    } else {
        Err(invalid_request(format_args!(
            "stream id '{id}' must be 1-128 characters of [a-zA-Z0-9_-]"
        )))
    }
}

fn validate_description(description: Option<&str>) -> Result<(), StoreError> {
    match description {
        Some(d) if d.chars().count() > MAX_DESCRIPTION_LEN || d.chars().any(char::is_control) => {
            Err(invalid_request(format_args!(
                "description must be at most {MAX_DESCRIPTION_LEN} printable characters"
            )))
        }
        _ => Ok(()),
    }
}

/// Pins every file to an object version; sorted by file id.
fn resolve_files(
    conn: &Connection,
    stream_id: &str,
    files: &[StreamFile],
) -> Result<Vec<StreamFileRecord>, StoreError> {
    if !(1..=MAX_STREAM_FILES).contains(&files.len()) {
        return Err(invalid_request(format_args!(
            "a stream needs 1 to {MAX_STREAM_FILES} files, not {}",
            files.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(files.len());
    for file in files {
        if !seen.insert(file.file_id) {
            return Err(invalid_request(format_args!(
                "file id {} appears twice",
                file.file_id
            )));
        }
        if file.bucket.is_empty() || file.key.is_empty() {
            return Err(invalid_request(format_args!(
                "file {}: bucket and key must not be empty",
                file.file_id
            )));
        }
        let version = live_version(conn, &file.bucket, &file.key, file.version_id.as_deref())
            .map_err(|e| missing_file(stream_id, file.file_id, e))?;
        records.push(StreamFileRecord {
            file_id: file.file_id,
            bucket: file.bucket.clone(),
            key: file.key.clone(),
            version_id: version.info.version_id,
            size: version.info.size,
            etag: version.info.etag,
        });
    }
    records.sort_by_key(|r| r.file_id);
    Ok(records)
}

const STREAM_COLUMNS: &str = "id, version, description, role_arn, files, created_ms, updated_ms";

fn read_stream(row: &Row<'_>) -> rusqlite::Result<StreamRecord> {
    Ok(StreamRecord {
        id: row.get(0)?,
        version: to_u64(row.get(1)?),
        description: row.get(2)?,
        role_arn: row.get(3)?,
        files: json_column(row, 4)?,
        created_ms: to_u64(row.get(5)?),
        updated_ms: to_u64(row.get(6)?),
    })
}

fn find_stream(conn: &Connection, id: &str) -> Result<Option<StreamRecord>, StoreError> {
    let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], read_stream)
        .optional()?)
}

impl Store {
    /// Creates a stream at version 1, pinning its files to object versions. Errors:
    /// `InvalidRequestException` (id, description, file list), `ResourceNotFoundException` (an object or
    /// version is missing), `ResourceAlreadyExistsException`.
    pub fn create_stream(&self, s: &NewStream) -> Result<StreamRecord, StoreError> {
        validate_stream_id(&s.id)?;
        validate_description(s.description.as_deref())?;
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let now = now_ms();
        let record = StreamRecord {
            id: s.id.clone(),
            version: 1,
            description: s.description.clone(),
            role_arn: s.role_arn.clone(),
            files: resolve_files(&tx, &s.id, &s.files)?,
            created_ms: now,
            updated_ms: now,
        };
        let inserted = tx.execute(
            &format!("INSERT INTO streams ({STREAM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING"),
            params![
                record.id,
                to_i64(record.version),
                record.description,
                record.role_arn,
                serde_json::to_string(&record.files)?,
                to_i64(now),
                to_i64(now)
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists(format!(
                "ResourceAlreadyExistsException: stream '{}' already exists",
                s.id
            )));
        }
        tx.commit()?;
        Ok(record)
    }

    /// One stream, if it exists.
    pub fn get_stream(&self, id: &str) -> Result<Option<StreamRecord>, StoreError> {
        find_stream(&self.conn(), id)
    }

    /// All streams, in creation order.
    pub fn list_streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], read_stream)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies an update and bumps the version (files given are resolved again); drops the cached
    /// image. `ResourceNotFoundException` if the stream does not exist, plus the errors of create.
    pub fn update_stream(
        &self,
        id: &str,
        update: &StreamUpdate,
    ) -> Result<StreamRecord, StoreError> {
        validate_description(update.description.as_deref())?;
        let record = {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            let mut record = find_stream(&tx, id)?.ok_or_else(|| no_such_stream(id))?;
            if let Some(files) = &update.files {
                record.files = resolve_files(&tx, id, files)?;
            }
            if let Some(description) = &update.description {
                record.description = Some(description.clone());
            }
            if let Some(role_arn) = &update.role_arn {
                record.role_arn = Some(role_arn.clone());
            }
            record.version += 1;
            record.updated_ms = now_ms();
            tx.execute(
                "UPDATE streams SET version = ?2, description = ?3, role_arn = ?4, files = ?5, updated_ms = ?6 WHERE id = ?1",
                params![
                    id,
                    to_i64(record.version),
                    record.description,
                    record.role_arn,
                    serde_json::to_string(&record.files)?,
                    to_i64(record.updated_ms)
                ],
            )?;
            tx.commit()?;
            record
        };
        self.images().remove(id);
        Ok(record)
    }

    /// Deletes a stream and drops its cached image; `true` when it existed.
    pub fn delete_stream(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM streams WHERE id = ?1", [id])?
            > 0;
        self.images().remove(id);
        Ok(deleted)
    }

    /// The bytes of the stream's current version, memory-mapped once and cached until the stream is
    /// updated or deleted. `Ok(None)` when the stream does not exist; `NotFound` when a pinned object
    /// version has been deleted since.
    pub fn stream_image(&self, id: &str) -> Result<Option<Arc<StreamImage>>, StoreError> {
        // The cache lock is held while building, and writers drop entries only after committing, so a
        // stale image can never be inserted after its invalidation.
        let mut images = self.images();
        if let Some(image) = images.get(id) {
            return Ok(Some(Arc::clone(image)));
        }
        let image = {
            let conn = self.conn();
            let Some(record) = find_stream(&conn, id)? else {
                return Ok(None);
            };
            let mut files = Vec::with_capacity(record.files.len());
            for f in &record.files {
                let version = live_version(&conn, &f.bucket, &f.key, Some(&f.version_id))
                    .map_err(|e| missing_file(id, f.file_id, e))?;
                files.push((f.file_id, self.map_version(&version)?));
            }
            Arc::new(StreamImage {
                id: record.id,
                version: record.version,
                files,
            })
        };
        images.insert(id.to_owned(), Arc::clone(&image));
        Ok(Some(image))
    }
}
