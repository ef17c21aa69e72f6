//! The `versions` table: one row per object version or delete marker, newest last by `seq`. These
//! functions run inside the caller's connection or transaction and never touch files; callers unlink
//! the file of a removed row only after their commit.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::buckets::versioning_of;
use crate::db::{json_column, now_ms, to_i64, to_u64};
use crate::rules::{self, VersionSlot};
use crate::{Kind, ObjectInfo, PutMeta, StoreError};

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
        Some(_) | None if version_id.is_none() => Err(StoreError::not_found(
            Kind::Object,
            format!("{bucket}/{key}"),
        )),
        Some(_) | None => Err(StoreError::not_found(
            Kind::ObjectVersion,
            format!(
                "{bucket}/{key}?versionId={}",
                version_id.unwrap_or_default()
            ),
        )),
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

/// Adds a version in `slot` (`None`: as the bucket's versioning state demands, see
/// [`rules::slot_for_new_version`]). Returns the new version and the replaced row, whose file must be
/// unlinked after the commit.
pub(crate) fn insert_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    slot: Option<VersionSlot>,
    new: &NewVersion<'_>,
) -> Result<(ObjectInfo, Option<VersionRow>), StoreError> {
    let slot = match slot {
        Some(slot) => slot,
        None => rules::slot_for_new_version(versioning_of(conn, bucket)?),
    };
    let replaced = match slot {
        VersionSlot::Fresh(_) => None,
        VersionSlot::Null => remove_version(conn, bucket, key, rules::NULL_VERSION)?,
    };
    let version_id = slot.version_id().to_owned();
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
