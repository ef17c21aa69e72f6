//! Device request bodies, shared by the MQTT Jobs API and the iot-jobs-data HTTP plane so both
//! follow the same rules: [`UpdateRequest`], [`StartNextRequest`], [`DescribeRequest`].
//!
//! Numbers may arrive as JSON numbers or as quoted digits (the AWS Jobs C library sends
//! `"expectedVersion":"3"`). Unknown fields are ignored.

use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::JobsError;
use crate::execution::{ExecutionStatus, StatusDetails, validate_status_details};

/// Largest `stepTimeoutInMinutes` (7 days).
pub const MAX_STEP_TIMEOUT_MINUTES: i64 = 10_080;

/// UpdateJobExecution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRequest {
    /// New status (required).
    #[serde(default)]
    pub status: Option<String>,
    /// Replaces the stored statusDetails when present.
    #[serde(default)]
    pub status_details: Option<StatusDetails>,
    /// Must equal the current versionNumber when present.
    #[serde(default, deserialize_with = "number_or_string")]
    pub expected_version: Option<u64>,
    /// Must equal the current executionNumber when present.
    #[serde(default, deserialize_with = "number_or_string")]
    pub execution_number: Option<u64>,
    /// Return `executionState` in the reply (default false).
    #[serde(default)]
    pub include_job_execution_state: Option<bool>,
    /// Return `jobDocument` in the reply (default false).
    #[serde(default)]
    pub include_job_document: Option<bool>,
    /// Starts/resets the step timer (1..=10080), or `-1` to cancel it.
    #[serde(default, deserialize_with = "number_or_string")]
    pub step_timeout_in_minutes: Option<i64>,
}

/// StartNextPendingJobExecution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartNextRequest {
    /// statusDetails to store when a QUEUED execution is started.
    #[serde(default)]
    pub status_details: Option<StatusDetails>,
    /// Step timer to start with it.
    #[serde(default, deserialize_with = "number_or_string")]
    pub step_timeout_in_minutes: Option<i64>,
}

/// DescribeJobExecution (`<jobId>/get`, `$next/get`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRequest {
    /// Must match the execution's number when present.
    #[serde(default, deserialize_with = "number_or_string")]
    pub execution_number: Option<u64>,
    /// Include the job document (default **true**).
    #[serde(default)]
    pub include_job_document: Option<bool>,
}

/// Parses a request body; an empty (or all-whitespace) body is `{}`.
/// Not JSON → `InvalidJson`; JSON of the wrong shape → `InvalidRequest`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, JobsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|e| JobsError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(JobsError::InvalidJson(
            "the payload must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| JobsError::InvalidRequest(e.to_string()))
}

impl UpdateRequest {
    /// The requested status, validated as a known status name.
    pub fn target_status(&self) -> Result<ExecutionStatus, JobsError> {
        let text = self
            .status
            .as_deref()
            .ok_or_else(|| JobsError::InvalidRequest("status is required".into()))?;
        ExecutionStatus::parse(text)
            .ok_or_else(|| JobsError::InvalidRequest(format!("unknown status {text:?}")))
    }
}

/// Validates optional statusDetails and a step timeout, as every mutating request must.
pub(crate) fn validate_common(
    details: Option<&StatusDetails>,
    step_timeout: Option<i64>,
) -> Result<(), JobsError> {
    if let Some(details) = details {
        validate_status_details(details).map_err(JobsError::InvalidRequest)?;
    }
    match step_timeout {
        None | Some(-1) => Ok(()),
        Some(m) if (1..=MAX_STEP_TIMEOUT_MINUTES).contains(&m) => Ok(()),
        Some(m) => Err(JobsError::InvalidRequest(format!(
            "stepTimeoutInMinutes {m} must be -1 or 1-{MAX_STEP_TIMEOUT_MINUTES}"
        ))),
    }
}

/// Accepts `3`, `"3"` or `null` for an integer field.
fn number_or_string<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    let text = match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(D::Error::custom(format!(
                "expected an integer, found {other}"
            )));
        }
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| D::Error::custom(format!("expected an integer, found {text:?}")))
}
