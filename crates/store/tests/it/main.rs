//! Integration tests of `otastream-store`, compiled as one binary. Each test opens its own store in its
//! own temporary directory.

mod conformance;
mod durability;
mod migration;
mod multipart;
mod objects;
mod pki;
mod streams;

use otastream_store::{ObjectStore as _, PutMeta, Store, StoreError, Versioning};
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

/// The kind of a client-facing error as a label (`NotFound(Bucket)`, `Invalid(PartOrder)`),
/// panicking with the error for the others.
pub fn code_of(err: &StoreError) -> String {
    match err {
        StoreError::NotFound { kind, .. } => format!("NotFound({kind:?})"),
        StoreError::AlreadyExists { kind, .. } => format!("AlreadyExists({kind:?})"),
        StoreError::Conflict(_) => "Conflict".to_owned(),
        StoreError::Invalid(reason) => {
            let debug = format!("{reason:?}");
            let name: String = debug
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            format!("Invalid({name})")
        }
        other => panic!("not a client-facing error: {other}"),
    }
}

/// Number of files in a sub-directory of the data directory.
pub fn files_in(store: &Store, sub: &str) -> usize {
    std::fs::read_dir(store.data_dir().join(sub))
        .expect("read dir")
        .count()
}
