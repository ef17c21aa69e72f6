//! AWS IoT's rules for device identity records as pure functions, shared by every backend's
//! [`crate::IdentityRepo`]: each backend counts what the rule needs inside its transaction and
//! asks here whether the change may go ahead (and what the records become).

use crate::{
    CaCertificate, CaCertificateStatus, CertificateStatus, Conflict, DeviceCertificate, Kind,
    MAX_POLICY_VERSIONS, Policy, PolicyVersion, StoreError, StoreResult,
};

/// A device certificate may be deleted unless `ACTIVE`, held by `things`, or attached to
/// `policies` (allowed when those attachments are being removed with it).
pub fn check_certificate_delete(
    cert: &DeviceCertificate,
    things: u64,
    policies: u64,
    detach_policies: bool,
) -> StoreResult<()> {
    if cert.status == CertificateStatus::Active {
        return Err(Conflict::CertificateActive(cert.id.clone()).into());
    }
    if things > 0 || (policies > 0 && !detach_policies) {
        return Err(Conflict::CertificateInUse {
            id: cert.id.clone(),
            things,
            policies,
        }
        .into());
    }
    Ok(())
}

/// A CA certificate may be deleted unless `ACTIVE` or `certificates` registered under it remain.
pub fn check_ca_delete(ca: &CaCertificate, certificates: u64) -> StoreResult<()> {
    if ca.status == CaCertificateStatus::Active {
        return Err(Conflict::CaCertificateActive(ca.id.clone()).into());
    }
    if certificates > 0 {
        return Err(Conflict::CaCertificateInUse {
            id: ca.id.clone(),
            certificates,
        }
        .into());
    }
    Ok(())
}

/// A policy may be deleted unless attached to `targets` or holding `versions` > 1.
pub fn check_policy_delete(name: &str, targets: u64, versions: u64) -> StoreResult<()> {
    if targets > 0 {
        return Err(Conflict::PolicyInUse {
            name: name.to_owned(),
            targets,
        }
        .into());
    }
    if versions > 1 {
        return Err(Conflict::PolicyHasVersions {
            name: name.to_owned(),
            versions,
        }
        .into());
    }
    Ok(())
}

/// The next version of `policy` (which has `versions` now) and the policy after it: ids are never
/// reused; at most [`MAX_POLICY_VERSIONS`]; a new default gets a new generation id.
pub fn next_policy_version(
    policy: &Policy,
    versions: u64,
    document: &str,
    set_as_default: bool,
    now_ms: u64,
) -> StoreResult<(Policy, PolicyVersion)> {
    if versions >= MAX_POLICY_VERSIONS as u64 {
        return Err(Conflict::PolicyVersionsLimit {
            name: policy.name.clone(),
            max: MAX_POLICY_VERSIONS,
        }
        .into());
    }
    let version = PolicyVersion {
        policy_name: policy.name.clone(),
        version_id: policy.next_version_id,
        document: document.to_owned(),
        created_ms: now_ms,
    };
    let mut policy = policy.clone();
    policy.next_version_id += 1;
    policy.modified_ms = now_ms;
    if set_as_default {
        policy.default_version_id = version.version_id;
        policy.generation_id = new_generation_id();
    }
    Ok((policy, version))
}

/// `policy` with `version_id` (which must exist: `version_exists`) as its default.
pub fn with_default_version(
    policy: &Policy,
    version_id: u64,
    version_exists: bool,
    now_ms: u64,
) -> StoreResult<Policy> {
    if !version_exists {
        return Err(no_such_version(&policy.name, version_id));
    }
    let mut policy = policy.clone();
    policy.default_version_id = version_id;
    policy.modified_ms = now_ms;
    policy.generation_id = new_generation_id();
    Ok(policy)
}

/// A version may be deleted when it exists and is not the default.
pub fn check_version_delete(
    policy: &Policy,
    version_id: u64,
    version_exists: bool,
) -> StoreResult<()> {
    if !version_exists {
        return Err(no_such_version(&policy.name, version_id));
    }
    if policy.default_version_id == version_id {
        return Err(Conflict::DefaultPolicyVersion {
            name: policy.name.clone(),
            version_id,
        }
        .into());
    }
    Ok(())
}

/// `NotFound(PolicyVersion)` for `name` version `version_id`.
pub fn no_such_version(name: &str, version_id: u64) -> StoreError {
    StoreError::not_found(Kind::PolicyVersion, format!("{name}/{version_id}"))
}

fn new_generation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
