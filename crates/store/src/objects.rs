//! Versioned objects: put (bytes or a temp file), get (memory-mapped), head, delete (delete markers),
//! and listings. Keys are arbitrary UTF-8 and never touch the filesystem: each version's bytes live in
//! `objects/<uuid>`, found through its row in the `versions` table.

use std::path::Path;

use bytes::Bytes;
use rusqlite::{Connection, params};

use crate::buckets::versioning_of;
use crate::db;
use crate::files::{self, Installed, OBJECTS_DIR, TMP_DIR};
use crate::rules::{self, DeletePlan};
use crate::versions::{
    NewVersion, VERSION_COLUMNS, VersionRow, insert_version, live_version, read_version,
    remove_version,
};
use crate::{
    DeleteOutcome, Invalid, Object, ObjectInfo, PutMeta, Store, StoreError, VersionEntry, mmap,
};

impl Store {
    /// Stores `data` as a new version of `bucket/key` (durable on return).
    pub(crate) fn do_put_object(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        meta: PutMeta,
    ) -> Result<ObjectInfo, StoreError> {
        self.do_bucket_versioning(bucket)?;
        let file = files::install_bytes(self.data_dir(), OBJECTS_DIR, data)?;
        let etag = file.etag();
        self.commit_object(bucket, key, file, &etag, &meta, |_| Ok(()))
    }

    /// Stores the file at `tmp` as a new version of `bucket/key` by renaming it (no copy). `tmp` must be
    /// directly inside `data_dir()/tmp` (see [`Store::tmp_path`]); the store takes it over and removes
    /// it if the put fails.
    pub(crate) fn do_put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        tmp: &Path,
        meta: PutMeta,
    ) -> Result<ObjectInfo, StoreError> {
        let tmp_dir = self.data_dir().join(TMP_DIR);
        let in_tmp_dir = tmp.parent().is_some_and(|parent| {
            parent == tmp_dir
                || parent
                    .canonicalize()
                    .ok()
                    .is_some_and(|p| Some(p) == tmp_dir.canonicalize().ok())
        });
        if !in_tmp_dir {
            return Err(Invalid::NotStaged(tmp.display().to_string()).into());
        }
        let file = self
            .do_bucket_versioning(bucket)
            .and_then(|_| Ok(files::install_file(self.data_dir(), OBJECTS_DIR, tmp)?))
            .inspect_err(|_| files::remove_quietly(tmp))?;
        let etag = file.etag();
        self.commit_object(bucket, key, file, &etag, &meta, |_| Ok(()))
    }

    /// Commits the row for an installed object file (plus `also`, in the same transaction), then unlinks
    /// the file of any version it replaced. On failure the installed file is removed again.
    pub(crate) fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        file: Installed,
        etag: &str,
        meta: &PutMeta,
        also: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<ObjectInfo, StoreError> {
        let new = NewVersion {
            file: Some(&file.name),
            etag,
            size: file.size,
            meta,
        };
        let committed = (|| {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            let result = insert_version(&tx, bucket, key, None, &new)?;
            also(&tx)?;
            tx.commit()?;
            Ok(result)
        })();
        match committed {
            Ok((info, replaced)) => {
                self.unlink_version_file(replaced);
                Ok(info)
            }
            Err(e) => {
                file.discard();
                Err(e)
            }
        }
    }

    fn unlink_version_file(&self, row: Option<VersionRow>) {
        if let Some(name) = row.and_then(|r| r.file) {
            files::remove_quietly(&self.data_dir().join(OBJECTS_DIR).join(name));
        }
    }

    /// The newest live version (or the named version) with its bytes, memory-mapped.
    /// `NotFound` with `NoSuchBucket`, `NoSuchKey` (also when the newest version is a delete marker) or
    /// `NoSuchVersion`.
    pub(crate) fn do_get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Object, StoreError> {
        // Map while holding the connection: a concurrent delete cannot unlink the file in between.
        let conn = self.conn();
        let row = live_version(&conn, bucket, key, version_id)?;
        let data = self.map_version(&row)?;
        Ok(Object {
            info: row.info,
            data,
            range: None,
        })
    }

    /// Maps a live version's file.
    pub(crate) fn map_version(&self, row: &VersionRow) -> Result<Bytes, StoreError> {
        let name = row.file.as_deref().ok_or_else(|| {
            StoreError::db(format!(
                "version {} of {}/{} has no file",
                row.info.version_id, row.info.bucket, row.info.key
            ))
        })?;
        Ok(mmap::map_file(
            &self.data_dir().join(OBJECTS_DIR).join(name),
        )?)
    }

    /// Like [`Store::get_object`] without the bytes.
    pub(crate) fn do_head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectInfo, StoreError> {
        Ok(live_version(&self.conn(), bucket, key, version_id)?.info)
    }

    /// Deletes as S3 does. With a version id: removes exactly that version. Without one: unversioned
    /// buckets remove the `"null"` version; enabled buckets add a delete marker; suspended buckets
    /// replace the `"null"` version with a `"null"` delete marker. Deleting what is not there succeeds.
    pub(crate) fn do_delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<DeleteOutcome, StoreError> {
        let (outcome, removed) = {
            let mut conn = self.conn();
            let tx = db::write_tx(&mut conn)?;
            let versioning = versioning_of(&tx, bucket)?;
            let result = match rules::plan_delete(version_id, versioning) {
                DeletePlan::RemoveVersion(version_id) => {
                    let removed = remove_version(&tx, bucket, key, &version_id)?;
                    let marker = removed.as_ref().is_some_and(|r| r.delete_marker);
                    (rules::removal_outcome(version_id, marker), removed)
                }
                DeletePlan::AddMarker(slot) => {
                    let marker = NewVersion {
                        file: None,
                        etag: "",
                        size: 0,
                        meta: &PutMeta::default(),
                    };
                    let (info, replaced) = insert_version(&tx, bucket, key, Some(slot), &marker)?;
                    (
                        DeleteOutcome::DeleteMarker {
                            version_id: info.version_id,
                        },
                        replaced,
                    )
                }
            };
            tx.commit()?;
            result
        };
        self.unlink_version_file(removed);
        Ok(outcome)
    }

    /// `ListObjectsV2`: the newest live version of each key starting with `prefix` and sorting after
    /// `start_after`, in key (UTF-8 byte) order, at most `max`; the flag says whether more follow.
    pub(crate) fn do_list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ObjectInfo>, bool), StoreError> {
        let conn = self.conn();
        versioning_of(&conn, bucket)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions v \
             WHERE bucket = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2 AND key > ?3 AND delete_marker = 0 \
               AND seq = (SELECT MAX(seq) FROM versions w WHERE w.bucket = v.bucket AND w.key = v.key) \
             ORDER BY key LIMIT ?4"
        ))?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX - 1) + 1;
        let rows = stmt.query_map(
            params![bucket, prefix, start_after.unwrap_or(""), limit],
            read_version,
        )?;
        let mut infos = rows
            .map(|row| row.map(|r| r.info))
            .collect::<Result<Vec<_>, _>>()?;
        let truncated = infos.len() > max;
        infos.truncate(max);
        Ok((infos, truncated))
    }

    /// `ListObjectVersions`: every version and delete marker under `prefix`, by key, newest first.
    pub(crate) fn do_list_object_versions(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<VersionEntry>, StoreError> {
        let conn = self.conn();
        versioning_of(&conn, bucket)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions \
             WHERE bucket = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2 ORDER BY key, seq DESC"
        ))?;
        let rows = stmt.query_map(params![bucket, prefix], read_version)?;
        let mut entries: Vec<VersionEntry> = Vec::new();
        for row in rows {
            let row = row?;
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
    }
}
