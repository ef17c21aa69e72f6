//! The object store's types: buckets and their versioning state, object versions, listings,
//! byte ranges. Shared by every backend.

use std::ops::Range;

use bytes::Bytes;

use crate::{Invalid, StoreError};

/// One bucket as `ListBuckets` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Bucket name (validated by the control plane).
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A bucket's versioning state, as in S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    /// Never enabled: one `"null"` version per key, replaced on overwrite.
    #[default]
    Unversioned,
    /// Every put gets a new 32-character version id; deletes add delete markers.
    Enabled,
    /// Was enabled: old versions stay, new puts and deletes replace the `"null"` version.
    Suspended,
}

impl Versioning {
    /// The `<Status>` of `GetBucketVersioning`: `Enabled`, `Suspended`, or `None` when never enabled.
    pub fn s3_status(self) -> Option<&'static str> {
        match self {
            Self::Unversioned => None,
            Self::Enabled => Some("Enabled"),
            Self::Suspended => Some("Suspended"),
        }
    }

    pub(crate) fn as_db(self) -> &'static str {
        match self {
            Self::Unversioned => "unversioned",
            Self::Enabled => "enabled",
            Self::Suspended => "suspended",
        }
    }

    pub(crate) fn from_db(text: &str) -> Result<Self, StoreError> {
        match text {
            "unversioned" => Ok(Self::Unversioned),
            "enabled" => Ok(Self::Enabled),
            "suspended" => Ok(Self::Suspended),
            other => Err(StoreError::db(format!(
                "unknown versioning state '{other}'"
            ))),
        }
    }
}

/// Caller-supplied metadata stored with a version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutMeta {
    /// `Content-Type`, echoed by get and head.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` pairs (names without the prefix), in the order given.
    pub user_metadata: Vec<(String, String)>,
}

/// What S3 reports about one object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// 32 hex characters in a versioned bucket, `"null"` otherwise.
    pub version_id: String,
    /// Quoted hex MD5 (`"\"9e10...\""`), or `"\"<md5 of part md5s>-N\""` after a multipart upload;
    /// empty for a delete marker.
    pub etag: String,
    /// Length in bytes (0 for a delete marker).
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
    /// `Content-Type` given at upload.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` pairs given at upload.
    pub user_metadata: Vec<(String, String)>,
}

/// An object version with its bytes (all of them, or the requested range).
#[derive(Clone)]
pub struct Object {
    /// The version's metadata (`size` is the whole object's).
    pub info: ObjectInfo,
    /// The bytes of [`Object::range`] (zero copy where the backend can: a memory map of the file).
    pub data: Bytes,
    /// The byte range of the object `data` holds, when a range was requested.
    pub range: Option<Range<u64>>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("info", &self.info)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// What a delete did, for the `x-amz-version-id` and `x-amz-delete-marker` response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// An object version was removed (or there was nothing to remove: S3 deletes are idempotent).
    Deleted {
        /// The removed version (`"null"` in an unversioned bucket).
        version_id: String,
    },
    /// A delete marker was involved: created by a delete without a version id in a versioned
    /// (or suspended) bucket, or removed by a delete that named a marker's version id.
    DeleteMarker {
        /// The marker's version id.
        version_id: String,
    },
}

/// One row of `ListObjectVersions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The version (etag empty and size 0 for a delete marker).
    pub info: ObjectInfo,
    /// Whether this is the newest version of its key.
    pub is_latest: bool,
    /// Whether this version is a delete marker.
    pub is_delete_marker: bool,
}

/// A byte range of a get (`Range: bytes=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive; `last` past the end is clamped).
    Bounded {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: u64,
    },
    /// `bytes=first-`.
    From {
        /// First byte.
        first: u64,
    },
    /// `bytes=-length`: the last `length` bytes.
    Suffix {
        /// How many bytes from the end.
        length: u64,
    },
}

impl ByteRange {
    /// The half-open range of an object of `size` bytes this selects, as S3 resolves it;
    /// [`Invalid::RangeNotSatisfiable`] when it selects nothing.
    pub fn resolve(self, size: u64) -> Result<Range<u64>, Invalid> {
        let range = match self {
            Self::Bounded { first, last } if first <= last => {
                first..last.saturating_add(1).min(size)
            }
            Self::Bounded { .. } => return Err(Invalid::RangeNotSatisfiable { size }),
            Self::From { first } => first..size,
            Self::Suffix { length } => size.saturating_sub(length)..size,
        };
        if range.start >= range.end {
            return Err(Invalid::RangeNotSatisfiable { size });
        }
        Ok(range)
    }
}
