//! The object store on PostgreSQL + S3: buckets and version rows in PostgreSQL, bytes in
//! immutable blobs. Writes to one key take a transaction-scoped advisory lock on it, so concurrent
//! puts and deletes (from any node) apply one after the other, as S3 orders them.
//!
//! Order of effects: a put writes its blob, then commits the row; a removal commits first, then
//! deletes the blob it orphaned (or records it in `orphan_blobs` when S3 is down). A crash can
//! leave an unreferenced blob behind, never a row without its bytes.

use std::path::Path;

use bytes::Bytes;
use deadpool_postgres::tokio_postgres::Row;
use deadpool_postgres::{GenericClient, Transaction};
use md5::{Digest as _, Md5};
use otastream_store::rules::{self, DeletePlan, VersionSlot};
use otastream_store::{
    BucketInfo, ByteRange, Conflict, DeleteOutcome, Invalid, Kind, Object, ObjectInfo, PutMeta,
    StoreError, StoreResult, VersionEntry, Versioning,
};

use crate::error::BackendError;
use crate::image_cache::{Sha256Digest, sha256};
use crate::{PgBackend, now_ms, to_i64, to_u64};

/// The columns [`read_version`] reads, in its order.
pub(crate) const VERSION_COLUMNS: &str = "bucket, key, version_id, is_delete_marker, etag, size, \
     last_modified_ms, content_type, user_metadata::text, blob, sha256";

/// An `object_versions` row.
pub(crate) struct VersionRow {
    pub(crate) info: ObjectInfo,
    pub(crate) delete_marker: bool,
    /// The blob holding the bytes; `None` for a delete marker.
    pub(crate) blob: Option<String>,
    pub(crate) sha256: Option<Sha256Digest>,
}

pub(crate) fn read_version(row: &Row) -> Result<VersionRow, BackendError> {
    let metadata: String = row.try_get(8)?;
    let sha: Option<Vec<u8>> = row.try_get(10)?;
    Ok(VersionRow {
        info: ObjectInfo {
            bucket: row.try_get(0)?,
            key: row.try_get(1)?,
            version_id: row.try_get(2)?,
            etag: row.try_get(4)?,
            size: to_u64(row.try_get(5)?),
            last_modified_ms: to_u64(row.try_get(6)?),
            content_type: row.try_get(7)?,
            user_metadata: serde_json::from_str(&metadata)
                .map_err(|e| BackendError::Corrupt(format!("user metadata: {e}")))?,
        },
        delete_marker: row.try_get(3)?,
        blob: row.try_get(9)?,
        sha256: sha
            .map(|s| {
                s.try_into()
                    .map_err(|_| BackendError::Corrupt("a sha256 that is not 32 bytes".into()))
            })
            .transpose()?,
    })
}

/// The versioning state of `bucket` (`FOR SHARE` inside a write: the bucket cannot be deleted
/// under it), or `NotFound(Bucket)`.
pub(crate) async fn versioning_of(
    client: &impl GenericClient,
    bucket: &str,
    lock: bool,
) -> Result<Versioning, BackendError> {
    let sql = if lock {
        "SELECT versioning FROM buckets WHERE name = $1 FOR SHARE"
    } else {
        "SELECT versioning FROM buckets WHERE name = $1"
    };
    let statement = client.prepare_cached(sql).await?;
    let row = client.query_opt(&statement, &[&bucket]).await?;
    match row {
        Some(row) => parse_versioning(&row.try_get::<_, String>(0)?),
        None => Err(StoreError::not_found(Kind::Bucket, bucket).into()),
    }
}

fn parse_versioning(text: &str) -> Result<Versioning, BackendError> {
    match text {
        "unversioned" => Ok(Versioning::Unversioned),
        "enabled" => Ok(Versioning::Enabled),
        "suspended" => Ok(Versioning::Suspended),
        other => Err(BackendError::Corrupt(format!("versioning state '{other}'"))),
    }
}

fn versioning_text(versioning: Versioning) -> &'static str {
    match versioning {
        Versioning::Unversioned => "unversioned",
        Versioning::Enabled => "enabled",
        Versioning::Suspended => "suspended",
    }
}

/// Serialises writers of one key (any node) until the transaction ends.
pub(crate) async fn lock_key(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
) -> Result<(), BackendError> {
    let statement = tx
        .prepare_cached("SELECT pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))")
        .await?;
    tx.execute(&statement, &[&bucket, &key]).await?;
    Ok(())
}

/// The newest version of `key` (`version_id == None`) or the named one, whatever it is.
async fn find_version(
    client: &impl GenericClient,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<VersionRow>, BackendError> {
    let row = match version_id {
        None => {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM object_versions \
                     WHERE bucket = $1 AND key = $2 ORDER BY seq DESC LIMIT 1"
                ))
                .await?;
            client.query_opt(&statement, &[&bucket, &key]).await?
        }
        Some(v) => {
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM object_versions \
                     WHERE bucket = $1 AND key = $2 AND version_id = $3"
                ))
                .await?;
            client.query_opt(&statement, &[&bucket, &key, &v]).await?
        }
    };
    row.as_ref().map(read_version).transpose()
}

/// The version a get returns: `NotFound(Bucket | Object | ObjectVersion)`.
pub(crate) async fn live_version(
    client: &impl GenericClient,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<VersionRow, BackendError> {
    versioning_of(client, bucket, false).await?;
    match find_version(client, bucket, key, version_id).await? {
        Some(row) if !row.delete_marker => Ok(row),
        _ => Err(match version_id {
            None => StoreError::not_found(Kind::Object, format!("{bucket}/{key}")),
            Some(v) => {
                StoreError::not_found(Kind::ObjectVersion, format!("{bucket}/{key}?versionId={v}"))
            }
        }
        .into()),
    }
}

/// Removes one version row and returns it (its blob is still there: delete it after the commit).
async fn remove_version(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<VersionRow>, BackendError> {
    let statement = tx
        .prepare_cached(&format!(
            "DELETE FROM object_versions WHERE bucket = $1 AND key = $2 AND version_id = $3 \
             RETURNING {VERSION_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(&statement, &[&bucket, &key, &version_id])
        .await?;
    row.as_ref().map(read_version).transpose()
}

/// The bytes and identity of a new version; `None` blob for a delete marker.
pub(crate) struct NewVersion<'a> {
    pub(crate) blob: Option<&'a str>,
    pub(crate) sha256: Option<&'a Sha256Digest>,
    pub(crate) etag: &'a str,
    pub(crate) size: u64,
    pub(crate) meta: &'a PutMeta,
}

/// Adds a version in `slot` (`None`: as the bucket's versioning demands) with the key locked.
/// Returns it and the row it replaced (whose blob must be deleted after the commit).
pub(crate) async fn insert_version(
    tx: &Transaction<'_>,
    bucket: &str,
    key: &str,
    slot: Option<VersionSlot>,
    new: &NewVersion<'_>,
) -> Result<(ObjectInfo, Option<VersionRow>), BackendError> {
    let versioning = versioning_of(tx, bucket, true).await?;
    lock_key(tx, bucket, key).await?;
    let slot = slot.unwrap_or_else(|| rules::slot_for_new_version(versioning));
    let replaced = match slot {
        VersionSlot::Fresh(_) => None,
        VersionSlot::Null => remove_version(tx, bucket, key, rules::NULL_VERSION).await?,
    };
    let info = ObjectInfo {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: slot.version_id().to_owned(),
        etag: new.etag.to_owned(),
        size: new.size,
        last_modified_ms: now_ms(),
        content_type: new.meta.content_type.clone(),
        user_metadata: new.meta.user_metadata.clone(),
    };
    let metadata = serde_json::to_string(&info.user_metadata)
        .map_err(|e| BackendError::Corrupt(format!("user metadata: {e}")))?;
    let statement = tx
        .prepare_cached(
            "INSERT INTO object_versions (bucket, key, version_id, is_delete_marker, etag, size, \
             last_modified_ms, content_type, user_metadata, blob, sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11)",
        )
        .await?;
    let sha = new.sha256.map(|s| s.as_slice());
    tx.execute(
        &statement,
        &[
            &info.bucket,
            &info.key,
            &info.version_id,
            &new.blob.is_none(),
            &info.etag,
            &to_i64(info.size),
            &to_i64(info.last_modified_ms),
            &info.content_type,
            &metadata,
            &new.blob,
            &sha,
        ],
    )
    .await?;
    Ok((info, replaced))
}

impl PgBackend {
    /// Deletes blobs no row references any more; one that cannot be deleted now is recorded in
    /// `orphan_blobs` for a later sweep.
    pub(crate) async fn forget_blobs(&self, blobs: impl IntoIterator<Item = String>) {
        for blob in blobs {
            if let Err(e) = self.blobs.delete(&blob).await {
                tracing::warn!(%blob, error = %e, "could not delete an orphaned blob; recorded for later");
                let recorded = async {
                    let client = self.pool.get().await?;
                    client
                        .execute(
                            "INSERT INTO orphan_blobs (blob, since_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            &[&blob, &to_i64(now_ms())],
                        )
                        .await?;
                    Ok::<_, BackendError>(())
                };
                if let Err(e) = recorded.await {
                    tracing::warn!(%blob, error = %e, "could not record an orphaned blob");
                }
            }
        }
    }

    /// Uploads `data` as a blob; returns the blob name, its SHA-256 and its quoted MD5 ETag.
    async fn upload(&self, data: Bytes) -> Result<(String, Sha256Digest, String), BackendError> {
        let digest = sha256(&data);
        let etag = rules::quoted_etag(&Md5::digest(&data));
        let blob = self.blobs.put(data).await?;
        Ok((blob, digest, etag))
    }

    /// Puts uploaded bytes as a new version of `bucket/key`; the blob is removed again if the row
    /// cannot be committed.
    async fn commit_put(
        &self,
        bucket: &str,
        key: &str,
        data: Bytes,
        meta: &PutMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let size = data.len() as u64;
        let (blob, digest, etag) = self.upload(data).await?;
        let committed = async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let new = NewVersion {
                blob: Some(&blob),
                sha256: Some(&digest),
                etag: &etag,
                size,
                meta,
            };
            let result = insert_version(&tx, bucket, key, None, &new).await?;
            tx.commit().await?;
            Ok::<_, BackendError>(result)
        }
        .await;
        match committed {
            Ok((info, replaced)) => {
                self.forget_blobs(replaced.and_then(|r| r.blob)).await;
                Ok(info)
            }
            Err(e) => {
                self.forget_blobs([blob]).await;
                Err(e)
            }
        }
    }

    /// The bytes of a live version: from the image cache when this node has them, else from S3.
    async fn version_bytes(
        &self,
        row: &VersionRow,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Bytes, BackendError> {
        let blob = row.blob.as_deref().ok_or_else(|| {
            BackendError::Corrupt(format!(
                "version {} of {}/{} has no blob",
                row.info.version_id, row.info.bucket, row.info.key
            ))
        })?;
        if let Some(cached) = row
            .sha256
            .as_ref()
            .map(|d| self.images.get(d))
            .transpose()?
            .flatten()
        {
            return Ok(match range {
                Some(r) => cached.slice(r.start as usize..r.end as usize),
                None => cached,
            });
        }
        match range {
            Some(r) => self.blobs.get_range(blob, r).await,
            None => self.blobs.get(blob).await,
        }
    }

    /// The whole bytes of a version as a memory map of the local image cache (fetched once).
    pub(crate) async fn mapped_version(&self, row: &VersionRow) -> Result<Bytes, BackendError> {
        let digest = row.sha256.ok_or_else(|| {
            BackendError::Corrupt(format!(
                "version {} of {}/{} has no sha256",
                row.info.version_id, row.info.bucket, row.info.key
            ))
        })?;
        if let Some(bytes) = self.images.get(&digest)? {
            return Ok(bytes);
        }
        let data = self.version_bytes(row, None).await?;
        self.images.insert(&digest, &data)
    }
}

impl otastream_store::ObjectStore for PgBackend {
    fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.run(async {
            let client = self.pool.get().await?;
            let inserted = client
                .execute(
                    "INSERT INTO buckets (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&bucket, &to_i64(now_ms())],
                )
                .await?;
            if inserted == 0 {
                return Err(StoreError::already_exists(Kind::Bucket, bucket).into());
            }
            Ok(())
        })
    }

    fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let found = tx
                .query_opt(
                    "SELECT 1 FROM buckets WHERE name = $1 FOR UPDATE",
                    &[&bucket],
                )
                .await?;
            if found.is_none() {
                return Err(StoreError::not_found(Kind::Bucket, bucket).into());
            }
            let versions: i64 = tx
                .query_one(
                    "SELECT count(*) FROM object_versions WHERE bucket = $1",
                    &[&bucket],
                )
                .await?
                .try_get(0)?;
            if versions > 0 {
                return Err(StoreError::from(Conflict::BucketHasVersions {
                    bucket: bucket.to_owned(),
                    versions: to_u64(versions),
                })
                .into());
            }
            let parts: Vec<String> = tx
                .query(
                    "DELETE FROM multipart_parts WHERE upload_id IN \
                     (SELECT upload_id FROM multipart_uploads WHERE bucket = $1) RETURNING blob",
                    &[&bucket],
                )
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?;
            tx.execute(
                "DELETE FROM multipart_uploads WHERE bucket = $1",
                &[&bucket],
            )
            .await?;
            tx.execute("DELETE FROM buckets WHERE name = $1", &[&bucket])
                .await?;
            tx.commit().await?;
            self.forget_blobs(parts).await;
            Ok(())
        })
    }

    fn bucket_exists(&self, bucket: &str) -> StoreResult<bool> {
        self.run(async {
            let client = self.pool.get().await?;
            let statement = client
                .prepare_cached("SELECT 1 FROM buckets WHERE name = $1")
                .await?;
            Ok(client.query_opt(&statement, &[&bucket]).await?.is_some())
        })
    }

    fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        self.run(async {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    "SELECT name, created_ms FROM buckets ORDER BY name COLLATE \"C\"",
                    &[],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(BucketInfo {
                        name: row.try_get(0)?,
                        created_ms: to_u64(row.try_get(1)?),
                    })
                })
                .collect()
        })
    }

    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    "SELECT versioning FROM buckets WHERE name = $1 FOR UPDATE",
                    &[&bucket],
                )
                .await?;
            let current = match row {
                Some(row) => parse_versioning(&row.try_get::<_, String>(0)?)?,
                None => return Err(StoreError::not_found(Kind::Bucket, bucket).into()),
            };
            if versioning == Versioning::Unversioned && current != Versioning::Unversioned {
                return Err(StoreError::from(Invalid::VersioningCannotBeDisabled).into());
            }
            tx.execute(
                "UPDATE buckets SET versioning = $2 WHERE name = $1",
                &[&bucket, &versioning_text(versioning)],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        self.run(async {
            let client = self.pool.get().await?;
            versioning_of(&client, bucket, false).await
        })
    }

    fn staging_path(&self) -> std::path::PathBuf {
        self.staging
            .join(format!("{}.upload", uuid::Uuid::new_v4().simple()))
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo> {
        let info = self.run(async {
            let client = self.pool.get().await?;
            versioning_of(&client, bucket, false).await?;
            drop(client);
            self.commit_put(bucket, key, Bytes::copy_from_slice(data), &meta)
                .await
        })?;
        self.stream_images.forget_object(bucket, key);
        Ok(info)
    }

    fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        staged: &Path,
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo> {
        let in_staging = staged.parent().is_some_and(|parent| {
            parent == self.staging || parent.canonicalize().ok() == self.staging.canonicalize().ok()
        });
        if !in_staging {
            let _ = std::fs::remove_file(staged);
            return Err(Invalid::NotStaged(staged.display().to_string()).into());
        }
        let data = std::fs::read(staged);
        let _ = std::fs::remove_file(staged);
        let data = Bytes::from(data?);
        let info = self.run(async {
            let client = self.pool.get().await?;
            versioning_of(&client, bucket, false).await?;
            drop(client);
            self.commit_put(bucket, key, data, &meta).await
        })?;
        self.stream_images.forget_object(bucket, key);
        Ok(info)
    }

    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        range: Option<ByteRange>,
    ) -> StoreResult<Object> {
        self.run(async {
            let client = self.pool.get().await?;
            let row = live_version(&client, bucket, key, version_id).await?;
            drop(client);
            let resolved = range
                .map(|r| r.resolve(row.info.size))
                .transpose()
                .map_err(StoreError::from)?;
            let data = self.version_bytes(&row, resolved.clone()).await?;
            Ok(Object {
                info: row.info,
                data,
                range: resolved,
            })
        })
    }

    fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        self.run(async {
            let client = self.pool.get().await?;
            Ok(live_version(&client, bucket, key, version_id).await?.info)
        })
    }

    fn open_image(&self, bucket: &str, key: &str, version_id: &str) -> StoreResult<Bytes> {
        self.run(async {
            let client = self.pool.get().await?;
            let row = live_version(&client, bucket, key, Some(version_id)).await?;
            drop(client);
            self.mapped_version(&row).await
        })
    }

    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<DeleteOutcome> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let versioning = versioning_of(&tx, bucket, true).await?;
            lock_key(&tx, bucket, key).await?;
            let (outcome, removed) = match rules::plan_delete(version_id, versioning) {
                DeletePlan::RemoveVersion(version_id) => {
                    let removed = remove_version(&tx, bucket, key, &version_id).await?;
                    let marker = removed.as_ref().is_some_and(|r| r.delete_marker);
                    (rules::removal_outcome(version_id, marker), removed)
                }
                DeletePlan::AddMarker(slot) => {
                    let marker = NewVersion {
                        blob: None,
                        sha256: None,
                        etag: "",
                        size: 0,
                        meta: &PutMeta::default(),
                    };
                    let (info, replaced) =
                        insert_version(&tx, bucket, key, Some(slot), &marker).await?;
                    (
                        DeleteOutcome::DeleteMarker {
                            version_id: info.version_id,
                        },
                        replaced,
                    )
                }
            };
            tx.commit().await?;
            self.forget_blobs(removed.and_then(|r| r.blob)).await;
            Ok(outcome)
        })
        .inspect(|_| self.stream_images.forget_object(bucket, key))
    }

    fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<(Vec<ObjectInfo>, bool)> {
        self.run(async {
            let client = self.pool.get().await?;
            versioning_of(&client, bucket, false).await?;
            let limit = i64::try_from(max).unwrap_or(i64::MAX - 1) + 1;
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM ( \
                       SELECT DISTINCT ON (key) * FROM object_versions \
                       WHERE bucket = $1 AND starts_with(key, $2) AND key > $3 \
                       ORDER BY key, seq DESC) newest \
                     WHERE NOT is_delete_marker ORDER BY key LIMIT $4"
                ))
                .await?;
            let rows = client
                .query(
                    &statement,
                    &[&bucket, &prefix, &start_after.unwrap_or(""), &limit],
                )
                .await?;
            let mut infos = rows
                .iter()
                .map(|row| read_version(row).map(|r| r.info))
                .collect::<Result<Vec<_>, _>>()?;
            let truncated = infos.len() > max;
            infos.truncate(max);
            Ok((infos, truncated))
        })
    }

    fn list_object_versions(&self, bucket: &str, prefix: &str) -> StoreResult<Vec<VersionEntry>> {
        self.run(async {
            let client = self.pool.get().await?;
            versioning_of(&client, bucket, false).await?;
            let statement = client
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM object_versions \
                     WHERE bucket = $1 AND starts_with(key, $2) ORDER BY key, seq DESC"
                ))
                .await?;
            let rows = client.query(&statement, &[&bucket, &prefix]).await?;
            let mut entries: Vec<VersionEntry> = Vec::with_capacity(rows.len());
            for row in &rows {
                let row = read_version(row)?;
                let is_latest = entries
                    .last()
                    .is_none_or(|prev| prev.info.key != row.info.key);
                entries.push(VersionEntry {
                    info: row.info,
                    is_latest,
                    is_delete_marker: row.delete_marker,
                });
            }
            Ok(entries)
        })
    }

    fn create_multipart(&self, bucket: &str, key: &str, meta: PutMeta) -> StoreResult<String> {
        self.create_upload(bucket, key, meta)
    }

    fn upload_part(&self, upload_id: &str, part_number: u32, data: &[u8]) -> StoreResult<String> {
        self.store_part(upload_id, part_number, data)
    }

    fn complete_multipart(
        &self,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> StoreResult<ObjectInfo> {
        let info = self.complete_upload(upload_id, parts)?;
        self.stream_images.forget_object(&info.bucket, &info.key);
        Ok(info)
    }

    fn abort_multipart(&self, upload_id: &str) -> StoreResult<()> {
        self.abort_upload(upload_id)
    }
}
