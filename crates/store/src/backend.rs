//! The storage seam: one repository trait per resource kind, and [`Backend`], which bundles them.
//!
//! Every method is synchronous and blocking (file writes, fsync, database round trips): async
//! callers run them on the blocking pool (`spawn_blocking`). Implementations are `Send + Sync` and
//! used behind `Arc<dyn Backend>` (or `Arc<dyn ObjectStore>`, ... by trait upcasting). Whatever a
//! method acknowledges by returning `Ok` is durable. Errors are [`StoreError`] kinds, never wire
//! codes. The conformance suite (`conformance` feature) checks every backend against these rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use otastream_jobs::execution::JobExecution;
use otastream_jobs::model::Job;

use crate::error::StoreResult;
use crate::identity_types::{CaCertificate, DeviceCertificate, Policy, PolicyVersion};
use crate::object_types::{
    BucketInfo, ByteRange, DeleteOutcome, Object, ObjectInfo, PutMeta, VersionEntry, Versioning,
};
use crate::records::{Certificate, OtaUpdate, SigningJob, SigningProfile, Thing, ThingGroup};
use crate::stream_types::{NewStream, StreamImage, StreamRecord, StreamUpdate};

#[cfg(doc)]
use crate::StoreError;

/// An S3-like versioned object store: buckets, object versions, multipart uploads.
///
/// Versioning follows S3 (see `rules`): an unversioned or suspended bucket keeps one `"null"`
/// version per key that puts replace; an enabled bucket gives every put a fresh 32-hex version id
/// and every unversioned delete a delete marker.
pub trait ObjectStore: Send + Sync {
    /// Creates an empty, unversioned bucket; `AlreadyExists(Bucket)` if present.
    fn create_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// Deletes a bucket that holds no versions (delete markers count): `NotFound(Bucket)`,
    /// `Conflict(BucketHasVersions)`. Unfinished multipart uploads in it are aborted.
    fn delete_bucket(&self, bucket: &str) -> StoreResult<()>;
    /// Whether `bucket` exists.
    fn bucket_exists(&self, bucket: &str) -> StoreResult<bool>;
    /// All buckets, by name.
    fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>>;
    /// Sets the versioning state; `Invalid(VersioningCannotBeDisabled)` for `Unversioned` on a
    /// bucket that left it.
    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreResult<()>;
    /// The versioning state; `NotFound(Bucket)`.
    fn bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning>;

    /// A fresh local path a caller may write a large body to before handing it to
    /// [`ObjectStore::put_object_from_file`] (the file must not exist yet when returned).
    fn staging_path(&self) -> PathBuf;
    /// Stores `data` as a new version of `bucket/key`; `NotFound(Bucket)`.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo>;
    /// Stores the file at `staged` (from [`ObjectStore::staging_path`]) as a new version; the store
    /// takes the file over and removes it whatever the outcome. A path outside the staging area is
    /// refused untouched with `Invalid(NotStaged)`.
    fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        staged: &Path,
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo>;
    /// The newest live version (or the named one) with its bytes, or the bytes of `range`.
    /// `NotFound(Bucket | Object | ObjectVersion)` (`Object` also for a delete marker on top),
    /// `Invalid(RangeNotSatisfiable)`.
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        range: Option<ByteRange>,
    ) -> StoreResult<Object>;
    /// Like [`ObjectStore::get_object`] without the bytes.
    fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<ObjectInfo>;
    /// The whole bytes of one exact version for the device block path: zero copy, and never a
    /// network round trip per block (a backend with remote objects caches them locally).
    fn open_image(&self, bucket: &str, key: &str, version_id: &str) -> StoreResult<Bytes>;
    /// Deletes as S3 does (idempotent): with a version id exactly that version; without, per the
    /// bucket's versioning state (remove `"null"`, or add a delete marker). `NotFound(Bucket)`.
    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<DeleteOutcome>;
    /// `ListObjectsV2`: the newest live version of each key starting with `prefix` and sorting
    /// (UTF-8 bytes) after `start_after`, at most `max`; the flag says whether more follow.
    fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<(Vec<ObjectInfo>, bool)>;
    /// `ListObjectVersions`: every version and delete marker under `prefix`, by key, newest first.
    fn list_object_versions(&self, bucket: &str, prefix: &str) -> StoreResult<Vec<VersionEntry>>;

    /// Starts a multipart upload; returns its id. `NotFound(Bucket)`.
    fn create_multipart(&self, bucket: &str, key: &str, meta: PutMeta) -> StoreResult<String>;
    /// Stores part `part_number` (1..=10000), replacing an earlier one; returns its quoted MD5
    /// ETag. `NotFound(Upload)`, `Invalid(PartNumber)`.
    fn upload_part(&self, upload_id: &str, part_number: u32, data: &[u8]) -> StoreResult<String>;
    /// Completes an upload from `(part number, etag)` pairs (see `rules::choose_parts`); the ETag
    /// is `"<md5 of the part md5s>-N"`. `NotFound(Upload)`, `Invalid(NoParts | PartOrder |
    /// PartMissing | PartTooSmall)`.
    fn complete_multipart(
        &self,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> StoreResult<ObjectInfo>;
    /// Abandons an upload and deletes its parts; `NotFound(Upload)`.
    fn abort_multipart(&self, upload_id: &str) -> StoreResult<()>;
}

/// AWS IoT streams: records that pin object versions, and their cached images.
pub trait StreamRepo: Send + Sync {
    /// Creates a stream at version 1, pinning each file to an object version (the newest live one
    /// when none is given). `AlreadyExists(Stream)`, `NotFound(Bucket | Object | ObjectVersion)`.
    fn create_stream(&self, stream: &NewStream) -> StoreResult<StreamRecord>;
    /// One stream.
    fn get_stream(&self, id: &str) -> StoreResult<Option<StreamRecord>>;
    /// All streams, in creation order.
    fn list_streams(&self) -> StoreResult<Vec<StreamRecord>>;
    /// Applies an update and bumps the version (given files are resolved again); the cached image
    /// is dropped. `NotFound(Stream)` plus the errors of create.
    fn update_stream(&self, id: &str, update: &StreamUpdate) -> StoreResult<StreamRecord>;
    /// Deletes a stream and drops its cached image; `true` when it existed.
    fn delete_stream(&self, id: &str) -> StoreResult<bool>;
    /// The bytes of the stream's current version, opened once and cached until the stream changes.
    /// `Ok(None)` when the stream does not exist; `NotFound` when a pinned version was deleted.
    fn stream_image(&self, id: &str) -> StoreResult<Option<Arc<StreamImage>>>;
}

/// IoT things, thing groups and group membership.
pub trait ThingRepo: Send + Sync {
    /// Stores a new thing; `AlreadyExists(Thing)`.
    fn create_thing(&self, thing: &Thing) -> StoreResult<()>;
    /// One thing.
    fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>>;
    /// All things, in creation order.
    fn list_things(&self) -> StoreResult<Vec<Thing>>;
    /// Deletes a thing and its group memberships in one transaction; `true` when it existed.
    fn delete_thing(&self, name: &str) -> StoreResult<bool>;
    /// Stores a new group; `AlreadyExists(ThingGroup)`.
    fn create_thing_group(&self, group: &ThingGroup) -> StoreResult<()>;
    /// One group.
    fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>>;
    /// All groups, in creation order.
    fn list_thing_groups(&self) -> StoreResult<Vec<ThingGroup>>;
    /// Makes `thing` a member of `group` (again: no change). `NotFound(ThingGroup | Thing)`.
    fn add_thing_to_group(&self, group: &str, thing: &str) -> StoreResult<()>;
    /// Ends a membership; `true` when there was one.
    fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool>;
    /// The direct members of `group`, in the order they were added.
    fn things_in_group(&self, group: &str) -> StoreResult<Vec<String>>;
}

/// One write of a jobs batch (see [`JobRepo::save_jobs`]).
#[derive(Debug, Clone, Copy)]
pub enum JobWrite<'a> {
    /// Inserts or replaces a job.
    SaveJob(&'a Job),
    /// Inserts or replaces an execution.
    SaveExecution(&'a JobExecution),
    /// Deletes a job and all its executions.
    DeleteJob {
        /// The job.
        job_id: &'a str,
    },
    /// Deletes one execution.
    DeleteExecution {
        /// Its job.
        job_id: &'a str,
        /// Its thing.
        thing: &'a str,
    },
}

/// Everything [`JobRepo::load_jobs`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobsSnapshot {
    /// Every job, in creation order.
    pub jobs: Vec<Job>,
    /// Every execution, in creation order.
    pub executions: Vec<JobExecution>,
}

/// IoT jobs and job executions, as the jobs engine keeps them.
pub trait JobRepo: Send + Sync {
    /// Every stored job and execution.
    fn load_jobs(&self) -> StoreResult<JobsSnapshot>;
    /// Applies `writes` in order in ONE transaction: all or nothing, durable on return.
    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()>;
}

/// OTA updates.
pub trait OtaRepo: Send + Sync {
    /// Stores a new update; `AlreadyExists(OtaUpdate)`.
    fn create_ota_update(&self, update: &OtaUpdate) -> StoreResult<()>;
    /// One update.
    fn get_ota_update(&self, id: &str) -> StoreResult<Option<OtaUpdate>>;
    /// Replaces a stored update; `NotFound(OtaUpdate)` when it was deleted meanwhile.
    fn update_ota_update(&self, update: &OtaUpdate) -> StoreResult<()>;
    /// All updates, in creation order.
    fn list_ota_updates(&self) -> StoreResult<Vec<OtaUpdate>>;
    /// Deletes an update; `true` when it existed.
    fn delete_ota_update(&self, id: &str) -> StoreResult<bool>;
}

/// Signer signing profiles and signing jobs.
pub trait SignerRepo: Send + Sync {
    /// Inserts or replaces the profile of `profile.name` (a replaced one keeps its list position).
    fn put_signing_profile(&self, profile: &SigningProfile) -> StoreResult<()>;
    /// One profile.
    fn get_signing_profile(&self, name: &str) -> StoreResult<Option<SigningProfile>>;
    /// All profiles, in creation order.
    fn list_signing_profiles(&self) -> StoreResult<Vec<SigningProfile>>;
    /// Stores a new signing job; `AlreadyExists(SigningJob)`.
    fn create_signing_job(&self, job: &SigningJob) -> StoreResult<()>;
    /// One signing job.
    fn get_signing_job(&self, id: &str) -> StoreResult<Option<SigningJob>>;
    /// Replaces a stored signing job; `NotFound(SigningJob)`.
    fn update_signing_job(&self, job: &SigningJob) -> StoreResult<()>;
    /// All signing jobs, in creation order.
    fn list_signing_jobs(&self) -> StoreResult<Vec<SigningJob>>;
}

/// ACM certificates.
pub trait CertificateRepo: Send + Sync {
    /// Inserts or replaces the certificate `cert.id` (re-import keeps the list position).
    fn put_certificate(&self, cert: &Certificate) -> StoreResult<()>;
    /// One certificate by id (the UUID at the end of its ARN).
    fn get_certificate(&self, id: &str) -> StoreResult<Option<Certificate>>;
    /// All certificates, in import order.
    fn list_certificates(&self) -> StoreResult<Vec<Certificate>>;
    /// Deletes a certificate; `true` when it existed.
    fn delete_certificate(&self, id: &str) -> StoreResult<bool>;
}

/// AWS IoT device identity: device and CA certificates, policies with versions, policy
/// attachments (policy → target ARN) and thing principals (thing → certificate ARN).
///
/// Every rule that needs more than one row is checked inside one transaction, so a refused call
/// changes nothing: deleting a certificate that is `ACTIVE` or still attached, a CA that is `ACTIVE`
/// or has certificates, a policy that is attached or has versions besides the default, the default
/// version itself, a sixth version.
pub trait IdentityRepo: Send + Sync {
    /// Registers a device certificate; `AlreadyExists(DeviceCertificate)`.
    fn create_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()>;
    /// One device certificate by id.
    fn get_device_certificate(&self, id: &str) -> StoreResult<Option<DeviceCertificate>>;
    /// All device certificates, in registration order.
    fn list_device_certificates(&self) -> StoreResult<Vec<DeviceCertificate>>;
    /// Replaces a stored device certificate; `NotFound(DeviceCertificate)`.
    fn update_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()>;
    /// Deletes a device certificate: `NotFound(DeviceCertificate)`, `Conflict(CertificateActive)`
    /// while `ACTIVE`, `Conflict(CertificateInUse)` while a thing holds it, or a policy is attached
    /// to it and `detach_policies` is false (with it, those attachments go in the same transaction).
    fn delete_device_certificate(&self, id: &str, detach_policies: bool) -> StoreResult<()>;

    /// Registers a CA certificate; `AlreadyExists(CaCertificate)`.
    fn create_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()>;
    /// One CA certificate by id.
    fn get_ca_certificate(&self, id: &str) -> StoreResult<Option<CaCertificate>>;
    /// All CA certificates, in registration order.
    fn list_ca_certificates(&self) -> StoreResult<Vec<CaCertificate>>;
    /// Replaces a stored CA certificate; `NotFound(CaCertificate)`.
    fn update_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()>;
    /// Deletes a CA certificate: `NotFound(CaCertificate)`, `Conflict(CaCertificateActive)`,
    /// `Conflict(CaCertificateInUse)` while device certificates registered under it remain.
    fn delete_ca_certificate(&self, id: &str) -> StoreResult<()>;
    /// The account's registration code: the stored one, or `candidate` stored now.
    fn registration_code(&self, candidate: &str) -> StoreResult<String>;

    /// Stores a new policy with its first version (the default); `AlreadyExists(Policy)`.
    fn create_policy(&self, policy: &Policy, first: &PolicyVersion) -> StoreResult<()>;
    /// One policy.
    fn get_policy(&self, name: &str) -> StoreResult<Option<Policy>>;
    /// All policies, in creation order.
    fn list_policies(&self) -> StoreResult<Vec<Policy>>;
    /// Deletes a policy and its one (default) version: `NotFound(Policy)`,
    /// `Conflict(PolicyInUse)` while attached, `Conflict(PolicyHasVersions)` while other versions
    /// exist.
    fn delete_policy(&self, name: &str) -> StoreResult<()>;
    /// Adds a version with the policy's next id, made the default when `set_as_default`:
    /// `NotFound(Policy)`, `Conflict(PolicyVersionsLimit)` when it has [`MAX_POLICY_VERSIONS`].
    ///
    /// [`MAX_POLICY_VERSIONS`]: crate::MAX_POLICY_VERSIONS
    fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
        now_ms: u64,
    ) -> StoreResult<(Policy, PolicyVersion)>;
    /// The versions of a policy, by id; `NotFound(Policy)`.
    fn list_policy_versions(&self, name: &str) -> StoreResult<Vec<PolicyVersion>>;
    /// One version.
    fn get_policy_version(&self, name: &str, version_id: u64)
    -> StoreResult<Option<PolicyVersion>>;
    /// Makes a version the default: `NotFound(Policy | PolicyVersion)`.
    fn set_default_policy_version(
        &self,
        name: &str,
        version_id: u64,
        now_ms: u64,
    ) -> StoreResult<()>;
    /// Deletes a version: `NotFound(Policy | PolicyVersion)`, `Conflict(DefaultPolicyVersion)`.
    fn delete_policy_version(&self, name: &str, version_id: u64) -> StoreResult<()>;

    /// Attaches a policy to a target ARN (again: no change); `NotFound(Policy)`.
    fn attach_policy(&self, policy: &str, target: &str) -> StoreResult<()>;
    /// Detaches; `true` when it was attached.
    fn detach_policy(&self, policy: &str, target: &str) -> StoreResult<bool>;
    /// The policies attached to a target, in attachment order.
    fn policies_for_target(&self, target: &str) -> StoreResult<Vec<String>>;
    /// The targets of a policy, in attachment order.
    fn targets_for_policy(&self, policy: &str) -> StoreResult<Vec<String>>;

    /// Attaches a principal (certificate ARN) to a thing (again: no change); `NotFound(Thing)`.
    fn attach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<()>;
    /// Detaches; `true` when it was attached.
    fn detach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<bool>;
    /// The principals of a thing, in attachment order.
    fn thing_principals(&self, thing: &str) -> StoreResult<Vec<String>>;
    /// The things a principal is attached to, in attachment order.
    fn principal_things(&self, principal: &str) -> StoreResult<Vec<String>>;
}

/// Every repository of one backend: what the control plane and the gateway hold as
/// `Arc<dyn Backend>`. Implemented for every type that implements all of them.
pub trait Backend:
    ObjectStore
    + StreamRepo
    + ThingRepo
    + JobRepo
    + OtaRepo
    + SignerRepo
    + CertificateRepo
    + IdentityRepo
{
    /// A short name for logs and errors (`"sqlite"`, `"postgres"`).
    fn backend_name(&self) -> &'static str;
}

// Object safety and sharing, checked at compile time.
const _: () = {
    const fn assert_shareable<T: Send + Sync + ?Sized>() {}
    assert_shareable::<dyn Backend>();
    assert_shareable::<dyn ObjectStore>();
    assert_shareable::<dyn JobRepo>();
};

/// A shared repository is a repository (so `&Arc<dyn Backend>` can be passed where a
/// `&impl JobRepo` is expected).
impl<T: JobRepo + ?Sized> JobRepo for Arc<T> {
    fn load_jobs(&self) -> StoreResult<JobsSnapshot> {
        (**self).load_jobs()
    }

    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()> {
        (**self).save_jobs(writes)
    }
}
