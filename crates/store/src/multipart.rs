//! Multipart uploads as S3 does them: parts are stored durably under `parts/<uuid>` as they arrive,
//! completion concatenates the listed parts into one new object file and commits it together with the
//! removal of the upload, and the ETag is the MD5 of the parts' binary MD5s followed by `-N`.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::buckets::versioning_of;
use crate::db::{self, json_column, now_ms, to_i64, to_u64};
use crate::files::{self, OBJECTS_DIR, PARTS_DIR};
use crate::rules::{self, StoredPart};
use crate::{Kind, ObjectInfo, PutMeta, Store, StoreError};

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

impl StoredPart for Part {
    fn etag(&self) -> &str {
        &self.etag
    }
    fn size(&self) -> u64 {
        self.size
    }
}

fn no_such_upload(upload_id: &str) -> StoreError {
    StoreError::not_found(Kind::Upload, upload_id)
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

impl Store {
    fn unlink_parts(&self, names: Vec<String>) {
        for name in names {
            files::remove_quietly(&self.data_dir().join(PARTS_DIR).join(name));
        }
    }

    /// Starts a multipart upload to `bucket/key`; returns the upload id. `NoSuchBucket` if missing.
    pub(crate) fn do_create_multipart(
        &self,
        bucket: &str,
        key: &str,
        meta: PutMeta,
    ) -> Result<String, StoreError> {
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
    pub(crate) fn do_upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        data: &[u8],
    ) -> Result<String, StoreError> {
        rules::check_part_number(part_number)?;
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
    pub(crate) fn do_complete_multipart(
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
        let chosen = rules::choose_parts(parts, &mut stored)?;
        let etag = rules::multipart_etag(&chosen)?;
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
    pub(crate) fn do_abort_multipart(&self, upload_id: &str) -> Result<(), StoreError> {
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
