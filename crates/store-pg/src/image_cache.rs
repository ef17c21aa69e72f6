//! [`ImageCache`]: a local, content-addressed (SHA-256) cache of object bytes for the device block
//! path. An image is fetched from S3 once, checked against the SHA-256 recorded with its version,
//! written to `<dir>/sha256/<hex>` (temp file, fsync, rename) and memory-mapped; every block after
//! that is a slice of the map: zero copy, no network.
//!
//! Content addressing makes the cache correct with several writers (other nodes, other versions):
//! a name is only ever bound to the bytes that hash to it. Files found on disk at start-up are
//! hashed again the first time they are used, so a torn write from a crash is refetched, not served.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use otastream_store::mmap::map_file;
use sha2::{Digest, Sha256};

use crate::error::BackendError;

/// A SHA-256 digest.
pub(crate) type Sha256Digest = [u8; 32];

/// The cache directory and the maps this process holds.
pub(crate) struct ImageCache {
    dir: PathBuf,
    maps: Mutex<HashMap<Sha256Digest, Bytes>>,
}

impl ImageCache {
    /// Opens (creating) the cache under `dir`; leftovers of interrupted writes are removed.
    pub(crate) fn open(dir: &Path) -> Result<Self, BackendError> {
        fs::create_dir_all(dir.join("sha256"))?;
        let tmp = dir.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self {
            dir: dir.to_owned(),
            maps: Mutex::new(HashMap::new()),
        })
    }

    /// The bytes hashing to `digest` if this node has them (in memory, or on disk and intact).
    pub(crate) fn get(&self, digest: &Sha256Digest) -> Result<Option<Bytes>, BackendError> {
        if let Some(bytes) = self.lock().get(digest) {
            return Ok(Some(bytes.clone()));
        }
        let path = self.path(digest);
        let bytes = match map_file(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if sha256(&bytes) != *digest {
            tracing::warn!(path = %path.display(), "image cache: file does not match its name; refetching");
            drop(bytes);
            fs::remove_file(&path)?;
            return Ok(None);
        }
        Ok(Some(self.remember(digest, bytes)))
    }

    /// Stores `data`, which must hash to `digest`, and returns its memory map.
    pub(crate) fn insert(&self, digest: &Sha256Digest, data: &[u8]) -> Result<Bytes, BackendError> {
        if sha256(data) != *digest {
            return Err(BackendError::Corrupt(format!(
                "object bytes do not match their recorded SHA-256 {}",
                hex::encode(digest)
            )));
        }
        let tmp = self
            .dir
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        let path = self.path(digest);
        fs::rename(&tmp, &path)?;
        Ok(self.remember(digest, map_file(&path)?))
    }

    fn remember(&self, digest: &Sha256Digest, bytes: Bytes) -> Bytes {
        self.lock().entry(*digest).or_insert(bytes).clone()
    }

    fn path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join("sha256").join(hex::encode(digest))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Sha256Digest, Bytes>> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> Sha256Digest {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_mapped_once_and_checked_against_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ImageCache::open(dir.path()).expect("open");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let digest = sha256(&data);
        assert!(cache.get(&digest).expect("get").is_none());
        assert!(matches!(
            cache.insert(&digest, b"other bytes"),
            Err(BackendError::Corrupt(_))
        ));
        let mapped = cache.insert(&digest, &data).expect("insert");
        assert_eq!(&mapped[..], &data[..]);
        let again = cache.get(&digest).expect("get").expect("cached");
        assert_eq!(again.as_ptr(), mapped.as_ptr(), "one map, shared");

        // A new process finds the file; a damaged one is dropped and refetched instead of served.
        drop((cache, mapped, again));
        let cache = ImageCache::open(dir.path()).expect("reopen");
        assert_eq!(
            &cache.get(&digest).expect("get").expect("on disk")[..],
            &data[..]
        );
        drop(cache);
        let path = dir.path().join("sha256").join(hex::encode(digest));
        fs::write(&path, &data[..10]).expect("damage");
        let cache = ImageCache::open(dir.path()).expect("reopen");
        assert!(cache.get(&digest).expect("get").is_none());
        assert!(!path.exists());
    }
}
