//! Multipart uploads as S3 does them: parts are stored durably under `parts/<uuid>` as they arrive,
//! completion concatenates the listed parts into one new object file and commits it together with the
//! removal of the upload, and the ETag is the MD5 of the parts' binary MD5s followed by `-N`.

use std::collections::HashMap;

use md5::{Digest, Md5};
use rusqlite::{Connection, OptionalExtension, params};

use crate::buckets::versioning_of;
use crate::db::{self, json_column, now_ms, to_i64, to_u64};
use crate::files::{self, OBJECTS_DIR, PARTS_DIR};
use crate::objects::validate_key;
use crate::{ObjectInfo, PutMeta, Store, StoreError};

/// Every part but the last must be at least this long (S3's `EntityTooSmall` rule).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Part numbers run from 1 to this.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// An upload's row.
struct Upload {
    bucket: String,
    key: String,
    meta: PutMeta,
}

/// A stored part.
struct Part {
    file: String,
    etag: String,
    size: u64,
}

fn no_such_upload(upload_id: &str) -> StoreError {
    StoreError::not_found(
        "NoSuchUpload",
        format_args!("upload '{upload_id}' does not exist (completed or aborted?)"),
    )
}

fn load_upload(conn: &Connection, upload_id: &str) -> Result<Upload, StoreError> {
    conn.query_row(
        "SELECT bucket, key, content_type, user_metadata FROM uploads WHERE id = ?1",
        [upload_id],
        |row| {
            let meta = PutMeta {
                content_type: row.get(2)?,
                user_metadata: json_column(row, 3)?,
            };
            Ok(Upload {
                bucket: row.get(0)?,
                key: row.get(1)?,
                meta,
            })
        },
    )
    .optional()?
    .ok_or_else(|| no_such_upload(upload_id))
}

/// Deletes an upload and its part rows; returns the part file names to unlink after the commit.
fn remove_upload(conn: &Connection, upload_id: &str) -> Result<Vec<String>, StoreError> {
    load_upload(conn, upload_id)?;
    let names: Vec<String> = {
        let mut stmt = conn.prepare_cached("SELECT file FROM parts WHERE upload_id = ?1")?;
        let rows = stmt.query_map([upload_id], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    conn.execute("DELETE FROM parts WHERE upload_id = ?1", [upload_id])?;
    conn.execute("DELETE FROM uploads WHERE id = ?1", [upload_id])?;
    Ok(names)
}

/// `"abc"` and `abc` name the same ETag.
fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

impl Store {
    fn unlink_parts(&self, names: Vec<String>) {
        for name in names {
            files::remove_quietly(&self.data_dir().join(PARTS_DIR).join(name));
        }
    }

    /// Starts a multipart upload to `bucket/key`; returns the upload id. `NoSuchBucket` if missing.
    pub fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        meta: PutMeta,
    ) -> Result<String, StoreError> {
        validate_key(key)?;
        let conn = self.conn();
        versioning_of(&conn, bucket)?;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        conn.execute(
            "INSERT INTO uploads (id, bucket, key, content_type, user_metadata, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![upload_id, bucket, key, meta.content_type, serde_json::to_string(&meta.user_metadata)?, to_i64(now_ms())],
        )?;
        Ok(upload_id)
    }

    /// Stores part `part_number` (1..=10000) of an upload, replacing an earlier part with that number;
    /// returns its quoted MD5 ETag. `NoSuchUpload`, or `InvalidArgument` for a bad part number.
    pub fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        data: &[u8],
    ) -> Result<String, StoreError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(StoreError::invalid(
                "InvalidArgument",
                format_args!("part number {part_number} is outside 1..={MAX_PART_NUMBER}"),
            ));
        }
        load_upload(&self.conn(), upload_id)?;
        let file = files::install_bytes(self.data_dir(), PARTS_DIR, data)?;
        let etag = file.etag();
        let committed = (|| {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            load_upload(&tx, upload_id)?;
            let replaced: Option<String> = tx
                .query_row(
                    "SELECT file FROM parts WHERE upload_id = ?1 AND part_number = ?2",
                    params![upload_id, part_number],
                    |row| row.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO parts (upload_id, part_number, file, etag, size) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (upload_id, part_number) DO UPDATE SET file = excluded.file, etag = excluded.etag, size = excluded.size",
                params![upload_id, part_number, file.name, etag, to_i64(file.size)],
            )?;
            tx.commit()?;
            Ok(replaced)
        })();
        match committed {
            Ok(replaced) => {
                self.unlink_parts(replaced.into_iter().collect());
                Ok(etag)
            }
            Err(e) => {
                file.discard();
                Err(e)
            }
        }
    }

    /// Completes an upload from the listed `(part number, etag)` pairs, which must be in ascending order
    /// and name stored parts with matching ETags; every part but the last must be at least
    /// [`MIN_PART_SIZE`]. Errors: `NoSuchUpload`, `MalformedXML` (no parts), `InvalidPartOrder`,
    /// `InvalidPart`, `EntityTooSmall`, all as `Invalid` except the first.
    pub fn complete_multipart(
        &self,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo, StoreError> {
        let (upload, mut stored) = {
            let conn = self.conn();
            let upload = load_upload(&conn, upload_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT part_number, file, etag, size FROM parts WHERE upload_id = ?1",
            )?;
            let rows = stmt.query_map([upload_id], |row| {
                let part = Part {
                    file: row.get(1)?,
                    etag: row.get(2)?,
                    size: to_u64(row.get(3)?),
                };
                Ok((row.get::<_, u32>(0)?, part))
            })?;
            (upload, rows.collect::<Result<HashMap<_, _>, _>>()?)
        };
        let chosen = choose_parts(parts, &mut stored)?;

        let mut digests = Vec::with_capacity(chosen.len() * 16);
        for part in &chosen {
            let digest = hex::decode(unquoted(&part.etag)).map_err(|e| {
                StoreError::Db(format!("stored part etag {} is not hex: {e}", part.etag))
            })?;
            digests.extend_from_slice(&digest);
        }
        let etag = format!(
            "\"{}-{}\"",
            hex::encode(Md5::digest(&digests)),
            chosen.len()
        );
        let sources: Vec<_> = chosen
            .iter()
            .map(|p| self.data_dir().join(PARTS_DIR).join(&p.file))
            .collect();
        let file = files::install_concatenation(self.data_dir(), OBJECTS_DIR, &sources)?;

        let mut part_files = Vec::new();
        let info = self.commit_object(
            &upload.bucket,
            &upload.key,
            file,
            &etag,
            &upload.meta,
            |tx| {
                part_files = remove_upload(tx, upload_id)?;
                Ok(())
            },
        )?;
        self.unlink_parts(part_files);
        Ok(info)
    }

    /// Abandons an upload and deletes its parts; `NoSuchUpload` if it is not in progress.
    pub fn abort_multipart(&self, upload_id: &str) -> Result<(), StoreError> {
        let part_files = {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            let names = remove_upload(&tx, upload_id)?;
            tx.commit()?;
            names
        };
        self.unlink_parts(part_files);
        Ok(())
    }
}

/// Checks the client's part list against the stored parts and returns them in order.
fn choose_parts(
    listed: &[(u32, String)],
    stored: &mut HashMap<u32, Part>,
) -> Result<Vec<Part>, StoreError> {
    if listed.is_empty() {
        return Err(StoreError::invalid(
            "MalformedXML",
            "a multipart upload needs at least one part",
        ));
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(StoreError::invalid(
            "InvalidPartOrder",
            "parts must be listed in ascending part-number order",
        ));
    }
    let mut chosen = Vec::with_capacity(listed.len());
    for (index, (number, etag)) in listed.iter().enumerate() {
        let part = match stored.remove(number) {
            Some(part) if unquoted(&part.etag) == unquoted(etag) => part,
            _ => {
                return Err(StoreError::invalid(
                    "InvalidPart",
                    format_args!("part {number} with etag {etag} was not uploaded"),
                ));
            }
        };
        if index + 1 < listed.len() && part.size < MIN_PART_SIZE {
            return Err(StoreError::invalid(
                "EntityTooSmall",
                format_args!(
                    "part {number} is {} bytes; all but the last must be at least {MIN_PART_SIZE}",
                    part.size
                ),
            ));
        }
        chosen.push(part);
    }
    Ok(chosen)
}
