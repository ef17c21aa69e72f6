//! Per-job execution counts by status, kept up to date by the engine, and their control-plane
//! rendering [`JobProcessDetails`] (DescribeJob).

use serde::Serialize;

use crate::execution::ExecutionStatus;

/// How many of a job's executions are in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusCounts {
    counts: [u64; ExecutionStatus::ALL.len()],
}

impl StatusCounts {
    fn index(status: ExecutionStatus) -> usize {
        ExecutionStatus::ALL
            .iter()
            .position(|s| *s == status)
            .unwrap_or_default()
    }

    /// Executions in `status`.
    pub fn get(&self, status: ExecutionStatus) -> u64 {
        self.counts[Self::index(status)]
    }

    pub(crate) fn add(&mut self, status: ExecutionStatus) {
        self.counts[Self::index(status)] += 1;
    }

    pub(crate) fn remove(&mut self, status: ExecutionStatus) {
        let slot = &mut self.counts[Self::index(status)];
        *slot = slot.saturating_sub(1);
    }

    /// QUEUED + IN_PROGRESS.
    pub fn pending(&self) -> u64 {
        self.get(ExecutionStatus::Queued) + self.get(ExecutionStatus::InProgress)
    }

    /// Executions that ran to an outcome: SUCCEEDED, FAILED, REJECTED or TIMED_OUT (the
    /// "executed things" of abort criteria).
    pub fn executed(&self) -> u64 {
        [
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Rejected,
            ExecutionStatus::TimedOut,
        ]
        .into_iter()
        .map(|s| self.get(s))
        .sum()
    }

    /// All executions.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// `jobProcessDetails` of DescribeJob.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProcessDetails {
    /// The job's targets while executions are still held back by the rollout pace.
    pub processing_targets: Vec<String>,
    /// CANCELED.
    pub number_of_canceled_things: u64,
    /// SUCCEEDED.
    pub number_of_succeeded_things: u64,
    /// FAILED.
    pub number_of_failed_things: u64,
    /// REJECTED.
    pub number_of_rejected_things: u64,
    /// QUEUED.
    pub number_of_queued_things: u64,
    /// IN_PROGRESS.
    pub number_of_in_progress_things: u64,
    /// REMOVED.
    pub number_of_removed_things: u64,
    /// TIMED_OUT.
    pub number_of_timed_out_things: u64,
}

impl JobProcessDetails {
    /// Renders counts (plus the targets still being rolled out).
    pub fn new(counts: &StatusCounts, processing_targets: Vec<String>) -> Self {
        use ExecutionStatus as S;
        Self {
            processing_targets,
            number_of_canceled_things: counts.get(S::Canceled),
            number_of_succeeded_things: counts.get(S::Succeeded),
            number_of_failed_things: counts.get(S::Failed),
            number_of_rejected_things: counts.get(S::Rejected),
            number_of_queued_things: counts.get(S::Queued),
            number_of_in_progress_things: counts.get(S::InProgress),
            number_of_removed_things: counts.get(S::Removed),
            number_of_timed_out_things: counts.get(S::TimedOut),
        }
    }
}
