//! Response shapes of both device faces, rendered from the stored records.
//!
//! * MQTT (PROTOCOL §2.4): timestamps in **seconds**, `jobDocument` embedded as an object (the
//!   stored text, byte for byte), `thingName` omitted, empty `statusDetails` omitted,
//!   `startedAt` omitted while QUEUED, key order as captured from AWS. Client tokens are the raw
//!   JSON text the device sent.
//! * iot-jobs-data HTTP (public types below): `thingName` present, `jobDocument` a JSON string,
//!   `approximateSecondsBeforeTimedOut` when a timer runs.
//!
//! Struct field order is the serialized key order.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::execution::{ExecutionStatus, JobExecution, StatusDetails};

/// Epoch ms → whole epoch seconds (the unit of every jobs timestamp on the wire).
pub fn secs(ms: u64) -> u64 {
    ms / 1000
}

/// Serializes a wire shape. These shapes hold only strings, integers and string maps.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("invariant: jobs wire shapes always serialize")
}

/// `JobExecutionState`: returned by update/accepted and in rejections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionState {
    /// Current status.
    pub status: ExecutionStatus,
    /// Current statusDetails (omitted when empty).
    #[serde(skip_serializing_if = "StatusDetails::is_empty")]
    pub status_details: StatusDetails,
    /// Current version.
    pub version_number: u64,
}

impl From<&JobExecution> for ExecutionState {
    fn from(exec: &JobExecution) -> Self {
        Self {
            status: exec.status,
            status_details: exec.status_details.clone(),
            version_number: exec.version_number,
        }
    }
}

/// `JobExecutionSummary` (same keys on MQTT and HTTP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecutionSummary {
    /// The job.
    pub job_id: String,
    /// Seconds.
    pub queued_at: u64,
    /// Seconds; absent while QUEUED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Seconds.
    pub last_updated_at: u64,
    /// Version.
    pub version_number: u64,
    /// Execution number.
    pub execution_number: u64,
}

impl From<&JobExecution> for JobExecutionSummary {
    fn from(exec: &JobExecution) -> Self {
        Self {
            job_id: exec.job_id.clone(),
            queued_at: secs(exec.queued_at),
            started_at: exec.started_at.map(secs),
            last_updated_at: secs(exec.last_updated_at),
            version_number: exec.version_number,
            execution_number: exec.execution_number,
        }
    }
}

/// iot-jobs-data `JobExecution`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlaneExecution {
    /// The job.
    pub job_id: String,
    /// The thing.
    pub thing_name: String,
    /// Status.
    pub status: ExecutionStatus,
    /// statusDetails (omitted when empty).
    #[serde(skip_serializing_if = "StatusDetails::is_empty")]
    pub status_details: StatusDetails,
    /// Seconds.
    pub queued_at: u64,
    /// Seconds; absent while QUEUED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Seconds.
    pub last_updated_at: u64,
    /// Seconds until a step or in-progress timer fires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_seconds_before_timed_out: Option<u64>,
    /// Version.
    pub version_number: u64,
    /// Execution number.
    pub execution_number: u64,
    /// The job document as a JSON string (when requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_document: Option<String>,
}

/// iot-jobs-data DescribeJobExecution response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DescribeJobExecutionResponse {
    /// The execution.
    pub execution: DataPlaneExecution,
}

/// iot-jobs-data GetPendingJobExecutions response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPendingJobExecutionsResponse {
    /// IN_PROGRESS executions, next first.
    pub in_progress_jobs: Vec<JobExecutionSummary>,
    /// QUEUED executions, oldest first.
    pub queued_jobs: Vec<JobExecutionSummary>,
}

/// iot-jobs-data StartNextPendingJobExecution response (`execution` absent when nothing is
/// pending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StartNextPendingJobExecutionResponse {
    /// The started (or already running) execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<DataPlaneExecution>,
}

/// iot-jobs-data UpdateJobExecution response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobExecutionResponse {
    /// When `includeJobExecutionState` was true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_state: Option<ExecutionState>,
    /// When `includeJobDocument` was true: the document as a JSON string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_document: Option<String>,
}

// ===== MQTT shapes (crate-private; rendered to bytes by device_api) =====

/// The MQTT `execution` object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MqttExecution<'a> {
    pub(crate) job_id: &'a str,
    pub(crate) status: ExecutionStatus,
    #[serde(skip_serializing_if = "StatusDetails::is_empty")]
    pub(crate) status_details: &'a StatusDetails,
    pub(crate) queued_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) started_at: Option<u64>,
    pub(crate) last_updated_at: u64,
    pub(crate) version_number: u64,
    pub(crate) execution_number: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job_document: Option<&'a RawValue>,
}

impl<'a> MqttExecution<'a> {
    pub(crate) fn new(exec: &'a JobExecution, job_document: Option<&'a RawValue>) -> Self {
        Self {
            job_id: &exec.job_id,
            status: exec.status,
            status_details: &exec.status_details,
            queued_at: secs(exec.queued_at),
            started_at: exec.started_at.map(secs),
            last_updated_at: secs(exec.last_updated_at),
            version_number: exec.version_number,
            execution_number: exec.execution_number,
            job_document,
        }
    }
}

/// `get/accepted`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PendingReply<'a> {
    pub(crate) in_progress_jobs: Vec<JobExecutionSummary>,
    pub(crate) queued_jobs: Vec<JobExecutionSummary>,
    pub(crate) timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_token: Option<&'a RawValue>,
}

/// `start-next/accepted` and `<jobId>/get/accepted`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExecutionReply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_token: Option<&'a RawValue>,
    pub(crate) timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) execution: Option<MqttExecution<'a>>,
}

/// `<jobId>/update/accepted`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateReply<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) execution_state: Option<ExecutionState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job_document: Option<&'a RawValue>,
    pub(crate) timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_token: Option<&'a RawValue>,
}

/// Any `…/rejected`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RejectedReply<'a> {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_token: Option<&'a RawValue>,
    pub(crate) timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) execution_state: Option<&'a ExecutionState>,
}

/// `notify-next`.
#[derive(Serialize)]
pub(crate) struct NotifyNextMessage<'a> {
    pub(crate) timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) execution: Option<MqttExecution<'a>>,
}

/// `notify`: pending executions keyed by status.
#[derive(Serialize)]
pub(crate) struct NotifyMessage {
    pub(crate) jobs: NotifyJobs,
    pub(crate) timestamp: u64,
}

/// The `jobs` map of `notify` (empty lists omitted).
#[derive(Serialize)]
pub(crate) struct NotifyJobs {
    #[serde(rename = "QUEUED", skip_serializing_if = "Vec::is_empty")]
    pub(crate) queued: Vec<JobExecutionSummary>,
    #[serde(rename = "IN_PROGRESS", skip_serializing_if = "Vec::is_empty")]
    pub(crate) in_progress: Vec<JobExecutionSummary>,
}
