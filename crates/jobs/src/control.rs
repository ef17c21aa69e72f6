//! Control-plane views and execution-level operations for the iot API: DescribeJob's `job`
//! shape ([`JobDescription`]), CancelJobExecution and DeleteJobExecution.

use serde::Serialize;

use crate::counts::JobProcessDetails;
use crate::device_ops::not_found;
use crate::engine::{Action, Effects, Engine};
use crate::error::JobsError;
use crate::execution::{ExecutionStatus, StatusDetails};
use crate::model::{
    AbortConfig, JobStatus, PresignedUrlConfig, RetryConfig, RolloutConfig, TargetSelection,
    TimeoutConfig,
};
use crate::request::validate_common;
use crate::wire::ExecutionState;

/// Epoch ms → epoch seconds with a millisecond fraction (iot `timestamp` members).
pub fn timestamp_secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The iot `Job` shape returned by DescribeJob.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDescription {
    /// Job ARN.
    pub job_arn: String,
    /// Job id.
    pub job_id: String,
    /// SNAPSHOT or CONTINUOUS.
    pub target_selection: TargetSelection,
    /// Job status.
    pub status: JobStatus,
    /// Canceled with force.
    pub force_canceled: bool,
    /// Cancel reason code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// Cancel comment (or why abort criteria fired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Targets as given.
    pub targets: Vec<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Presigned URL config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presigned_url_config: Option<PresignedUrlConfig>,
    /// Rollout config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_rollout_config: Option<RolloutConfig>,
    /// Abort config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_config: Option<AbortConfig>,
    /// Seconds (with ms fraction).
    pub created_at: f64,
    /// Seconds (with ms fraction).
    pub last_updated_at: f64,
    /// Seconds (with ms fraction), once COMPLETED or CANCELED.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<f64>,
    /// Counts by status.
    pub job_process_details: JobProcessDetails,
    /// Timeout config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_config: Option<TimeoutConfig>,
    /// Retry config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_executions_retry_config: Option<RetryConfig>,
}

impl Engine {
    /// DescribeJob's `job`.
    pub fn describe_job(&self, job_id: &str) -> Option<JobDescription> {
        let entry = self.jobs.get(job_id)?;
        let job = &entry.job;
        let processing = if entry.next_release().is_some() {
            job.spec.targets.clone()
        } else {
            Vec::new()
        };
        Some(JobDescription {
            job_arn: job.spec.job_arn.clone(),
            job_id: job.spec.job_id.clone(),
            target_selection: job.spec.target_selection,
            status: job.status,
            force_canceled: job.force_canceled,
            reason_code: job.reason_code.clone(),
            comment: job.comment.clone(),
            targets: job.spec.targets.clone(),
            description: job.spec.description.clone(),
            presigned_url_config: job.spec.presigned_url_config.clone(),
            job_executions_rollout_config: job.spec.job_executions_rollout_config.clone(),
            abort_config: job.spec.abort_config.clone(),
            created_at: timestamp_secs(job.created_at),
            last_updated_at: timestamp_secs(job.last_updated_at),
            completed_at: job.completed_at.map(timestamp_secs),
            job_process_details: JobProcessDetails::new(&entry.counts, processing),
            timeout_config: job.spec.timeout_config.clone(),
            job_executions_retry_config: job.spec.job_executions_retry_config.clone(),
        })
    }

    /// CancelJobExecution: QUEUED → CANCELED; IN_PROGRESS only with `force`; terminal →
    /// InvalidStateTransition; a stale `expected_version` → VersionMismatch
    /// (VersionConflictException on the iot face). `status_details` replaces the stored ones.
    pub fn handle_cancel_job_execution(
        &mut self,
        job_id: &str,
        thing: &str,
        force: bool,
        expected_version: Option<u64>,
        status_details: Option<StatusDetails>,
        now: u64,
    ) -> Result<Vec<Action>, JobsError> {
        validate_common(status_details.as_ref(), None)?;
        let current = self
            .execution(job_id, thing)
            .ok_or_else(|| not_found(thing, job_id))?;
        if let Some(expected) = expected_version
            && expected != current.version_number
        {
            return Err(JobsError::VersionMismatch {
                expected,
                state: Box::new(ExecutionState::from(current)),
            });
        }
        let allowed = match current.status {
            ExecutionStatus::Queued => true,
            ExecutionStatus::InProgress => force,
            _ => false,
        };
        if !allowed {
            return Err(JobsError::InvalidStateTransition {
                message: format!(
                    "job execution {job_id} of {thing} is {} and cannot be canceled{}",
                    current.status.as_str(),
                    if current.status == ExecutionStatus::InProgress {
                        " without force"
                    } else {
                        ""
                    }
                ),
                state: Some(Box::new(ExecutionState::from(current))),
            });
        }
        let mut exec = current.clone();
        if let Some(details) = status_details {
            exec.status_details = details;
        }
        exec.status = ExecutionStatus::Canceled;
        exec.step_deadline = None;
        exec.last_updated_at = now;
        exec.version_number += 1;
        let mut fx = Effects::default();
        if let Some(entry) = self.jobs.get_mut(job_id) {
            entry.unreleased.retain(|t| t != thing);
        }
        self.put(exec, &mut fx);
        self.after_terminal(job_id, thing, now, &mut fx);
        Ok(self.finish(fx, now))
    }

    /// DeleteJobExecution: terminal executions, or any with `force`; `execution_number` must
    /// match. The driver deletes the record on [`Action::DeleteExecution`].
    pub fn handle_delete_job_execution(
        &mut self,
        job_id: &str,
        thing: &str,
        execution_number: u64,
        force: bool,
        now: u64,
    ) -> Result<Vec<Action>, JobsError> {
        let current = self
            .execution(job_id, thing)
            .filter(|e| e.execution_number == execution_number)
            .ok_or_else(|| not_found(thing, job_id))?;
        if !current.status.is_terminal() && !force {
            return Err(JobsError::InvalidStateTransition {
                message: format!(
                    "job execution {job_id} of {thing} is {}; delete it with force",
                    current.status.as_str()
                ),
                state: Some(Box::new(ExecutionState::from(current))),
            });
        }
        let mut fx = Effects::default();
        self.remove_execution(job_id, thing, &mut fx);
        fx.deleted_executions
            .push((job_id.to_owned(), thing.to_owned()));
        self.check_completion(job_id, now, &mut fx);
        Ok(self.finish(fx, now))
    }
}
