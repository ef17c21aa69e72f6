//! otastream's production storage backend: metadata in **PostgreSQL**, object bytes in any
//! **S3-compatible service**, and a local content-addressed mmap cache for stream images.
//!
//! [`PgBackend`] implements every repository trait of `otastream-store`. The traits are blocking;
//! the backend owns a small tokio runtime for its async clients (tokio-postgres through a
//! deadpool pool, `object_store` for S3) and blocks on it, so it is called like the SQLite backend:
//! from `spawn_blocking` or a plain thread, never from inside an async task.
//!
//! Object versions are rows in PostgreSQL pointing at immutable blobs in the bucket, so S3
//! versioning semantics (the `"null"` version, delete markers) are the same whatever S3 service is
//! behind it. A put writes its blob first and commits its row second: what a call acknowledged
//! survives a crash of otastream at any point.
//!
//! # Layout
//! - `lib.rs`: [`PgConfig`], [`PgBackend::connect`] (pool, migrations, bucket check), [`ConnectError`].
//! - `error.rs`: [`BackendError`] and its mapping to unavailable / database errors.
//! - `migrate.rs`: versioned migrations from `migrations/NNNN_*.sql` under an advisory lock.
//! - `blobs.rs`: [`S3Location`] and the blob bucket (`blobs/<uuid>`).
//! - `image_cache.rs`: the SHA-256-named local cache of mapped images.

mod blobs;
mod documents;
mod error;
mod identity;
mod image_cache;
mod jobs;
mod migrate;
mod multipart;
mod objects;
mod records;
mod streams;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::tokio_postgres::{self, NoTls};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use otastream_store::{Backend, StoreResult};

pub use blobs::S3Location;
pub use error::BackendError;
pub use migrate::SCHEMA_VERSION;

use blobs::Blobs;
use image_cache::ImageCache;
use streams::StreamImages;

/// How long opening a PostgreSQL connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for a pooled connection before it answers "unavailable".
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Where the backend keeps things.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`.
    pub database_url: String,
    /// The bucket holding the object bytes.
    pub objects: S3Location,
    /// Local directory of the image cache and of staged uploads (per node, disposable).
    pub cache_dir: PathBuf,
    /// Most PostgreSQL connections this process opens.
    pub pool_size: usize,
}

impl PgConfig {
    /// The configuration of `otastream serve --database-url URL --object-store s3://BUCKET
    /// [--s3-endpoint URL]`: credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, the
    /// region from `AWS_REGION` (default `us-east-1`), the cache under `cache_dir`.
    pub fn from_flags(
        database_url: &str,
        object_store: &str,
        s3_endpoint: Option<&str>,
        cache_dir: PathBuf,
    ) -> Result<Self, String> {
        let bucket = object_store
            .strip_prefix("s3://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|bucket| bucket.len() >= 3 && !bucket.contains('/'))
            .ok_or_else(|| format!("--object-store must be s3://BUCKET, not {object_store:?}"))?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(access_key_id), Some(secret_access_key)) =
            (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(format!(
                "--object-store {object_store}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ));
        };
        Ok(Self {
            database_url: database_url.to_owned(),
            objects: S3Location {
                bucket: bucket.to_owned(),
                endpoint: s3_endpoint.map(str::to_owned),
                region: env("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
                access_key_id,
                secret_access_key,
            },
            cache_dir,
            pool_size: DEFAULT_POOL_SIZE,
        })
    }
}

/// PostgreSQL connections per process unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Why [`PgBackend::connect`] failed: one line naming the dependency.
#[derive(Debug)]
pub enum ConnectError {
    /// PostgreSQL could not be reached, or its schema cannot be used.
    Postgres {
        /// The server, without credentials (`host:port/database`).
        server: String,
        /// Why.
        source: BackendError,
    },
    /// The S3 bucket could not be reached with the given credentials.
    ObjectStore {
        /// `s3://bucket` and the endpoint.
        location: String,
        /// Why.
        source: BackendError,
    },
    /// The local cache directory could not be prepared.
    Cache {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: BackendError,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, source) = match self {
            Self::Postgres { server, source } => (format!("PostgreSQL at {server}"), source),
            Self::ObjectStore { location, source } => (format!("object store {location}"), source),
            Self::Cache { dir, source } => (format!("cache directory {}", dir.display()), source),
        };
        // The whole cause chain (the pool's message alone hides "connection refused"), one line.
        let mut reason = source.to_string();
        let mut cause = std::error::Error::source(source);
        while let Some(e) = cause {
            let text = e.to_string();
            if !reason.contains(&text) {
                reason = format!("{reason}: {text}");
            }
            cause = e.source();
        }
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{what}: {reason}")
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Postgres { source, .. }
            | Self::ObjectStore { source, .. }
            | Self::Cache { source, .. } => Some(source),
        }
    }
}

/// The PostgreSQL + S3 backend. Cheap to share behind an `Arc`.
pub struct PgBackend {
    /// Runs the async clients; `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    blobs: Blobs,
    images: ImageCache,
    stream_images: StreamImages,
    staging: PathBuf,
}

impl Backend for PgBackend {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

impl PgBackend {
    /// Connects: checks PostgreSQL (and migrates its schema) and the bucket, prepares the cache.
    pub fn connect(config: &PgConfig) -> Result<Self, ConnectError> {
        let (pg_config, server) = parse_database_url(&config.database_url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("otastream-pg-io")
            .enable_all()
            .build()
            .map_err(|e| ConnectError::Cache {
                dir: config.cache_dir.clone(),
                source: e.into(),
            })?;
        let pg_error = |source| ConnectError::Postgres {
            server: server.clone(),
            source,
        };
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| pg_error(BackendError::Schema(e.to_string())))?;
        runtime
            .block_on(async {
                let mut client = pool.get().await?;
                migrate::migrate(&mut client).await
            })
            .map_err(pg_error)?;
        let objects = &config.objects;
        let location = format!(
            "s3://{} at {}",
            objects.bucket,
            objects.endpoint.as_deref().unwrap_or("AWS S3")
        );
        let blobs = Blobs::new(objects)
            .and_then(|blobs| runtime.block_on(blobs.check()).map(|()| blobs))
            .map_err(|source| ConnectError::ObjectStore { location, source })?;
        let cache_error = |source| ConnectError::Cache {
            dir: config.cache_dir.clone(),
            source,
        };
        let images = ImageCache::open(&config.cache_dir.join("images")).map_err(cache_error)?;
        let staging = config.cache_dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| cache_error(e.into()))?;
        Ok(Self {
            runtime: Some(runtime),
            pool,
            blobs,
            images,
            stream_images: StreamImages::default(),
            staging,
        })
    }

    /// Runs `future` on the backend's runtime and waits for it, like any blocking store call.
    /// Called from a thread of another tokio runtime (the gateway answers block requests in its
    /// connection tasks), it first leaves that runtime: `block_in_place` on a multi-threaded one
    /// (its other tasks move to other workers), a scoped thread on a current-thread one.
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = &self.runtime else {
            unreachable!("the runtime lives until drop")
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Err(_) => runtime.block_on(future),
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| runtime.block_on(future))
            }
            Ok(_) => {
                std::thread::scope(
                    |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                        Ok(output) => output,
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                )
            }
        }
    }

    /// Runs one storage call: its future on the runtime, its error mapped to a store error.
    fn run<T: Send>(
        &self,
        future: impl Future<Output = Result<T, BackendError>> + Send,
    ) -> StoreResult<T> {
        self.block_on(future).map_err(Into::into)
    }

    /// The local directory uploads are staged in.
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        // Dropping a runtime blocks; `shutdown_background` does not, so a backend may be dropped
        // anywhere (also inside another runtime).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The client configuration of `url` and a description of the server without credentials.
fn parse_database_url(url: &str) -> Result<(tokio_postgres::Config, String), ConnectError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| ConnectError::Postgres {
        server: "(unparsable --database-url)".to_owned(),
        source: e.into(),
    })?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("otastream");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    let server = format!(
        "{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("(default database)")
    );
    Ok((config, server))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A count or time for a `bigint` column (saturating).
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `bigint` column as a count or time (negative values, which the backend never writes, as 0).
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
