//! Server-side checks botocore does not make (it checks only `min`): lengths, patterns, enums and
//! numeric ranges of AWS-API.md §7.2. Each failure is an [`ApiError`] naming the member.

use crate::error::{ApiError, ApiResult};

/// `streamId`, `otaUpdateId`, `jobId`: `[a-zA-Z0-9_-]+`, 1..=max.
pub(crate) fn resource_id(member: &str, value: &str, max: usize) -> ApiResult<()> {
    pattern(
        member,
        value,
        1,
        max,
        |c| c.is_ascii_alphanumeric() || c == '_' || c == '-',
        "[a-zA-Z0-9_-]+",
    )
}

/// `thingName`, `thingGroupName`: `[a-zA-Z0-9:_-]+`, 1..=128.
pub(crate) fn thing_name(member: &str, value: &str) -> ApiResult<()> {
    pattern(
        member,
        value,
        1,
        128,
        |c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'),
        "[a-zA-Z0-9:_-]+",
    )
}

/// signer `profileName`: `[a-zA-Z0-9_]{2,64}` (no hyphen). Signer reports `ValidationException`.
pub(crate) fn profile_name(value: &str) -> ApiResult<()> {
    pattern(
        "profileName",
        value,
        2,
        64,
        |c| c.is_ascii_alphanumeric() || c == '_',
        "^[a-zA-Z0-9_]{2,}",
    )
    .map_err(|e| ApiError::validation(e.message))
}

fn pattern(
    member: &str,
    value: &str,
    min: usize,
    max: usize,
    ok: impl Fn(char) -> bool,
    shown: &str,
) -> ApiResult<()> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(ApiError::invalid(format!(
            "{member} must be {min} to {max} characters long"
        )));
    }
    if !value.chars().all(ok) {
        return Err(ApiError::invalid(format!(
            "{member} '{value}' does not match the pattern {shown}"
        )));
    }
    Ok(())
}

/// Descriptions: at most 2028 characters, no control characters.
pub(crate) fn description(value: Option<&str>) -> ApiResult<()> {
    let Some(value) = value else { return Ok(()) };
    if value.chars().count() > 2028 {
        return Err(ApiError::invalid(
            "description must be at most 2028 characters long",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description must not contain control characters",
        ));
    }
    Ok(())
}

/// `roleArn`: 20..=2048 characters.
pub(crate) fn role_arn(value: Option<&str>) -> ApiResult<()> {
    match value {
        Some(v) if !(20..=2048).contains(&v.chars().count()) => Err(ApiError::invalid(
            "roleArn must be 20 to 2048 characters long",
        )),
        _ => Ok(()),
    }
}

/// An enum member: one of `allowed`.
pub(crate) fn one_of(member: &str, value: &str, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{member} '{value}' must be one of {}",
            allowed.join(", ")
        )))
    }
}

/// A numeric member within `min..=max`.
pub(crate) fn in_range(member: &str, value: i64, min: i64, max: i64) -> ApiResult<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{member} {value} must be between {min} and {max}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_model_patterns() {
        assert!(resource_id("streamId", "fw_v2-1", 128).is_ok());
        assert!(resource_id("streamId", "", 128).is_err());
        assert!(resource_id("streamId", "a:b", 128).is_err());
        assert!(resource_id("jobId", &"a".repeat(65), 64).is_err());
        assert!(thing_name("thingName", "dev:1").is_ok());
        assert!(thing_name("thingName", "dev/1").is_err());
    }

    #[test]
    fn profile_names_have_no_hyphen_and_are_validation_errors() {
        assert!(profile_name("ota_profile1").is_ok());
        let err = profile_name("ota-profile").expect_err("hyphen");
        assert_eq!(err.code, "ValidationException");
        assert!(profile_name("a").is_err());
    }

    #[test]
    fn descriptions_roles_enums_and_ranges() {
        assert!(description(Some("ok text")).is_ok());
        assert!(description(Some("bad\u{7}")).is_err());
        assert!(description(Some(&"x".repeat(2029))).is_err());
        assert!(role_arn(Some("arn:aws:iam::1:role/r")).is_ok());
        assert!(role_arn(Some("short")).is_err());
        assert!(one_of("protocols", "MQTT", &["MQTT", "HTTP"]).is_ok());
        assert!(one_of("protocols", "COAP", &["MQTT", "HTTP"]).is_err());
        assert!(in_range("fileId", 300, 0, 255).is_err());
    }
}
