//! AWS IoT streams (`CreateStream` records) and the gateway's view of their bytes.
//!
//! A stream's files are resolved against the object store when the stream is created or updated: each
//! file pins one object version (the newest live one when no version is given) with its size and ETag.
//! [`Store::stream_image`] memory-maps those versions once and caches the resulting [`StreamImage`]
//! until the stream is updated or deleted, so the block path is a map lookup plus an `Arc` clone.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::db::{self, json_column, now_ms, to_i64, to_u64};
use crate::versions::live_version;
use crate::{
    Kind, NewStream, PinnedFileProblem, Store, StoreError, StreamFile, StreamFileRecord,
    StreamImage, StreamRecord, StreamUpdate,
};

fn no_such_stream(id: &str) -> StoreError {
    StoreError::not_found(Kind::Stream, id)
}

/// Pins every file to an object version; sorted by file id.
fn resolve_files(
    conn: &Connection,
    files: &[StreamFile],
) -> Result<Vec<StreamFileRecord>, StoreError> {
    let mut records = Vec::with_capacity(files.len());
    for file in files {
        let version = live_version(conn, &file.bucket, &file.key, file.version_id.as_deref())?;

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
    /// `NotFound` (a bucket, object or version is missing), `AlreadyExists(Stream)`.
    pub(crate) fn do_create_stream(&self, s: &NewStream) -> Result<StreamRecord, StoreError> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let now = now_ms();
        let record = StreamRecord {
            id: s.id.clone(),
            version: 1,
            description: s.description.clone(),
            role_arn: s.role_arn.clone(),
            files: resolve_files(&tx, &s.files)?,
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
            return Err(StoreError::already_exists(Kind::Stream, &s.id));
        }
        tx.commit()?;
        Ok(record)
    }

    /// One stream, if it exists.
    pub(crate) fn do_get_stream(&self, id: &str) -> Result<Option<StreamRecord>, StoreError> {
        find_stream(&self.conn(), id)
    }

    /// All streams, in creation order.
    pub(crate) fn do_list_streams(&self) -> Result<Vec<StreamRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], read_stream)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies an update and bumps the version (files given are resolved again); drops the cached
    /// image. `NotFound(Stream)` if the stream does not exist, plus the errors of create.
    pub(crate) fn do_update_stream(
        &self,
        id: &str,
        update: &StreamUpdate,
    ) -> Result<StreamRecord, StoreError> {
        let record = {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            let mut record = find_stream(&tx, id)?.ok_or_else(|| no_such_stream(id))?;
            if let Some(files) = &update.files {
                record.files = resolve_files(&tx, files)?;
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
    pub(crate) fn do_delete_stream(&self, id: &str) -> Result<bool, StoreError> {
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
    /// Drops the cached images with a file from `bucket`/`key` (after a write to it commits): the
    /// next request checks the pinned version's ETag again.
    pub(crate) fn forget_images_of(&self, bucket: &str, key: &str) {
        self.images()
            .retain(|_, image| !image.uses_object(bucket, key));
    }

    pub(crate) fn do_stream_image(&self, id: &str) -> Result<Option<Arc<StreamImage>>, StoreError> {
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
            let (mut files, mut unavailable) = (Vec::new(), Vec::new());
            for f in &record.files {
                let version = match live_version(&conn, &f.bucket, &f.key, Some(&f.version_id)) {
                    Ok(version) => Some(version),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                let etag = version.as_ref().map(|v| v.info.etag.as_str());
                match (PinnedFileProblem::of(&f.etag, etag), version) {
                    (None, Some(version)) => files.push((f.file_id, self.map_version(&version)?)),
                    (problem, _) => {
                        unavailable.push((f.file_id, problem.unwrap_or(PinnedFileProblem::Gone)));
                    }
                }
            }
            Arc::new(StreamImage {
                id: record.id,
                version: record.version,
                files,
                unavailable,
                objects: record
                    .files
                    .iter()
                    .map(|f| (f.bucket.clone(), f.key.clone()))
                    .collect(),
            })
        };
        images.insert(id.to_owned(), Arc::clone(&image));
        Ok(Some(image))
    }
}
