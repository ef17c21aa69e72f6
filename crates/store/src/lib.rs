//! otastream's storage: the traits every backend implements (an S3-like versioned object store,
//! streams, and one repository per control-plane record kind), and the embedded backend [`Store`]:
//! SQLite metadata, local files, and zero-copy image reads for the device gateway. (The dev PKI is the `otastream-pki` crate.)
//!
//! Everything a method acknowledges is durable when it returns: object bytes are written to `tmp/`,
//! fsynced, renamed to a random name and their directory fsynced *before* the metadata row is committed
//! in SQLite (WAL, `synchronous=FULL`). Files are never rewritten (new versions are new files), so any
//! memory map handed out stays valid; a file is unlinked only once no row references it, and files left
//! behind by a crash are swept when the store is next opened.
//!
//! # Layout
//! - `backend.rs`: the storage seam, one blocking, object-safe trait per resource kind
//!   ([`ObjectStore`], [`StreamRepo`], [`ThingRepo`], [`JobRepo`], [`OtaRepo`], [`SignerRepo`],
//!   [`CertificateRepo`], [`IdentityRepo`]) and [`Backend`], which bundles them behind one `Arc<dyn Backend>`.
//! - `error.rs`: [`StoreError`] with typed kinds ([`Kind`], [`Conflict`], [`Invalid`]); never a wire code.
//! - `records.rs`: typed control-plane records ([`Thing`], [`ThingGroup`], [`OtaUpdate`],
//!   [`SigningProfile`], [`SigningJob`], [`Certificate`]).
//! - [`identity_rules`]: AWS IoT's delete and version rules for them, shared by the backends.
//! - `identity_types.rs`: device identity records ([`DeviceCertificate`], [`CaCertificate`],
//!   [`Policy`], [`PolicyVersion`]).
//! - `object_types.rs`, `stream_types.rs`: object-store and stream types shared by every backend.
//! - [`rules`]: the S3 versioning and multipart rules as pure functions every backend calls.
//! - [`Store`], the embedded backend (SQLite + local files + mmap):
//!   - `lib.rs`: open, data-directory lock, crash sweep.
//!   - `db.rs`: schema and migrations (`PRAGMA user_version`).
//!   - `files.rs`: temp file → fsync → rename → directory fsync; the crash sweep.
//!   - `buckets.rs`, `versions.rs`, `objects.rs`, `multipart.rs`: buckets, the `versions` table,
//!     objects and multipart uploads (part files under `parts/`).
//!   - `streams.rs`: stream records and the cached [`StreamImage`] the gateway serves blocks from.
//!   - `sqlite_objects.rs`: [`ObjectStore`] and [`StreamRepo`] over those.
//!   - `sqlite_records.rs`: one table per control-plane record kind and the other repositories.
//!   - `sqlite_identity.rs`: [`IdentityRepo`] (certificates, CAs, policies, attachments).
//!   - `legacy.rs`: migration 2, converting the untyped `resources` rows of older builds.
//! - `conformance` (feature `conformance`): the suite every backend must pass.
//! - [`mmap`]: the only `unsafe` in the workspace, memory maps as [`bytes::Bytes`].
//!
//! On disk: `meta.sqlite3`, `objects/<uuid>`, `parts/<uuid>`, `tmp/`, `pki/`, and a `lock` file held
//! while a [`Store`] is open (a second opener still works but skips the crash sweep).
//!
//! # Example
//! ```
//! use otastream_store::{NewStream, ObjectStore, PutMeta, Store, StreamFile, StreamRepo};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! store.create_bucket("firmware")?;
//! store.put_object("firmware", "app.bin", b"\x7fELF...", PutMeta::default())?;
//! store.create_stream(&NewStream {
//!     id: "app-v2".into(),
//!     description: None,
//!     role_arn: None,
//!     files: vec![StreamFile { file_id: 0, bucket: "firmware".into(), key: "app.bin".into(), version_id: None }],
//! })?;
//! let image = store.stream_image("app-v2")?.expect("the stream exists");
//! assert_eq!(image.file(0).map(|b| &b[..]), Some(&b"\x7fELF..."[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod buckets;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
mod conformance_identity;
mod db;
mod error;
mod files;
pub mod identity_rules;
mod identity_types;
mod legacy;
pub mod mmap;
mod multipart;
mod object_types;
mod objects;
mod records;
pub mod rules;
mod sqlite_identity;
mod sqlite_objects;
mod sqlite_records;
mod stream_types;
mod streams;
mod versions;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

pub use backend::{
    Backend, CertificateRepo, IdentityRepo, JobRepo, JobWrite, JobsSnapshot, ObjectStore, OtaRepo,
    SignerRepo, StreamRepo, ThingRepo,
};
pub use error::{BoxError, Conflict, Invalid, Kind, StoreError, StoreResult};
pub use identity_types::{
    CaCertificate, CaCertificateStatus, CertificateStatus, DeviceCertificate, MAX_POLICY_VERSIONS,
    Policy, PolicyVersion,
};
pub use object_types::{
    BucketInfo, ByteRange, DeleteOutcome, Object, ObjectInfo, PutMeta, VersionEntry, Versioning,
};
pub use records::{
    Certificate, OtaError, OtaUpdate, OtaUpdateStatus, ProfileStatus, S3Version, SignedObject,
    SigningJob, SigningProfile, SigningStatus, Thing, ThingGroup,
};
pub use rules::{MAX_PART_NUMBER, MIN_PART_SIZE};
pub use stream_types::{
    NewStream, PinnedFileProblem, StreamFile, StreamFileRecord, StreamImage, StreamRecord,
    StreamUpdate,
};

/// Sub-directory of the data directory holding the dev PKI (`otastream_pki::DevPki::load_or_create`).
pub const PKI_DIR: &str = "pki";

/// The data directory: metadata, objects, streams. Cheap to clone; clones share one SQLite connection
/// (behind a mutex, transactions kept short) and one stream-image cache.
///
/// All methods block (file writes, fsync, SQLite): call them from `spawn_blocking` in async code.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    conn: Mutex<Connection>,
    /// Stream images by stream id; entries are removed by `update_stream` / `delete_stream`.
    images: Mutex<HashMap<String, Arc<StreamImage>>>,
    /// Exclusive lock on `<dir>/lock`, held for the life of the store when we got it.
    _dir_lock: Option<File>,
}

// `Store` is shared across threads and tasks by cloning.
const _: () = {
    const fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
    assert_shareable::<Store>();
    assert_shareable::<Arc<StreamImage>>();
};

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the data directory, creating it, `meta.sqlite3`, `objects/`, `parts/`, `tmp/` and `pki/` as
    /// needed, and migrating the schema. When this is the only open store on the directory, files left by
    /// a crash (temp files, installed files that no committed row references) are removed.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        for sub in [
            "",
            files::OBJECTS_DIR,
            files::PARTS_DIR,
            files::TMP_DIR,
            PKI_DIR,
        ] {
            fs::create_dir_all(data_dir.join(sub))?;
        }
        let conn = db::open(&data_dir.join("meta.sqlite3"))?;
        let dir_lock = lock_data_dir(data_dir)?;
        let holds_lock = dir_lock.is_some();
        let store = Self {
            inner: Arc::new(Inner {
                dir: data_dir.to_path_buf(),
                conn: Mutex::new(conn),
                images: Mutex::new(HashMap::new()),
                _dir_lock: dir_lock,
            }),
        };
        if holds_lock {
            store.sweep_unreferenced_files()?;
        }
        Ok(store)
    }

    /// The data directory this store was opened on.
    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A fresh path under `data_dir()/tmp` for a caller that streams a large body to disk before
    /// handing it to [`Store::put_object_from_file`].
    pub fn tmp_path(&self) -> PathBuf {
        files::tmp_path(&self.inner.dir)
    }

    /// The dev PKI directory, `data_dir()/pki`.
    pub fn pki_dir(&self) -> PathBuf {
        self.inner.dir.join(PKI_DIR)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half transaction behind (dropping a rusqlite
        // transaction rolls it back), so a poisoned connection is still consistent.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn images(&self) -> MutexGuard<'_, HashMap<String, Arc<StreamImage>>> {
        self.inner
            .images
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes temp files and installed files that no committed row references (left by a crash
    /// between a rename and its metadata commit, or between a commit and an unlink).
    fn sweep_unreferenced_files(&self) -> Result<(), StoreError> {
        let referenced: HashSet<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT file FROM versions WHERE file IS NOT NULL UNION ALL SELECT file FROM parts",
            )?;
            let names = stmt.query_map([], |row| row.get::<_, String>(0))?;
            names.collect::<Result<_, _>>()?
        };
        let dir = &self.inner.dir;
        let mut removed = files::sweep(&dir.join(files::TMP_DIR), |_| false)?;
        for sub in [files::OBJECTS_DIR, files::PARTS_DIR] {
            removed += files::sweep(&dir.join(sub), |name| referenced.contains(name))?;
        }
        if removed > 0 {
            tracing::info!(removed, dir = %dir.display(), "removed files left behind by an interrupted write");
        }
        Ok(())
    }
}

/// Takes the exclusive lock on `<dir>/lock`. `None` when another store holds it: that opener then skips
/// the crash sweep, because the other store may be between a rename and its commit.
fn lock_data_dir(dir: &Path) -> Result<Option<File>, StoreError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => {
            tracing::warn!(dir = %dir.display(), "data directory is already open elsewhere; skipping the crash sweep");
            Ok(None)
        }
        Err(fs::TryLockError::Error(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot lock the data directory; skipping the crash sweep");
            Ok(None)
        }
    }
}
