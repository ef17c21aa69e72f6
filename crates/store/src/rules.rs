//! The S3 rules every object-store backend follows, as pure functions: which version a put or a
//! delete creates or replaces, how a multipart completion picks its parts, and the ETags.
//! Backends do the I/O; these decide.

use md5::{Digest, Md5};

use crate::{DeleteOutcome, Invalid, StoreError, Versioning};

/// The version id of objects written while versioning was never enabled (or suspended).
pub const NULL_VERSION: &str = "null";
/// Every part but the last must be at least this long.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Part numbers run from 1 to this.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// Where a new version (object or delete marker) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSlot {
    /// A fresh version id; nothing is replaced.
    Fresh(String),
    /// The `"null"` version, replacing the existing `"null"` version of the key if any.
    Null,
}

impl VersionSlot {
    /// The version id the new version gets.
    pub fn version_id(&self) -> &str {
        match self {
            Self::Fresh(id) => id,
            Self::Null => NULL_VERSION,
        }
    }
}

/// The slot of a put (or of a delete marker) in a bucket with `versioning`.
pub fn slot_for_new_version(versioning: Versioning) -> VersionSlot {
    match versioning {
        Versioning::Enabled => VersionSlot::Fresh(new_version_id()),
        Versioning::Unversioned | Versioning::Suspended => VersionSlot::Null,
    }
}

/// A fresh 32-hex version id.
pub fn new_version_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What a delete does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletePlan {
    /// Remove exactly this version if it exists (a delete marker too).
    RemoveVersion(String),
    /// Add a delete marker in this slot.
    AddMarker(VersionSlot),
}

/// The plan of a delete with `version_id` in a bucket with `versioning`.
pub fn plan_delete(version_id: Option<&str>, versioning: Versioning) -> DeletePlan {
    match (version_id, versioning) {
        (Some(v), _) => DeletePlan::RemoveVersion(v.to_owned()),
        (None, Versioning::Unversioned) => DeletePlan::RemoveVersion(NULL_VERSION.to_owned()),
        (None, Versioning::Enabled | Versioning::Suspended) => {
            DeletePlan::AddMarker(slot_for_new_version(versioning))
        }
    }
}

/// The outcome reported for [`DeletePlan::RemoveVersion`] given whether the removed version (if
/// any) was a delete marker.
pub fn removal_outcome(version_id: String, removed_marker: bool) -> DeleteOutcome {
    if removed_marker {
        DeleteOutcome::DeleteMarker { version_id }
    } else {
        DeleteOutcome::Deleted { version_id }
    }
}

/// `"abc"` and `abc` name the same ETag.
pub fn unquoted(etag: &str) -> &str {
    etag.trim_matches('"')
}

/// `"<hex>"`, the form S3 uses for ETags.
pub fn quoted_etag(digest: &[u8]) -> String {
    format!("\"{}\"", hex::encode(digest))
}

/// Refuses part numbers outside `1..=10000`.
pub fn check_part_number(part_number: u32) -> Result<(), Invalid> {
    if (1..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(Invalid::PartNumber(part_number))
    }
}

/// A stored part as [`choose_parts`] sees it.
pub trait StoredPart {
    /// Its quoted (or unquoted) MD5 ETag.
    fn etag(&self) -> &str;
    /// Its length in bytes.
    fn size(&self) -> u64;
}

/// Checks a completion's `(part number, etag)` list against the stored parts (taken out of
/// `stored`) and returns them in order: at least one part, ascending numbers, matching ETags, every
/// part but the last at least [`MIN_PART_SIZE`].
pub fn choose_parts<P: StoredPart>(
    listed: &[(u32, String)],
    stored: &mut std::collections::HashMap<u32, P>,
) -> Result<Vec<P>, Invalid> {
    if listed.is_empty() {
        return Err(Invalid::NoParts);
    }
    if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Invalid::PartOrder);
    }
    let mut chosen = Vec::with_capacity(listed.len());
    for (index, (number, etag)) in listed.iter().enumerate() {
        let part = match stored.remove(number) {
            Some(part) if unquoted(part.etag()) == unquoted(etag) => part,
            _ => {
                return Err(Invalid::PartMissing {
                    part_number: *number,
                    etag: etag.clone(),
                });
            }
        };
        if index + 1 < listed.len() && part.size() < MIN_PART_SIZE {
            return Err(Invalid::PartTooSmall {
                part_number: *number,
                size: part.size(),
                min: MIN_PART_SIZE,
            });
        }
        chosen.push(part);
    }
    Ok(chosen)
}

/// The ETag of a completed multipart upload: the MD5 of the parts' binary MD5s, then `-N`.
pub fn multipart_etag<P: StoredPart>(parts: &[P]) -> Result<String, StoreError> {
    let mut digests = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let digest = hex::decode(unquoted(part.etag())).map_err(|e| {
            StoreError::db_source(format!("stored part etag {} is not hex", part.etag()), e)
        })?;
        digests.extend_from_slice(&digest);
    }
    Ok(format!(
        "\"{}-{}\"",
        hex::encode(Md5::digest(&digests)),
        parts.len()
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct P(&'static str, u64);
    impl StoredPart for P {
        fn etag(&self) -> &str {
            self.0
        }
        fn size(&self) -> u64 {
            self.1
        }
    }

    const A: &str = "\"0cc175b9c0f1b6a831c399e269772661\"";
    const B: &str = "\"92eb5ffee6ae2fec3ad71c777531578f\"";

    #[test]
    fn versioning_decides_the_slot_and_the_delete() {
        assert_eq!(
            slot_for_new_version(Versioning::Unversioned),
            VersionSlot::Null
        );
        assert_eq!(
            slot_for_new_version(Versioning::Suspended),
            VersionSlot::Null
        );
        let VersionSlot::Fresh(id) = slot_for_new_version(Versioning::Enabled) else {
            panic!("enabled buckets get fresh ids");
        };
        assert_eq!(id.len(), 32);
        assert_eq!(
            plan_delete(None, Versioning::Unversioned),
            DeletePlan::RemoveVersion("null".into())
        );
        assert_eq!(
            plan_delete(None, Versioning::Suspended),
            DeletePlan::AddMarker(VersionSlot::Null)
        );
        assert_eq!(
            plan_delete(Some("v1"), Versioning::Enabled),
            DeletePlan::RemoveVersion("v1".into())
        );
    }

    #[test]
    fn parts_are_checked_in_order() {
        let stored = || HashMap::from([(1, P(A, MIN_PART_SIZE)), (2, P(B, 1))]);
        let ok = choose_parts(
            &[(1, A.into()), (2, B.trim_matches('"').into())],
            &mut stored(),
        );
        assert_eq!(ok.map(|p| p.len()), Ok(2));
        assert_eq!(
            choose_parts::<P>(&[], &mut stored()).err(),
            Some(Invalid::NoParts)
        );
        assert_eq!(
            choose_parts(&[(2, B.into()), (1, A.into())], &mut stored()).err(),
            Some(Invalid::PartOrder)
        );
        assert!(matches!(
            choose_parts(&[(1, B.into())], &mut stored()),
            Err(Invalid::PartMissing { part_number: 1, .. })
        ));
        let small = HashMap::from([(1, P(A, 1)), (2, P(B, 1))]);
        assert!(matches!(
            choose_parts(&[(1, A.into()), (2, B.into())], &mut { small }),
            Err(Invalid::PartTooSmall { part_number: 1, .. })
        ));
        assert_eq!(
            multipart_etag(&[P(A, 1), P(B, 1)])
                .ok()
                .map(|e| e.ends_with("-2\"")),
            Some(true)
        );
    }

    #[test]
    fn part_numbers_run_from_one_to_ten_thousand() {
        assert!(check_part_number(1).is_ok() && check_part_number(10_000).is_ok());
        assert_eq!(check_part_number(0), Err(Invalid::PartNumber(0)));
        assert_eq!(check_part_number(10_001), Err(Invalid::PartNumber(10_001)));
    }
}
