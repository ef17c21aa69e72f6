//! The `versions` table: one row per object version or delete marker, newest last by `seq`. These
//! functions run inside the caller's connection or transaction and never touch files; callers unlink
//! the file of a removed row only after their commit.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::buckets::{Versioning, versioning_of};
use crate::db::{json_column, now_ms, to_i64, to_u64};
use crate::{ObjectInfo, PutMeta, StoreError};

/// A `versions` row.
pub(crate) struct VersionRow {
    pub(crate) info: ObjectInfo,
    pub(crate) delete_marker: bool,
    /// File name under `objects/`; `None` for a delete marker.
    pub(crate) file: Option<String>,
}

pub(crate) const VERSION_COLUMNS: &str = "bucket, key, version_id, delete_marker, file, etag, size, modified_ms, content_type, user_metadata";

pub(crate) fn read_version(row: &Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        info: ObjectInfo {
            bucket: row.get(0)?,
            key: row.get(1)?,
            version_id: row.get(2)?,
            etag: row.get(5)?,
            size: to_u64(row.get(6)?),
            last_modified_ms: to_u64(row.get(7)?),
            content_type: row.get(8)?,
            user_metadata: json_column(row, 9)?,
        },
        delete_marker: row.get(3)?,
        file: row.get(4)?,
    })
}

/// The newest version of `key` (`version_id == None`) or the named one, whatever it is.
fn find_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<VersionRow>, StoreError> {
    let row = match version_id {
        None => conn
            .prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2 ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(params![bucket, key], read_version)
            .optional()?,
        Some(v) => conn
            .prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
            ))?
            .query_row(params![bucket, key, v], read_version)
            .optional()?,
    };
    Ok(row)
}

/// The version a get would return: `NoSuchBucket`, `NoSuchKey` (also for a delete marker) or
/// `NoSuchVersion` otherwise.
pub(crate) fn live_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<VersionRow, StoreError> {
    versioning_of(conn, bucket)?;
    match find_version(conn, bucket, key, version_id)? {
        Some(row) if !row.delete_marker => Ok(row),
        Some(_) => Err(StoreError::not_found(
            "NoSuchKey",
            format_args!("'{bucket}/{key}' is a delete marker"),
        )),
        None => Err(match version_id {
            Some(v) => StoreError::not_found(
                "NoSuchVersion",
                format_args!("'{bucket}/{key}' has no version '{v}'"),
            ),
            None => {
                StoreError::not_found("NoSuchKey", format_args!("'{bucket}/{key}' does not exist"))
            }
        }),
    }
}

/// Removes one version row; returns it (its file still exists: unlink it after the commit).
pub(crate) fn remove_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<VersionRow>, StoreError> {
    let row = find_version(conn, bucket, key, Some(version_id))?;
    if row.is_some() {
        conn.execute(
            "DELETE FROM versions WHERE bucket = ?1 AND key = ?2 AND version_id = ?3",
            params![bucket, key, version_id],
        )?;
    }
    Ok(row)
}

/// What a new version row holds besides bucket and key.
pub(crate) struct NewVersion<'a> {
    /// Installed file name; `None` for a delete marker.
    pub(crate) file: Option<&'a str>,
    pub(crate) etag: &'a str,
    pub(crate) size: u64,
    pub(crate) meta: &'a PutMeta,
}

/// Adds a version as the bucket's versioning state demands: a fresh version id when enabled,
/// otherwise replacing the `"null"` version. Returns the new version and the replaced row, whose file
/// must be unlinked after the commit.
pub(crate) fn insert_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    new: &NewVersion<'_>,
) -> Result<(ObjectInfo, Option<VersionRow>), StoreError> {
    let (version_id, replaced) = match versioning_of(conn, bucket)? {
        Versioning::Enabled => (uuid::Uuid::new_v4().simple().to_string(), None),
        Versioning::Unversioned | Versioning::Suspended => (
            "null".to_owned(),
            remove_version(conn, bucket, key, "null")?,
        ),
    };
    let info = ObjectInfo {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id,
        etag: new.etag.to_owned(),
        size: new.size,
        last_modified_ms: now_ms(),
        content_type: new.meta.content_type.clone(),
        user_metadata: new.meta.user_metadata.clone(),
    };
    conn.execute(
        &format!("INSERT INTO versions ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            info.bucket,
            info.key,
            info.version_id,
            new.file.is_none(),
            new.file,
            info.etag,
            to_i64(info.size),
            to_i64(info.last_modified_ms),
            info.content_type,
            serde_json::to_string(&info.user_metadata)?,
        ],
    )?;
    Ok((info, replaced))
}
