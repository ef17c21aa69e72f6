//! Typed device-identity records of AWS IoT: device certificates, CA certificates, policies and
//! their versions. Attachments (policy → target, thing → principal) are plain name pairs kept by
//! [`crate::IdentityRepo`].
//!
//! Times are milliseconds since the Unix epoch. The records hold what the control plane reads back
//! (`DescribeCertificate`, `GetPolicy`, ...); checking PEM and policy documents is the job of
//! `otastream-pki` and `otastream-iot-policy`, before anything reaches the store.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The status of a device certificate (`CertificateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateStatus {
    /// May connect.
    Active,
    /// Refused at connect; can be made active again.
    Inactive,
    /// Refused at connect for good.
    Revoked,
    /// Being transferred to another account.
    PendingTransfer,
    /// Registered inactive (`RegisterCertificate --status REGISTER_INACTIVE`).
    RegisterInactive,
    /// Auto-registered by its CA, waiting to be activated.
    PendingActivation,
}

impl CertificateStatus {
    /// Every status, in AWS order.
    pub const ALL: [Self; 6] = [
        Self::Active,
        Self::Inactive,
        Self::Revoked,
        Self::PendingTransfer,
        Self::RegisterInactive,
        Self::PendingActivation,
    ];

    /// The AWS spelling (`ACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    /// Parses the AWS spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The status of a CA certificate (`CACertificateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaCertificateStatus {
    /// Certificates it signed may be registered and connect.
    Active,
    /// Certificates it signed are refused.
    Inactive,
}

impl CaCertificateStatus {
    /// The AWS spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
        }
    }

    /// Parses the AWS spelling.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Inactive]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A device (client) certificate registered with IoT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCertificate {
    /// `certificateId`: SHA-256 of the DER, 64 hex digits.
    pub id: String,
    /// `certificateArn` (`arn:aws:iot:REGION:ACCOUNT:cert/<id>`).
    pub arn: String,
    /// `certificatePem`.
    pub pem: String,
    /// `status`.
    pub status: CertificateStatus,
    /// `caCertificateId`: the registered CA that signed it, if any.
    pub ca_certificate_id: Option<String>,
    /// `ownedBy` (an account id).
    pub owner: String,
    /// `creationDate`, ms.
    pub created_ms: u64,
    /// `lastModifiedDate`, ms.
    pub modified_ms: u64,
    /// `validity.notBefore`, ms.
    pub not_before_ms: u64,
    /// `validity.notAfter`, ms.
    pub not_after_ms: u64,
    /// `customerVersion` (1 at registration, +1 on every update).
    pub customer_version: u64,
    /// `generationId` (new on every update).
    pub generation_id: String,
}

/// A CA certificate registered with IoT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaCertificate {
    /// `certificateId`: SHA-256 of the DER, 64 hex digits.
    pub id: String,
    /// `certificateArn` (`arn:aws:iot:REGION:ACCOUNT:cacert/<id>`).
    pub arn: String,
    /// `certificatePem`.
    pub pem: String,
    /// `status`.
    pub status: CaCertificateStatus,
    /// `autoRegistrationStatus` is `ENABLE`.
    pub auto_registration: bool,
    /// `registrationConfig` as given.
    pub registration_config: Option<Value>,
    /// `ownedBy` (an account id).
    pub owner: String,
    /// `creationDate`, ms.
    pub created_ms: u64,
    /// `lastModifiedDate`, ms.
    pub modified_ms: u64,
    /// `validity.notBefore`, ms.
    pub not_before_ms: u64,
    /// `validity.notAfter`, ms.
    pub not_after_ms: u64,
    /// `customerVersion`.
    pub customer_version: u64,
    /// `generationId`.
    pub generation_id: String,
}

/// The most versions one policy may have (AWS: `VersionsLimitExceededException` past it).
pub const MAX_POLICY_VERSIONS: usize = 5;

/// An IoT policy: its name and which version is the default (the one enforced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `policyName`.
    pub name: String,
    /// `policyArn`.
    pub arn: String,
    /// `defaultVersionId`.
    pub default_version_id: u64,
    /// The id the next version gets (ids are never reused, as in AWS).
    pub next_version_id: u64,
    /// `creationDate`, ms.
    pub created_ms: u64,
    /// `lastModifiedDate`, ms.
    pub modified_ms: u64,
    /// `generationId` (new whenever the default version changes).
    pub generation_id: String,
}

/// One version of a policy's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// The policy.
    pub policy_name: String,
    /// `versionId` (1, 2, ...).
    pub version_id: u64,
    /// `policyDocument`, exactly as given.
    pub document: String,
    /// `createDate`, ms.
    pub created_ms: u64,
}
