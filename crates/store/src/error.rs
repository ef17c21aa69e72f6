//! [`StoreError`]: the one error type of every storage backend.
//!
//! The store says *what* went wrong in its own terms ([`Kind`], [`Conflict`], [`Invalid`]); it never
//! chooses a wire code. The control plane maps these kinds to AWS codes in one place per protocol
//! (rest-json and S3 XML in `otastream-api`), the gateway to its own answers.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error kept as the source of [`StoreError::Db`] and [`StoreError::Unavailable`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Result alias of every storage call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything that can go wrong in a storage backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The item does not exist (for [`Kind::Object`] also: its newest version is a delete marker).
    #[error("{kind} '{id}' does not exist")]
    NotFound {
        /// What was looked for.
        kind: Kind,
        /// Its id (`bucket/key` for objects, `bucket/key?versionId=v` for versions).
        id: String,
    },
    /// A create found the item already there.
    #[error("{kind} '{id}' already exists")]
    AlreadyExists {
        /// What was created.
        kind: Kind,
        /// Its id.
        id: String,
    },
    /// The operation conflicts with the current state.
    #[error("{0}")]
    Conflict(Conflict),
    /// The request breaks a rule of the store itself (not a field-format check: those are the api's).
    #[error("{0}")]
    Invalid(Invalid),
    /// A dependency (database server, object store) cannot be reached; retrying later may work.
    #[error("{what} is unavailable: {source}")]
    Unavailable {
        /// What could not be reached, e.g. `"PostgreSQL"`.
        what: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A filesystem operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The dev PKI's files cannot be read or a certificate cannot be made.
    #[error("dev PKI: {0}")]
    Pki(String),
    /// The metadata database failed or holds something unreadable.
    #[error("database error: {message}")]
    Db {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

/// The kinds of stored items, for [`StoreError::NotFound`] and [`StoreError::AlreadyExists`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// An S3 bucket.
    Bucket,
    /// An object key (no live version, or a delete marker on top).
    Object,
    /// A named version of an object key.
    ObjectVersion,
    /// A multipart upload.
    Upload,
    /// An AWS IoT stream.
    Stream,
    /// An IoT thing.
    Thing,
    /// An IoT thing group.
    ThingGroup,
    /// An IoT job.
    Job,
    /// An IoT job execution.
    JobExecution,
    /// An OTA update.
    OtaUpdate,
    /// A signer signing profile.
    SigningProfile,
    /// A signer signing job.
    SigningJob,
    /// An ACM certificate.
    Certificate,
    /// An IoT device certificate.
    DeviceCertificate,
    /// An IoT CA certificate.
    CaCertificate,
    /// An IoT policy.
    Policy,
    /// A version of an IoT policy (`policy/version`).
    PolicyVersion,
}

impl Kind {
    /// A lower-case human name ("thing group").
    pub fn name(self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::Object => "object",
            Self::ObjectVersion => "object version",
            Self::Upload => "multipart upload",
            Self::Stream => "stream",
            Self::Thing => "thing",
            Self::ThingGroup => "thing group",
            Self::Job => "job",
            Self::JobExecution => "job execution",
            Self::OtaUpdate => "OTA update",
            Self::SigningProfile => "signing profile",
            Self::SigningJob => "signing job",
            Self::Certificate => "certificate",
            Self::DeviceCertificate => "device certificate",
            Self::CaCertificate => "CA certificate",
            Self::Policy => "policy",
            Self::PolicyVersion => "policy version",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// State conflicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// A bucket still holds object versions (delete markers count) and cannot be deleted.
    #[error("bucket '{bucket}' still holds {versions} object version(s)")]
    BucketHasVersions {
        /// The bucket.
        bucket: String,
        /// How many versions it holds.
        versions: u64,
    },
    /// A device certificate cannot be deleted while `ACTIVE`.
    #[error("certificate '{0}' is ACTIVE; make it INACTIVE or REVOKED first")]
    CertificateActive(String),
    /// A device certificate is still attached to things or policies.
    #[error("certificate '{id}' is attached to {things} thing(s) and {policies} policy(ies)")]
    CertificateInUse {
        /// The certificate id.
        id: String,
        /// Things holding it.
        things: u64,
        /// Policies attached to it.
        policies: u64,
    },
    /// A CA certificate cannot be deleted while `ACTIVE`.
    #[error("CA certificate '{0}' is ACTIVE; make it INACTIVE first")]
    CaCertificateActive(String),
    /// Device certificates registered under a CA remain.
    #[error("CA certificate '{id}' still has {certificates} registered certificate(s)")]
    CaCertificateInUse {
        /// The CA certificate id.
        id: String,
        /// How many device certificates name it.
        certificates: u64,
    },
    /// A policy is still attached to targets.
    #[error("policy '{name}' is attached to {targets} target(s)")]
    PolicyInUse {
        /// The policy.
        name: String,
        /// How many targets.
        targets: u64,
    },
    /// A policy still has versions besides its default.
    #[error("policy '{name}' has {versions} version(s); delete all but the default first")]
    PolicyHasVersions {
        /// The policy.
        name: String,
        /// How many versions it has.
        versions: u64,
    },
    /// The default version of a policy cannot be deleted.
    #[error("version {version_id} is the default version of policy '{name}'")]
    DefaultPolicyVersion {
        /// The policy.
        name: String,
        /// The version.
        version_id: u64,
    },
    /// A policy already has the most versions allowed.
    #[error("policy '{name}' already has the maximum number of versions ({max})")]
    PolicyVersionsLimit {
        /// The policy.
        name: String,
        /// The limit.
        max: usize,
    },
}

/// Rules of the store a request broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// Versioning can be suspended but never turned off again once enabled.
    #[error("versioning can be suspended but not turned off once enabled")]
    VersioningCannotBeDisabled,
    /// A multipart completion listed no parts.
    #[error("a multipart upload needs at least one part")]
    NoParts,
    /// A multipart completion listed parts out of ascending order.
    #[error("parts must be listed in ascending part-number order")]
    PartOrder,
    /// A multipart completion named a part that was not uploaded (or with another ETag).
    #[error("part {part_number} with etag {etag} was not uploaded")]
    PartMissing {
        /// The part number listed.
        part_number: u32,
        /// The ETag listed.
        etag: String,
    },
    /// A part other than the last is smaller than the minimum part size.
    #[error("part {part_number} is {size} bytes; all but the last must be at least {min}")]
    PartTooSmall {
        /// The part number.
        part_number: u32,
        /// Its size.
        size: u64,
        /// The minimum.
        min: u64,
    },
    /// A part number outside `1..=10000`.
    #[error("part number {0} is outside 1..=10000")]
    PartNumber(u32),
    /// A byte range that does not overlap the object.
    #[error("the range is not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// The object's size.
        size: u64,
    },
    /// A file handed to `put_object_from_file` that is not in the store's staging directory.
    #[error("staged file {0} is not inside the store's staging directory")]
    NotStaged(String),
}

impl StoreError {
    /// `NotFound` of `kind` with `id`.
    pub fn not_found(kind: Kind, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// `AlreadyExists` of `kind` with `id`.
    pub fn already_exists(kind: Kind, id: impl Into<String>) -> Self {
        Self::AlreadyExists {
            kind,
            id: id.into(),
        }
    }

    /// `Db` with a message and no source.
    pub fn db(message: impl Into<String>) -> Self {
        Self::Db {
            message: message.into(),
            source: None,
        }
    }

    /// `Db` with a message and its source.
    pub fn db_source(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Db {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether this is `NotFound` of `kind`.
    pub fn is_not_found(&self, kind: Kind) -> bool {
        matches!(self, Self::NotFound { kind: k, .. } if *k == kind)
    }
}

impl From<Invalid> for StoreError {
    fn from(e: Invalid) -> Self {
        Self::Invalid(e)
    }
}

impl From<Conflict> for StoreError {
    fn from(e: Conflict) -> Self {
        Self::Conflict(e)
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::db_source("a stored record cannot be (de)serialized", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_kind_and_keep_sources() {
        let e = StoreError::not_found(Kind::ThingGroup, "g1");
        assert_eq!(e.to_string(), "thing group 'g1' does not exist");
        assert!(e.is_not_found(Kind::ThingGroup));
        assert!(!e.is_not_found(Kind::Thing));
        let e = StoreError::db_source("query failed", std::io::Error::other("disk"));
        assert_eq!(
            std::error::Error::source(&e).map(ToString::to_string),
            Some("disk".to_owned())
        );
        let e = StoreError::from(Invalid::PartNumber(0));
        assert_eq!(e.to_string(), "part number 0 is outside 1..=10000");
    }
}
