//! Typed control-plane records: things and thing groups, OTA updates, signing profiles and jobs,
//! ACM certificates. Jobs and executions are the engine's own types ([`otastream_jobs::model::Job`],
//! [`otastream_jobs::execution::JobExecution`]).
//!
//! Every field the control plane reads or writes is typed. Members that are AWS request documents
//! the store never interprets (rollout configs, signing parameters, thing-group properties, OTA file
//! entries) are kept as [`serde_json::Value`] exactly as the request gave them. Times are milliseconds
//! since the Unix epoch. Records derive serde so a backend may keep them as JSON documents; the field
//! names of that JSON are the backends' business, not a wire format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An IoT thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thing {
    /// `thingName`.
    pub name: String,
    /// `thingArn`.
    pub arn: String,
    /// `thingId` (a UUID).
    pub id: String,
    /// `thingTypeName`.
    pub type_name: Option<String>,
    /// `attributes`.
    pub attributes: BTreeMap<String, String>,
    /// `version` (1 at creation).
    pub version: u64,
}

/// An IoT thing group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThingGroup {
    /// `thingGroupName`.
    pub name: String,
    /// `thingGroupArn`.
    pub arn: String,
    /// `thingGroupId` (a UUID).
    pub id: String,
    /// `version` (1 at creation).
    pub version: u64,
    /// `thingGroupProperties` as given (an AWS document).
    pub properties: Value,
    /// `thingGroupMetadata.parentGroupName`.
    pub parent: Option<String>,
    /// `thingGroupMetadata.creationDate`, ms.
    pub created_ms: u64,
}

/// Where an OTA update stands (`otaUpdateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OtaUpdateStatus {
    /// Accepted; files, stream and job are being prepared.
    CreatePending,
    /// Being prepared (not used by otastream, listed by AWS).
    CreateInProgress,
    /// The job exists.
    CreateComplete,
    /// Preparation failed; see [`OtaUpdate::error`].
    CreateFailed,
    /// Being deleted (listed by AWS).
    DeleteInProgress,
    /// Deletion failed (listed by AWS).
    DeleteFailed,
}

impl OtaUpdateStatus {
    /// Every status, in AWS order.
    pub const ALL: [Self; 6] = [
        Self::CreatePending,
        Self::CreateInProgress,
        Self::CreateComplete,
        Self::CreateFailed,
        Self::DeleteInProgress,
        Self::DeleteFailed,
    ];

    /// The AWS spelling (`CREATE_PENDING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreatePending => "CREATE_PENDING",
            Self::CreateInProgress => "CREATE_IN_PROGRESS",
            Self::CreateComplete => "CREATE_COMPLETE",
            Self::CreateFailed => "CREATE_FAILED",
            Self::DeleteInProgress => "DELETE_IN_PROGRESS",
            Self::DeleteFailed => "DELETE_FAILED",
        }
    }

    /// Parses the AWS spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why an OTA update failed (`errorInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaError {
    /// `errorInfo.code`, the AWS error code chosen by the control plane.
    pub code: String,
    /// `errorInfo.message`.
    pub message: String,
}

/// An OTA update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtaUpdate {
    /// `otaUpdateId`.
    pub id: String,
    /// `otaUpdateArn`.
    pub arn: String,
    /// `creationDate`, ms.
    pub created_ms: u64,
    /// `lastModifiedDate`, ms.
    pub modified_ms: u64,
    /// `description`.
    pub description: Option<String>,
    /// `targets`: thing and thing-group ARNs.
    pub targets: Vec<String>,
    /// `protocols` (`MQTT`, `HTTP`).
    pub protocols: Vec<String>,
    /// `targetSelection` (`SNAPSHOT`, `CONTINUOUS`).
    pub target_selection: String,
    /// `awsJobExecutionsRolloutConfig` as given.
    pub rollout_config: Option<Value>,
    /// `awsJobPresignedUrlConfig` as given (default `{"expiresInSec": 1800}`).
    pub presigned_url_config: Value,
    /// `awsJobAbortConfig` as given.
    pub abort_config: Option<Value>,
    /// `awsJobTimeoutConfig` as given.
    pub timeout_config: Option<Value>,
    /// `files` as requested, replaced by `otaUpdateFiles` as resolved once processed.
    pub files: Vec<Value>,
    /// `additionalParameters` as given.
    pub additional_parameters: Option<Value>,
    /// `roleArn`.
    pub role_arn: String,
    /// `otaUpdateStatus`.
    pub status: OtaUpdateStatus,
    /// `awsIotJobId` once the job exists.
    pub job_id: Option<String>,
    /// `awsIotJobArn` once the job exists.
    pub job_arn: Option<String>,
    /// `errorInfo` when `CREATE_FAILED`.
    pub error: Option<OtaError>,
    /// The stream this update created itself (deleted with `--delete-stream`).
    pub created_stream: Option<String>,
    /// Every stream the update's files use (DeleteStream conflicts).
    pub streams: Vec<String>,
}

/// Whether a signing profile can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProfileStatus {
    /// Usable.
    Active,
    /// Canceled by `CancelSigningProfile`.
    Canceled,
}

impl ProfileStatus {
    /// The AWS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Canceled => "Canceled",
        }
    }
}

/// A signer signing profile (the latest version of a name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningProfile {
    /// `profileName`.
    pub name: String,
    /// `profileVersion` (10 characters, new on every put).
    pub version: String,
    /// `profileVersionArn`.
    pub version_arn: String,
    /// `arn`.
    pub arn: String,
    /// `signingMaterial.certificateArn`.
    pub certificate_arn: String,
    /// `platformId`.
    pub platform_id: String,
    /// `platformDisplayName`.
    pub platform_display_name: String,
    /// `signingParameters` as given.
    pub signing_parameters: Value,
    /// `status`.
    pub status: ProfileStatus,
    /// `signatureValidityPeriod` as given (or the default).
    pub signature_validity_period: Value,
    /// `overrides` as given.
    pub overrides: Option<Value>,
    /// `tags` as given.
    pub tags: Option<Value>,
}

/// Where a signing job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningStatus {
    /// Recorded, not finished.
    InProgress,
    /// Signed; see [`SigningJob::signed`].
    Succeeded,
    /// Failed; see [`SigningJob::status_reason`].
    Failed,
}

impl SigningStatus {
    /// The AWS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// An exact S3 object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Version {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Version id (`"null"` in an unversioned bucket).
    pub version: String,
}

/// The signed copy of a finished signing job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedObject {
    /// Where the signed copy was written.
    pub object: S3Version,
    /// Base64 DER signature over the image.
    pub signature: String,
}

/// A signer signing job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningJob {
    /// `jobId` (a UUID).
    pub id: String,
    /// `source.s3`.
    pub source: S3Version,
    /// `destination.s3.bucketName`.
    pub destination_bucket: String,
    /// `destination.s3.prefix`.
    pub destination_prefix: String,
    /// `signingMaterial.certificateArn` (from the profile).
    pub certificate_arn: String,
    /// `platformId`.
    pub platform_id: String,
    /// `platformDisplayName`.
    pub platform_display_name: String,
    /// `profileName`.
    pub profile_name: String,
    /// `profileVersion`.
    pub profile_version: String,
    /// `signingParameters` (from the profile).
    pub signing_parameters: Value,
    /// `createdAt`, ms.
    pub created_ms: u64,
    /// `completedAt`, ms.
    pub completed_ms: Option<u64>,
    /// `status`.
    pub status: SigningStatus,
    /// `statusReason` when failed.
    pub status_reason: Option<String>,
    /// The signed copy when succeeded.
    pub signed: Option<SignedObject>,
    /// Account id of `jobOwner` / `jobInvoker`.
    pub account_id: String,
}

/// An ACM certificate with its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The UUID at the end of the ARN.
    pub id: String,
    /// `CertificateArn`.
    pub arn: String,
    /// `DomainName` (the subject's common name).
    pub domain_name: String,
    /// `Subject`.
    pub subject: String,
    /// `Issuer`.
    pub issuer: String,
    /// `Serial`.
    pub serial: String,
    /// `NotBefore`, ms.
    pub not_before_ms: u64,
    /// `NotAfter`, ms.
    pub not_after_ms: u64,
    /// `ImportedAt` / `CreatedAt`, ms.
    pub imported_ms: u64,
    /// `KeyAlgorithm` (`EC_prime256v1`, ...).
    pub key_algorithm: String,
    /// `SignatureAlgorithm` (an OID).
    pub signature_algorithm: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The private key, PEM.
    pub private_key_pem: String,
    /// The chain, PEM.
    pub chain_pem: Option<String>,
}
