//! Buckets: create, delete (only when empty), list, and the versioning state that decides how puts and
//! deletes of their objects behave.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::{self, now_ms, to_i64, to_u64};
use crate::files::{self, PARTS_DIR};
use crate::{BucketInfo, Conflict, Invalid, Kind, Store, StoreError, Versioning};

/// The versioning state of `bucket`, or `NotFound(Bucket)`.
pub(crate) fn versioning_of(conn: &Connection, bucket: &str) -> Result<Versioning, StoreError> {
    let state: Option<String> = conn
        .query_row(
            "SELECT versioning FROM buckets WHERE name = ?1",
            [bucket],
            |row| row.get(0),
        )
        .optional()?;
    match state {
        Some(text) => Versioning::from_db(&text),
        None => Err(no_such_bucket(bucket)),
    }
}

/// `NotFound(Bucket)`.
pub(crate) fn no_such_bucket(bucket: &str) -> StoreError {
    StoreError::not_found(Kind::Bucket, bucket)
}

impl Store {
    /// Creates an empty, unversioned bucket; `AlreadyExists(Bucket)` if present.
    pub(crate) fn do_create_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let inserted = self.conn().execute(
            "INSERT INTO buckets (name, created_ms, versioning) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            params![bucket, to_i64(now_ms()), Versioning::Unversioned.as_db()],
        )?;
        if inserted == 0 {
            return Err(StoreError::already_exists(Kind::Bucket, bucket));
        }
        Ok(())
    }

    /// Deletes a bucket that holds no object versions (delete markers count, as in S3): `NotFound` if
    /// missing, `Conflict(BucketHasVersions)` otherwise. Unfinished multipart uploads are aborted.
    pub(crate) fn do_delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let part_files = {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            versioning_of(&tx, bucket)?;
            let versions: i64 = tx.query_row(
                "SELECT COUNT(*) FROM versions WHERE bucket = ?1",
                [bucket],
                |row| row.get(0),
            )?;
            if versions > 0 {
                return Err(Conflict::BucketHasVersions {
                    bucket: bucket.to_owned(),
                    versions: to_u64(versions),
                }
                .into());
            }
            let part_files: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT p.file FROM parts p JOIN uploads u ON u.id = p.upload_id WHERE u.bucket = ?1",
                )?;
                let names = stmt.query_map([bucket], |row| row.get(0))?;
                names.collect::<Result<_, _>>()?
            };
            tx.execute(
                "DELETE FROM parts WHERE upload_id IN (SELECT id FROM uploads WHERE bucket = ?1)",
                [bucket],
            )?;
            tx.execute("DELETE FROM uploads WHERE bucket = ?1", [bucket])?;
            tx.execute("DELETE FROM buckets WHERE name = ?1", [bucket])?;
            tx.commit()?;
            part_files
        };
        for name in part_files {
            files::remove_quietly(&self.data_dir().join(PARTS_DIR).join(name));
        }
        Ok(())
    }

    /// Whether `bucket` exists.
    pub(crate) fn do_bucket_exists(&self, bucket: &str) -> Result<bool, StoreError> {
        match versioning_of(&self.conn(), bucket) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All buckets, by name.
    pub(crate) fn do_list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT name, created_ms FROM buckets ORDER BY name")?;
        let rows = stmt.query_map([], |row| {
            Ok(BucketInfo {
                name: row.get(0)?,
                created_ms: to_u64(row.get(1)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets the versioning state. `Unversioned` can only be "set" on a bucket that never left it
    /// (S3 offers no way back): otherwise `Invalid(VersioningCannotBeDisabled)`.
    pub(crate) fn do_set_bucket_versioning(
        &self,
        bucket: &str,
        v: Versioning,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let current = versioning_of(&conn, bucket)?;
        if v == Versioning::Unversioned && current != Versioning::Unversioned {
            return Err(Invalid::VersioningCannotBeDisabled.into());
        }
        conn.execute(
            "UPDATE buckets SET versioning = ?2 WHERE name = ?1",
            params![bucket, v.as_db()],
        )?;
        Ok(())
    }

    /// The versioning state of `bucket`; `NotFound(Bucket)` if missing.
    pub(crate) fn do_bucket_versioning(&self, bucket: &str) -> Result<Versioning, StoreError> {
        versioning_of(&self.conn(), bucket)
    }
}
