//! AWS IoT streams on PostgreSQL, and their images for the block path.
//!
//! The gateway asks for a stream's image on every block request, so images are cached in this
//! process: a hit is a map lookup. A hit older than [`REVALIDATE`] checks the stream's version
//! (one small query, at most once per interval and stream, never per block), so an update made
//! through another node is seen within that interval; while PostgreSQL is unreachable the cached
//! image keeps being served. The bytes come from the content-addressed [`ImageCache`].
//!
//! [`ImageCache`]: crate::image_cache

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;
use deadpool_postgres::tokio_postgres::Row;
use otastream_store::{
    Kind, NewStream, PinnedFileProblem, StoreError, StoreResult, StreamFile, StreamFileRecord,
    StreamImage, StreamRecord, StreamRepo, StreamUpdate,
};

use crate::documents::{from_json, to_json};
use crate::error::BackendError;
use crate::objects::live_version;
use crate::{PgBackend, now_ms, to_i64, to_u64};

/// How old a cached image may be before its stream version is checked again.
pub(crate) const REVALIDATE: Duration = Duration::from_secs(1);

/// Cached images by stream id (with when their version was last checked), and a counter bumped by
/// every invalidation (a build that started before one must not insert what it built).
#[derive(Default)]
pub(crate) struct StreamImages {
    entries: Mutex<ImageEntries>,
}

type ImageEntries = (HashMap<String, (Arc<StreamImage>, Instant)>, u64);

impl StreamImages {
    fn lock(&self) -> MutexGuard<'_, ImageEntries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks `id`'s cached image as checked now.
    fn checked_now(&self, id: &str) {
        if let Some(entry) = self.lock().0.get_mut(id) {
            entry.1 = Instant::now();
        }
    }

    /// Drops the images with a file from `bucket`/`key` (after a write to it on this node).
    pub(crate) fn forget_object(&self, bucket: &str, key: &str) {
        let mut entries = self.lock();
        entries
            .0
            .retain(|_, (image, _)| !image.uses_object(bucket, key));
        entries.1 += 1;
    }

    fn invalidate(&self, id: &str) {
        let mut entries = self.lock();
        entries.0.remove(id);
        entries.1 += 1;
    }
}

const STREAM_COLUMNS: &str =
    "id, version, description, role_arn, files::text, created_ms, updated_ms";

fn read_stream(row: &Row) -> Result<StreamRecord, BackendError> {
    Ok(StreamRecord {
        id: row.try_get(0)?,
        version: to_u64(row.try_get(1)?),
        description: row.try_get(2)?,
        role_arn: row.try_get(3)?,
        files: from_json(Kind::Stream, row.try_get(4)?)?,
        created_ms: to_u64(row.try_get(5)?),
        updated_ms: to_u64(row.try_get(6)?),
    })
}

async fn find_stream(
    client: &impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<StreamRecord>, BackendError> {
    let sql = format!(
        "SELECT {STREAM_COLUMNS} FROM streams WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(read_stream)
        .transpose()
}

/// Pins every file to an object version; sorted by file id.
async fn resolve_files(
    client: &impl GenericClient,
    files: &[StreamFile],
) -> Result<Vec<StreamFileRecord>, BackendError> {
    let mut records = Vec::with_capacity(files.len());
    for file in files {
        let version =
            live_version(client, &file.bucket, &file.key, file.version_id.as_deref()).await?;
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

impl PgBackend {
    /// Builds the image of the stream's current version (bytes through the image cache).
    async fn build_image(&self, id: &str) -> Result<Option<StreamImage>, BackendError> {
        let client = self.pool.get().await?;
        let Some(record) = find_stream(&client, id, false).await? else {
            return Ok(None);
        };
        let (mut rows, mut unavailable) = (Vec::new(), Vec::new());
        for f in &record.files {
            let row = match live_version(&client, &f.bucket, &f.key, Some(&f.version_id)).await {
                Ok(row) => Some(row),
                Err(BackendError::Store(StoreError::NotFound { .. })) => None,
                Err(e) => return Err(e),
            };
            let etag = row.as_ref().map(|r| r.info.etag.as_str());
            match (PinnedFileProblem::of(&f.etag, etag), row) {
                (None, Some(row)) => rows.push((f.file_id, row)),
                (problem, _) => {
                    unavailable.push((f.file_id, problem.unwrap_or(PinnedFileProblem::Gone)));
                }
            }
        }
        drop(client);
        let mut files = Vec::with_capacity(rows.len());
        for (file_id, row) in rows {
            files.push((file_id, self.mapped_version(&row).await?));
        }
        Ok(Some(StreamImage {
            id: record.id,
            version: record.version,
            files,
            unavailable,
            objects: record
                .files
                .iter()
                .map(|f| (f.bucket.clone(), f.key.clone()))
                .collect(),
        }))
    }

    /// The stream's current version, or `None` when it is gone.
    async fn stream_version(&self, id: &str) -> Result<Option<u64>, BackendError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT version FROM streams WHERE id = $1")
            .await?;
        Ok(client
            .query_opt(&statement, &[&id])
            .await?
            .map(|row| row.try_get::<_, i64>(0).map(to_u64))
            .transpose()?)
    }
}

impl StreamRepo for PgBackend {
    fn create_stream(&self, stream: &NewStream) -> StoreResult<StreamRecord> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let now = now_ms();
            let record = StreamRecord {
                id: stream.id.clone(),
                version: 1,
                description: stream.description.clone(),
                role_arn: stream.role_arn.clone(),
                files: resolve_files(&tx, &stream.files).await?,
                created_ms: now,
                updated_ms: now,
            };
            let inserted = tx
                .execute(
                    "INSERT INTO streams (id, version, description, role_arn, files, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $6) ON CONFLICT (id) DO NOTHING",
                    &[
                        &record.id,
                        &to_i64(record.version),
                        &record.description,
                        &record.role_arn,
                        &to_json(&record.files)?,
                        &to_i64(now),
                    ],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::already_exists(Kind::Stream, &stream.id).into());
            }
            tx.commit().await?;
            Ok(record)
        })
    }

    fn get_stream(&self, id: &str) -> StoreResult<Option<StreamRecord>> {
        self.run(async { find_stream(&self.pool.get().await?, id, false).await })
    }

    fn list_streams(&self) -> StoreResult<Vec<StreamRecord>> {
        self.run(async {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    &format!("SELECT {STREAM_COLUMNS} FROM streams ORDER BY seq"),
                    &[],
                )
                .await?;
            rows.iter().map(read_stream).collect()
        })
    }

    fn update_stream(&self, id: &str, update: &StreamUpdate) -> StoreResult<StreamRecord> {
        let result = self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let mut record = find_stream(&tx, id, true)
                .await?
                .ok_or_else(|| StoreError::not_found(Kind::Stream, id))?;
            if let Some(files) = &update.files {
                record.files = resolve_files(&tx, files).await?;
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
                "UPDATE streams SET version = $2, description = $3, role_arn = $4, \
                 files = $5::text::jsonb, updated_ms = $6 WHERE id = $1",
                &[
                    &id,
                    &to_i64(record.version),
                    &record.description,
                    &record.role_arn,
                    &to_json(&record.files)?,
                    &to_i64(record.updated_ms),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(record)
        });
        self.stream_images.invalidate(id);
        result
    }

    fn delete_stream(&self, id: &str) -> StoreResult<bool> {
        let result = self.run(async {
            let client = self.pool.get().await?;
            Ok(client
                .execute("DELETE FROM streams WHERE id = $1", &[&id])
                .await?
                > 0)
        });
        self.stream_images.invalidate(id);
        result
    }

    fn stream_image(&self, id: &str) -> StoreResult<Option<Arc<StreamImage>>> {
        let cached = self.stream_images.lock().0.get(id).cloned();
        if let Some((image, checked)) = cached {
            if checked.elapsed() < REVALIDATE {
                return Ok(Some(image));
            }
            match self.run(self.stream_version(id)) {
                Ok(Some(version)) if version == image.version => {
                    self.stream_images.checked_now(id);
                    return Ok(Some(image));
                }
                Ok(_) => self.stream_images.invalidate(id),
                Err(e @ StoreError::Unavailable { .. }) => {
                    tracing::debug!(stream = id, error = %e, "serving the cached image while the database is unreachable");
                    // Asked again in a second, not by every block request meanwhile.
                    self.stream_images.checked_now(id);
                    return Ok(Some(image));
                }
                Err(e) => return Err(e),
            }
        }
        let generation = self.stream_images.lock().1;
        let Some(image) = self.run(self.build_image(id))? else {
            return Ok(None);
        };
        let image = Arc::new(image);
        let mut entries = self.stream_images.lock();
        if entries.1 == generation {
            entries
                .0
                .insert(id.to_owned(), (Arc::clone(&image), Instant::now()));
        }
        Ok(Some(image))
    }
}
