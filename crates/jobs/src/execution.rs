//! The persisted [`JobExecution`] record, its [`ExecutionStatus`] and the device-legal
//! transitions (PROTOCOL §2.5).
//!
//! Like [`crate::Job`], times here are epoch **milliseconds**; the wire renderers convert.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `statusDetails`: up to [`MAX_STATUS_DETAILS`] string pairs, replaced (not merged) on update.
pub type StatusDetails = BTreeMap<String, String>;

/// Most `statusDetails` pairs an execution may carry.
pub const MAX_STATUS_DETAILS: usize = 10;
/// Longest `statusDetails` key (chars).
pub const MAX_DETAILS_KEY_CHARS: usize = 128;
/// Longest `statusDetails` value (chars).
pub const MAX_DETAILS_VALUE_CHARS: usize = 1024;

/// Execution status (`JobExecutionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Created, waiting for the device.
    Queued,
    /// The device has started it.
    InProgress,
    /// Device reported success (terminal).
    Succeeded,
    /// Device reported failure (terminal).
    Failed,
    /// A step or in-progress timer expired (terminal).
    TimedOut,
    /// Device refused it while QUEUED (terminal).
    Rejected,
    /// The thing left the target group (terminal).
    Removed,
    /// The job or execution was canceled (terminal).
    Canceled,
}

impl ExecutionStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::InProgress,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Rejected,
        Self::Removed,
        Self::Canceled,
    ];

    /// The wire spelling, e.g. `"IN_PROGRESS"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Rejected => "REJECTED",
            Self::Removed => "REMOVED",
            Self::Canceled => "CANCELED",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED and CANCELED are terminal.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::InProgress)
    }

    /// Whether a device (UpdateJobExecution) may move an execution from `self` to `to`:
    /// QUEUED→IN_PROGRESS|REJECTED|FAILED|SUCCEEDED, IN_PROGRESS→IN_PROGRESS|SUCCEEDED|FAILED.
    /// Everything else — including anything out of a terminal status, IN_PROGRESS→REJECTED and
    /// the service-only statuses — is an `InvalidStateTransition`.
    pub fn device_may_move_to(self, to: Self) -> bool {
        use ExecutionStatus::{Failed, InProgress, Queued, Rejected, Succeeded};
        matches!(
            (self, to),
            (Queued, InProgress | Rejected | Failed | Succeeded)
                | (InProgress, InProgress | Succeeded | Failed)
        )
    }
}

/// One thing's execution of one job, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobExecution {
    /// The job.
    pub job_id: String,
    /// The thing running it.
    pub thing_name: String,
    /// Current status.
    pub status: ExecutionStatus,
    /// Last statusDetails a device sent (persisted, returned on every later get/notify).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status_details: StatusDetails,
    /// Creation time (epoch ms).
    pub queued_at: u64,
    /// When it went IN_PROGRESS (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Last change (epoch ms).
    pub last_updated_at: u64,
    /// Starts at 1; +1 on every accepted update.
    pub version_number: u64,
    /// Identifies this execution of this job on this thing (1, then +1 when re-created).
    pub execution_number: u64,
    /// How many times this thing's execution of the job was retried (retry config).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_attempt: u32,
    /// Step timeout last set by the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_in_minutes: Option<u64>,
    /// When the step timer expires (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_deadline: Option<u64>,
    /// When the rollout released it to the device (otastream-specific; `None` = held back by
    /// the rollout pace and invisible to the device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<u64>,
}

impl JobExecution {
    /// A fresh QUEUED execution (not yet released).
    pub fn queued(job_id: &str, thing: &str, execution_number: u64, now: u64) -> Self {
        Self {
            job_id: job_id.to_owned(),
            thing_name: thing.to_owned(),
            status: ExecutionStatus::Queued,
            status_details: StatusDetails::new(),
            queued_at: now,
            started_at: None,
            last_updated_at: now,
            version_number: 1,
            execution_number,
            retry_attempt: 0,
            step_timeout_in_minutes: None,
            step_deadline: None,
            released_at: None,
        }
    }

    /// When this execution times out, given the job's in-progress timeout: the earlier of the
    /// step deadline and `startedAt + inProgressTimeoutInMinutes`; only while IN_PROGRESS.
    pub fn timeout_deadline(&self, in_progress_timeout_minutes: Option<u64>) -> Option<u64> {
        if self.status != ExecutionStatus::InProgress {
            return None;
        }
        let in_progress = match (self.started_at, in_progress_timeout_minutes) {
            (Some(started), Some(minutes)) => Some(started.saturating_add(minutes_to_ms(minutes))),
            _ => None,
        };
        match (in_progress, self.step_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Visible to the device: released and not terminal.
    pub fn is_pending(&self) -> bool {
        self.released_at.is_some() && !self.status.is_terminal()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Minutes → milliseconds, saturating.
pub(crate) fn minutes_to_ms(minutes: u64) -> u64 {
    minutes.saturating_mul(60_000)
}

/// Checks `statusDetails` against the service limits: ≤ 10 pairs, keys 1..=128 chars of
/// `[a-zA-Z0-9:_-]`, values 1..=1024 chars without control characters.
pub fn validate_status_details(details: &StatusDetails) -> Result<(), String> {
    if details.len() > MAX_STATUS_DETAILS {
        return Err(format!(
            "statusDetails has {} entries; at most {MAX_STATUS_DETAILS} are allowed",
            details.len()
        ));
    }
    for (key, value) in details {
        let key_ok = (1..=MAX_DETAILS_KEY_CHARS).contains(&key.chars().count())
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
        if !key_ok {
            return Err(format!(
                "statusDetails key {key:?} must be 1-{MAX_DETAILS_KEY_CHARS} characters of [a-zA-Z0-9:_-]"
            ));
        }
        let value_ok = (1..=MAX_DETAILS_VALUE_CHARS).contains(&value.chars().count())
            && !value.chars().any(char::is_control);
        if !value_ok {
            return Err(format!(
                "statusDetails value for {key:?} must be 1-{MAX_DETAILS_VALUE_CHARS} characters without control characters"
            ));
        }
    }
    Ok(())
}
