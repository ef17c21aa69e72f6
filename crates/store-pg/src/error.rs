//! [`BackendError`]: what the PostgreSQL client, the pool and the S3 client report, in one type, and
//! its one mapping to the store's error kinds: a dependency that cannot be reached is
//! `StoreError::Unavailable` (the control plane answers 503), anything else is `StoreError::Db`.

use deadpool_postgres::PoolError;
use deadpool_postgres::tokio_postgres;
use otastream_store::{Conflict, Invalid, StoreError};

/// A failure inside the backend, before it is mapped to a store error.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A store-level outcome (not found, already exists, invalid, conflict), passed through as is.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A PostgreSQL statement or connection failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled PostgreSQL connection could be had (server down, pool exhausted past the wait).
    #[error("PostgreSQL connection pool: {0}")]
    Pool(#[from] PoolError),
    /// An S3 request failed.
    #[error("object store: {0}")]
    S3(#[from] object_store::Error),
    /// A local file (staging area, image cache) failed.
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
    /// The database schema cannot be used by this binary.
    #[error("schema: {0}")]
    Schema(String),
    /// Stored data is inconsistent (a blob that does not hash to its recorded SHA-256, a row that
    /// does not parse).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl BackendError {
    /// Whether the failure means "the dependency is not reachable right now" (retrying later may
    /// work) rather than "the request or the data is wrong".
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Postgres(e) => e.is_closed() || e.code().is_none_or(connection_state),
            Self::Pool(PoolError::Backend(e)) => {
                e.is_closed() || e.code().is_none_or(connection_state)
            }
            Self::Pool(_) => true,
            Self::S3(e) => !matches!(
                e,
                object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }
            ),
            Self::Store(e) => matches!(e, StoreError::Unavailable { .. }),
            Self::Io(_) | Self::Schema(_) | Self::Corrupt(_) => false,
        }
    }

    /// The name of the dependency that failed, for `StoreError::Unavailable`.
    pub fn dependency(&self) -> &'static str {
        match self {
            Self::Postgres(_) | Self::Pool(_) | Self::Schema(_) => "PostgreSQL",
            Self::S3(_) => "the object store",
            Self::Io(_) | Self::Corrupt(_) | Self::Store(_) => "local storage",
        }
    }

    /// The SQLSTATE of a failed statement, if the server answered with one.
    pub fn sql_state(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            Self::Postgres(e) => e.code(),
            Self::Pool(PoolError::Backend(e)) => e.code(),
            _ => None,
        }
    }
}

/// SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutdown, restart).
fn connection_state(state: &tokio_postgres::error::SqlState) -> bool {
    let code = state.code();
    code.starts_with("08") || code.starts_with("57")
}

impl From<Invalid> for BackendError {
    fn from(e: Invalid) -> Self {
        Self::Store(e.into())
    }
}

impl From<Conflict> for BackendError {
    fn from(e: Conflict) -> Self {
        Self::Store(e.into())
    }
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Store(e) => e,
            BackendError::Io(e) => Self::Io(e),
            e if e.is_unavailable() => Self::Unavailable {
                what: e.dependency(),
                source: Box::new(e),
            },
            e => Self::db_source(e.to_string(), e),
        }
    }
}
