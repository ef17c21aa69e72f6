//! Integration tests of `otastream-store`, compiled as one binary. Each test opens its own store in its
//! own temporary directory.

mod durability;
mod multipart;
mod objects;
mod resources;
mod streams;

use otastream_store::{PutMeta, Store, StoreError, Versioning};
use tempfile::TempDir;

/// A fresh store in a fresh temporary directory (keep the `TempDir` alive for the test's duration).
pub fn fresh_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// A store with one bucket already created.
pub fn store_with_bucket(bucket: &str) -> (TempDir, Store) {
    let (dir, store) = fresh_store();
    store.create_bucket(bucket).expect("create bucket");
    (dir, store)
}

/// A store with one bucket that has versioning enabled.
pub fn versioned_store(bucket: &str) -> (TempDir, Store) {
    let (dir, store) = store_with_bucket(bucket);
    store
        .set_bucket_versioning(bucket, Versioning::Enabled)
        .expect("enable versioning");
    (dir, store)
}

/// Metadata with just a content type.
pub fn typed(content_type: &str) -> PutMeta {
    PutMeta {
        content_type: Some(content_type.into()),
        user_metadata: Vec::new(),
    }
}

/// The AWS code of an error, panicking with the error when there is none.
pub fn code_of(err: &StoreError) -> &str {
    err.code()
        .unwrap_or_else(|| panic!("error without an AWS code: {err}"))
}

/// Number of files in a sub-directory of the data directory.
pub fn files_in(store: &Store, sub: &str) -> usize {
    std::fs::read_dir(store.data_dir().join(sub))
        .expect("read dir")
        .count()
}
