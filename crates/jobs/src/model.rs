//! The persisted job record ([`Job`]) and its configuration shapes.
//!
//! Field names follow the AWS IoT `Job` / `CreateJob` shapes (camelCase). Two deliberate
//! differences from the wire shapes, because these are *stored records*, not responses:
//! times are **epoch milliseconds** (`u64`; responses render seconds), and the job
//! document is kept as the exact JSON text it was created with (see [`JobSpec::document`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Status of a job (AWS `JobStatus`, without `SCHEDULED`: scheduling is not supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Executions are being rolled out or run.
    InProgress,
    /// Canceled by `CancelJob` or by abort criteria.
    Canceled,
    /// SNAPSHOT job whose every execution reached a terminal status.
    Completed,
    /// `DeleteJob` in progress (set by the control plane).
    DeletionInProgress,
}

/// `SNAPSHOT` (complete once every target finished) or `CONTINUOUS` (group joiners get executions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetSelection {
    /// Targets are fixed at creation; the job completes when all executions are terminal.
    #[default]
    Snapshot,
    /// Things added to a target group later get an execution; the job never completes by itself.
    Continuous,
}

/// `jobExecutionsRolloutConfig` / `awsJobExecutionsRolloutConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutConfig {
    /// Constant pace: executions released per minute (1..=1000). Caps an exponential rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_per_minute: Option<u32>,
    /// Exponential pace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exponential_rate: Option<ExponentialRate>,
}

/// `exponentialRate`: start at `baseRatePerMinute`, multiply by `incrementFactor` each time the
/// criteria are met.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExponentialRate {
    /// Releases per minute in the first stage (1..=1000).
    pub base_rate_per_minute: u32,
    /// Rate multiplier per stage (AWS: 1.1..=5).
    pub increment_factor: f64,
    /// When a stage ends.
    pub rate_increase_criteria: RateIncreaseCriteria,
}

/// `rateIncreaseCriteria`: a stage ends when either count (since the stage began) is reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateIncreaseCriteria {
    /// Executions released (notified) during the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_notified_things: Option<u32>,
    /// Executions that SUCCEEDED during the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_succeeded_things: Option<u32>,
}

/// `abortConfig` (`awsJobAbortConfig` spells the list `abortCriteriaList`; both are accepted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortConfig {
    /// The criteria; the first one met cancels the job.
    #[serde(alias = "abortCriteriaList")]
    pub criteria_list: Vec<AbortCriteria>,
}

/// One abort criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortCriteria {
    /// Which terminal statuses count as failures.
    pub failure_type: FailureType,
    /// Always `CANCEL`.
    pub action: AbortAction,
    /// Abort when failures ≥ this percentage of executed things (0..=100).
    pub threshold_percentage: f64,
    /// No abort before this many executions have finished (reached SUCCEEDED, FAILED, REJECTED or
    /// TIMED_OUT).
    pub min_number_of_executed_things: u32,
}

/// `failureType` of an abort criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureType {
    /// FAILED executions.
    Failed,
    /// REJECTED executions.
    Rejected,
    /// TIMED_OUT executions.
    TimedOut,
    /// FAILED + REJECTED + TIMED_OUT.
    All,
}

/// `action` of an abort criterion (AWS knows only `CANCEL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AbortAction {
    /// Cancel the job and its pending executions.
    Cancel,
}

/// `jobExecutionsRetryConfig`: failed or timed-out executions are queued again (execution
/// number + 1) up to `numberOfRetries` times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// 1..=2 criteria.
    pub criteria_list: Vec<RetryCriteria>,
}

/// One retry criterion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryCriteria {
    /// FAILED, TIMED_OUT or ALL (REJECTED is never retried).
    pub failure_type: FailureType,
    /// Retries allowed per thing (0..=10).
    pub number_of_retries: u32,
}

/// `timeoutConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    /// Minutes an execution may stay IN_PROGRESS before it is TIMED_OUT (1..=10080).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress_timeout_in_minutes: Option<u64>,
}

/// `presignedUrlConfig` / `awsJobPresignedUrlConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresignedUrlConfig {
    /// IAM role (stored, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// URL lifetime in seconds (60..=3600, default [`DEFAULT_PRESIGNED_EXPIRY_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_sec: Option<u64>,
}

/// Presigned URL lifetime when the job does not say (AWS default).
pub const DEFAULT_PRESIGNED_EXPIRY_SECS: u64 = 1800;

/// What the creator of a job decides: the `CreateJob` request, validated by
/// `Engine::handle_create_job`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// `arn:aws:iot:<region>:<account>:job/<jobId>` (built by the control plane).
    pub job_arn: String,
    /// 1..=64 chars `[a-zA-Z0-9_-]`.
    pub job_id: String,
    /// Thing ARNs, thing-group ARNs, or bare names (resolved through a `TargetResolver`).
    pub targets: Vec<String>,
    /// The job document: the exact JSON object text, kept byte for byte so that key order and
    /// unescaped `/` reach devices as written (PROTOCOL §2.8 rule 5).
    pub document: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SNAPSHOT (default) or CONTINUOUS.
    #[serde(default)]
    pub target_selection: TargetSelection,
    /// Rollout pacing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<RolloutConfig>,
    /// Abort criteria.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<AbortConfig>,
    /// In-progress timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<TimeoutConfig>,
    /// Retries of failed / timed-out executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<RetryConfig>,
    /// Presigned URL lifetime for `${aws:iot:s3-presigned-url:…}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<PresignedUrlConfig>,
}

/// A job as stored: its [`JobSpec`] plus the state the engine keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// What was requested.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// Current status.
    pub status: JobStatus,
    /// Creation time (epoch ms).
    pub created_at: u64,
    /// Last change (epoch ms).
    pub last_updated_at: u64,
    /// When the job became COMPLETED or CANCELED (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<u64>,
    /// Comment given when canceled (or why abort criteria fired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Reason code given when canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Canceled with `force`.
    #[serde(default)]
    pub force_canceled: bool,
    /// Rollout pacing state (otastream-specific, persisted so a restart keeps the pace).
    #[serde(default)]
    pub rollout_progress: RolloutProgress,
}

/// Where a paced rollout stands. Release `k` of the current stage is due at
/// `stageAnchor + ceil(k · 60000 / rate)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutProgress {
    /// Exponential stage (0 = base rate).
    pub stage: u32,
    /// Time (epoch ms) of the stage's first release slot.
    pub stage_anchor: u64,
    /// Executions released in this stage.
    pub released_in_stage: u64,
    /// Total SUCCEEDED executions when the stage began.
    pub succeeded_at_stage_start: u64,
}

/// A `targets` entry, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `arn:…:thing/<name>`.
    Thing(String),
    /// `arn:…:thinggroup/<name>`.
    Group(String),
    /// A bare name: a group if the resolver knows such a group, else a thing.
    Name(String),
}

impl Target {
    /// Classifies one `targets` entry.
    pub fn parse(target: &str) -> Self {
        if target.starts_with("arn:") {
            if let Some((_, name)) = target.split_once(":thinggroup/") {
                return Self::Group(name.to_owned());
            }
            if let Some((_, name)) = target.split_once(":thing/") {
                return Self::Thing(name.to_owned());
            }
        }
        Self::Name(target.to_owned())
    }

    /// Whether this target names thing group `group`.
    pub fn names_group(&self, group: &str) -> bool {
        matches!(self, Self::Group(g) | Self::Name(g) if g == group)
    }

    /// Whether this target names thing `thing` directly.
    pub fn names_thing(&self, thing: &str) -> bool {
        matches!(self, Self::Thing(t) | Self::Name(t) if t == thing)
    }
}

/// Thing-group membership, supplied by the driver (the engine keeps no registry of things).
pub trait TargetResolver {
    /// The things in group `group` now, or `None` if no such group exists.
    fn group_members(&self, group: &str) -> Option<Vec<String>>;
}

impl TargetResolver for BTreeMap<String, Vec<String>> {
    fn group_members(&self, group: &str) -> Option<Vec<String>> {
        self.get(group).cloned()
    }
}

/// A resolver that knows no groups: every bare name is a thing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGroups;

impl TargetResolver for NoGroups {
    fn group_members(&self, _group: &str) -> Option<Vec<String>> {
        None
    }
}

/// Job id rule: 1..=64 chars of `[a-zA-Z0-9_-]`.
pub fn is_valid_job_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Thing (and thing group) name rule: 1..=128 chars of `[a-zA-Z0-9:_-]`.
pub fn is_valid_thing_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}
