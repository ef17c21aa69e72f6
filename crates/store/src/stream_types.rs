//! AWS IoT stream types: requests, stored records, and the [`StreamImage`] the gateway serves
//! blocks from. Shared by every backend.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A `CreateStream` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    /// Stream id: 1..=128 characters of `[a-zA-Z0-9_-]`.
    pub id: String,
    /// Free text, at most 2028 characters.
    pub description: Option<String>,
    /// The IAM role ARN the request named (stored, not used).
    pub role_arn: Option<String>,
    /// 1..=50 files with distinct file ids.
    pub files: Vec<StreamFile>,
}

/// One file of a stream request: an S3 location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFile {
    /// File id the device asks for (`f` in the stream protocol).
    pub file_id: u8,
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// Object version; `None` pins the newest live version at create/update time.
    pub version_id: Option<String>,
}

/// An `UpdateStream` request: `None` fields are left as they are. Any update bumps the version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamUpdate {
    /// New description.
    pub description: Option<String>,
    /// New role ARN.
    pub role_arn: Option<String>,
    /// New file list (replaces the whole list; resolved again).
    pub files: Option<Vec<StreamFile>>,
}

/// A stored stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Stream id.
    pub id: String,
    /// 1 at creation, +1 per update (`streamVersion`, `s` in the stream protocol).
    pub version: u64,
    /// Description.
    pub description: Option<String>,
    /// Role ARN.
    pub role_arn: Option<String>,
    /// Files sorted by file id, each pinned to an object version.
    pub files: Vec<StreamFileRecord>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Last update time, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// A stream file resolved against the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamFileRecord {
    /// File id.
    pub file_id: u8,
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// The pinned object version (`"null"` in an unversioned bucket).
    pub version_id: String,
    /// Object size in bytes at resolution time.
    pub size: u64,
    /// Object ETag at resolution time.
    pub etag: String,
}

/// Why a stream file's pinned bytes cannot be served any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinnedFileProblem {
    /// The pinned object version now holds other bytes (its ETag changed: an overwrite in an
    /// unversioned bucket). Devices get `ETagMismatch`, never a mix of old and new blocks.
    Changed,
    /// The pinned object version was deleted. Devices get `ResourceNotFound`.
    Gone,
}

impl PinnedFileProblem {
    /// The one rule of both backends: the pinned file's state from the object version found now
    /// (`None`: not there, or a delete marker) and the ETag recorded when the stream pinned it.
    pub fn of(pinned_etag: &str, current_etag: Option<&str>) -> Option<Self> {
        match current_etag {
            None => Some(Self::Gone),
            Some(etag) if etag != pinned_etag => Some(Self::Changed),
            Some(_) => None,
        }
    }
}

/// The bytes of one stream version, ready to be sliced into blocks.
pub struct StreamImage {
    /// Stream id.
    pub id: String,
    /// Stream version these bytes belong to.
    pub version: u64,
    /// `(file id, bytes)` sorted by file id; each `Bytes` is a memory map of the object version.
    pub files: Vec<(u8, Bytes)>,
    /// Files whose pinned bytes are no longer what the stream recorded, sorted by file id.
    pub unavailable: Vec<(u8, PinnedFileProblem)>,
    /// `(bucket, key)` of every file: a write to one of these objects drops the cached image.
    pub objects: Vec<(String, String)>,
}

impl StreamImage {
    /// The bytes of file `id`, if the stream has it and its pinned bytes are intact.
    pub fn file(&self, id: u8) -> Option<&Bytes> {
        let index = self
            .files
            .binary_search_by_key(&id, |(file_id, _)| *file_id)
            .ok()?;
        Some(&self.files[index].1)
    }

    /// Why file `id` cannot be served, if the stream has it but its pinned bytes changed or went.
    pub fn problem(&self, id: u8) -> Option<PinnedFileProblem> {
        self.unavailable
            .iter()
            .find_map(|(file_id, problem)| (*file_id == id).then_some(*problem))
    }

    /// True when one of the image's files comes from `bucket`/`key`.
    pub fn uses_object(&self, bucket: &str, key: &str) -> bool {
        self.objects.iter().any(|(b, k)| b == bucket && k == key)
    }
}

impl std::fmt::Debug for StreamImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<(u8, usize)> = self
            .files
            .iter()
            .map(|(id, bytes)| (*id, bytes.len()))
            .collect();
        f.debug_struct("StreamImage")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("file_sizes", &sizes)
            .finish()
    }
}
