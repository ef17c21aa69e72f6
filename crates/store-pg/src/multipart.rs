//! Multipart uploads: each part is its own blob; completion checks the listed parts
//! (`rules::choose_parts`), joins them into one new blob (so the version is one immutable blob like
//! any other, and carries a SHA-256 for the image cache), commits the version and drops the parts.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use otastream_store::rules::{self, StoredPart};
use otastream_store::{Kind, ObjectInfo, PutMeta, StoreError, StoreResult};

use crate::error::BackendError;
use crate::image_cache::sha256;
use crate::objects::{NewVersion, insert_version};
use crate::{PgBackend, now_ms, to_i64, to_u64};

/// A stored part.
struct Part {
    etag: String,
    size: u64,
    blob: String,
}

impl StoredPart for Part {
    fn etag(&self) -> &str {
        &self.etag
    }
    fn size(&self) -> u64 {
        self.size
    }
}

fn no_such_upload(upload_id: &str) -> BackendError {
    StoreError::not_found(Kind::Upload, upload_id).into()
}

/// The bucket, key and metadata of an upload (locked `FOR UPDATE` or `FOR SHARE` per `lock`).
async fn load_upload(
    tx: &deadpool_postgres::Transaction<'_>,
    upload_id: &str,
    lock: &str,
) -> Result<(String, String, PutMeta), BackendError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT bucket, key, content_type, user_metadata::text FROM multipart_uploads \
                 WHERE upload_id = $1 {lock}"
            ),
            &[&upload_id],
        )
        .await?
        .ok_or_else(|| no_such_upload(upload_id))?;
    let metadata: String = row.try_get(3)?;
    let meta = PutMeta {
        content_type: row.try_get(2)?,
        user_metadata: serde_json::from_str(&metadata)
            .map_err(|e| BackendError::Corrupt(format!("upload metadata: {e}")))?,
    };
    Ok((row.try_get(0)?, row.try_get(1)?, meta))
}

/// Removes an upload and its parts; returns the part blobs (delete them after the commit).
async fn remove_upload(
    tx: &deadpool_postgres::Transaction<'_>,
    upload_id: &str,
) -> Result<Vec<String>, BackendError> {
    let blobs = tx
        .query(
            "DELETE FROM multipart_parts WHERE upload_id = $1 RETURNING blob",
            &[&upload_id],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;
    let removed = tx
        .execute(
            "DELETE FROM multipart_uploads WHERE upload_id = $1",
            &[&upload_id],
        )
        .await?;
    if removed == 0 {
        return Err(no_such_upload(upload_id));
    }
    Ok(blobs)
}

impl PgBackend {
    pub(crate) fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: PutMeta,
    ) -> StoreResult<String> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            crate::objects::versioning_of(&tx, bucket, true).await?;
            let upload_id = uuid::Uuid::new_v4().simple().to_string();
            let metadata = serde_json::to_string(&meta.user_metadata)
                .map_err(|e| BackendError::Corrupt(format!("upload metadata: {e}")))?;
            tx.execute(
                "INSERT INTO multipart_uploads (upload_id, bucket, key, content_type, user_metadata, created_ms) \
                 VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
                &[&upload_id, &bucket, &key, &meta.content_type, &metadata, &to_i64(now_ms())],
            )
            .await?;
            tx.commit().await?;
            Ok(upload_id)
        })
    }

    pub(crate) fn store_part(
        &self,
        upload_id: &str,
        part_number: u32,
        data: &[u8],
    ) -> StoreResult<String> {
        rules::check_part_number(part_number)?;
        self.run(async {
            let client = self.pool.get().await?;
            let exists = client
                .query_opt("SELECT 1 FROM multipart_uploads WHERE upload_id = $1", &[&upload_id])
                .await?;
            drop(client);
            if exists.is_none() {
                return Err(no_such_upload(upload_id));
            }
            let etag = rules::quoted_etag(&md5::Md5::digest(data));
            let blob = self.blobs.put(Bytes::copy_from_slice(data)).await?;
            let committed = async {
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                load_upload(&tx, upload_id, "FOR SHARE").await?;
                let number = i32::try_from(part_number).unwrap_or(i32::MAX);
                let replaced = tx
                    .query_opt(
                        "DELETE FROM multipart_parts WHERE upload_id = $1 AND part_number = $2 RETURNING blob",
                        &[&upload_id, &number],
                    )
                    .await?
                    .map(|row| row.try_get::<_, String>(0))
                    .transpose()?;
                tx.execute(
                    "INSERT INTO multipart_parts (upload_id, part_number, etag, size, blob) VALUES ($1, $2, $3, $4, $5)",
                    &[&upload_id, &number, &etag, &to_i64(data.len() as u64), &blob],
                )
                .await?;
                tx.commit().await?;
                Ok::<_, BackendError>(replaced)
            }
            .await;
            match committed {
                Ok(replaced) => {
                    self.forget_blobs(replaced).await;
                    Ok(etag)
                }
                Err(e) => {
                    self.forget_blobs([blob]).await;
                    Err(e)
                }
            }
        })
    }

    pub(crate) fn complete_upload(
        &self,
        upload_id: &str,
        listed: &[(u32, String)],
    ) -> StoreResult<ObjectInfo> {
        self.run(async {
            // 1. Check the listed parts against the stored ones.
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            load_upload(&tx, upload_id, "FOR SHARE").await?;
            let mut stored: HashMap<u32, Part> = HashMap::new();
            for row in tx
                .query(
                    "SELECT part_number, etag, size, blob FROM multipart_parts WHERE upload_id = $1",
                    &[&upload_id],
                )
                .await?
            {
                let number: i32 = row.try_get(0)?;
                stored.insert(
                    u32::try_from(number).unwrap_or(0),
                    Part {
                        etag: row.try_get(1)?,
                        size: to_u64(row.try_get(2)?),
                        blob: row.try_get(3)?,
                    },
                );
            }
            tx.commit().await?;
            drop(client);
            let chosen = rules::choose_parts(listed, &mut stored).map_err(StoreError::from)?;
            let etag = rules::multipart_etag(&chosen)?;

            // 2. Join the parts into one blob.
            let size: u64 = chosen.iter().map(|p| p.size).sum();
            let mut joined = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
            for part in &chosen {
                joined.extend_from_slice(&self.blobs.get(&part.blob).await?);
            }
            let data = joined.freeze();
            let digest = sha256(&data);
            let blob = self.blobs.put(data).await?;

            // 3. Commit the version and drop the upload, unless it was aborted meanwhile.
            let committed = async {
                let mut client = self.pool.get().await?;
                let tx = client.transaction().await?;
                let (bucket, key, meta) = load_upload(&tx, upload_id, "FOR UPDATE").await?;
                let new = NewVersion {
                    blob: Some(&blob),
                    sha256: Some(&digest),
                    etag: &etag,
                    size,
                    meta: &meta,
                };
                let (info, replaced) = insert_version(&tx, &bucket, &key, None, &new).await?;
                let parts = remove_upload(&tx, upload_id).await?;
                tx.commit().await?;
                Ok::<_, BackendError>((info, replaced, parts))
            }
            .await;
            match committed {
                Ok((info, replaced, parts)) => {
                    self.forget_blobs(parts.into_iter().chain(replaced.and_then(|r| r.blob)))
                        .await;
                    Ok(info)
                }
                Err(e) => {
                    self.forget_blobs([blob]).await;
                    Err(e)
                }
            }
        })
    }

    pub(crate) fn abort_upload(&self, upload_id: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let blobs = remove_upload(&tx, upload_id).await?;
            tx.commit().await?;
            self.forget_blobs(blobs).await;
            Ok(())
        })
    }
}

use md5::Digest as _;
