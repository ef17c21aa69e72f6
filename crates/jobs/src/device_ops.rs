//! The device operations — DescribeJobExecution, GetPendingJobExecutions,
//! StartNextPendingJobExecution, UpdateJobExecution — as rules over the engine state, and their
//! iot-jobs-data HTTP face. The MQTT face (`device_api`) calls the same rules.

use crate::engine::{Action, Effects, Engine};
use crate::error::JobsError;
use crate::execution::{ExecutionStatus, JobExecution, minutes_to_ms};
use crate::request::{DescribeRequest, StartNextRequest, UpdateRequest, validate_common};
use crate::wire::{
    DataPlaneExecution, DescribeJobExecutionResponse, ExecutionState,
    GetPendingJobExecutionsResponse, JobExecutionSummary, StartNextPendingJobExecutionResponse,
    UpdateJobExecutionResponse, secs,
};

/// The job id that names a thing's next pending execution.
pub const NEXT: &str = "$next";

/// Applies a step timeout request: `-1` cancels the timer, `m` restarts it at `now + m` min.
fn apply_step_timeout(exec: &mut JobExecution, step_timeout: Option<i64>, now: u64) {
    match step_timeout {
        Some(-1) => {
            exec.step_timeout_in_minutes = None;
            exec.step_deadline = None;
        }
        Some(minutes) => {
            let minutes = u64::try_from(minutes).unwrap_or_default();
            exec.step_timeout_in_minutes = Some(minutes);
            exec.step_deadline = Some(now.saturating_add(minutes_to_ms(minutes)));
        }
        None => {}
    }
}

impl Engine {
    /// The released execution `job_id` (or [`NEXT`]) of `thing` for a describe: `Ok(None)` only
    /// for `$next` with nothing pending.
    pub(crate) fn describe_target(
        &self,
        thing: &str,
        job_id: &str,
        req: &DescribeRequest,
    ) -> Result<Option<&JobExecution>, JobsError> {
        if job_id == NEXT {
            return Ok(self.next_execution(thing));
        }
        let exec = self.released_execution(thing, job_id)?;
        if req
            .execution_number
            .is_some_and(|n| n != exec.execution_number)
        {
            return Err(not_found(thing, job_id));
        }
        if exec.status.is_terminal() {
            return Err(JobsError::TerminalStateReached(format!(
                "job execution {job_id} of {thing} is {}",
                exec.status.as_str()
            )));
        }
        Ok(Some(exec))
    }

    fn released_execution(&self, thing: &str, job_id: &str) -> Result<&JobExecution, JobsError> {
        self.execution(job_id, thing)
            .filter(|e| e.released_at.is_some())
            .ok_or_else(|| not_found(thing, job_id))
    }

    /// StartNextPendingJobExecution: the next pending execution, moved QUEUED→IN_PROGRESS
    /// (with the request's statusDetails and step timer) if it was QUEUED; an IN_PROGRESS one
    /// is returned unchanged. Returns its job id, or `None` when nothing is pending.
    pub(crate) fn start_next(
        &mut self,
        thing: &str,
        req: &StartNextRequest,
        now: u64,
        fx: &mut Effects,
    ) -> Result<Option<String>, JobsError> {
        validate_common(req.status_details.as_ref(), req.step_timeout_in_minutes)?;
        let Some(next) = self.next_execution(thing) else {
            return Ok(None);
        };
        let job_id = next.job_id.clone();
        if next.status == ExecutionStatus::Queued {
            let mut exec = next.clone();
            exec.status = ExecutionStatus::InProgress;
            exec.started_at = Some(now);
            exec.last_updated_at = now;
            exec.version_number += 1;
            if let Some(details) = &req.status_details {
                exec.status_details = details.clone();
            }
            apply_step_timeout(&mut exec, req.step_timeout_in_minutes, now);
            self.put(exec, fx);
        }
        Ok(Some(job_id))
    }

    /// UpdateJobExecution: checks executionNumber, expectedVersion and the transition, then
    /// applies status, statusDetails (replaced when given) and the step timer.
    pub(crate) fn update(
        &mut self,
        thing: &str,
        job_id: &str,
        req: &UpdateRequest,
        now: u64,
        fx: &mut Effects,
    ) -> Result<(), JobsError> {
        let target = req.target_status()?;
        validate_common(req.status_details.as_ref(), req.step_timeout_in_minutes)?;
        let current = self.released_execution(thing, job_id)?;
        if req
            .execution_number
            .is_some_and(|n| n != current.execution_number)
        {
            return Err(not_found(thing, job_id));
        }
        if let Some(expected) = req.expected_version
            && expected != current.version_number
        {
            return Err(JobsError::VersionMismatch {
                expected,
                state: Box::new(ExecutionState::from(current)),
            });
        }
        if !current.status.device_may_move_to(target) {
            return Err(JobsError::InvalidStateTransition {
                message: format!(
                    "job execution {job_id} of {thing} cannot go from {} to {}",
                    current.status.as_str(),
                    target.as_str()
                ),
                state: Some(Box::new(ExecutionState::from(current))),
            });
        }
        let mut exec = current.clone();
        exec.status = target;
        exec.last_updated_at = now;
        exec.version_number += 1;
        if let Some(details) = &req.status_details {
            exec.status_details = details.clone();
        }
        if target == ExecutionStatus::InProgress {
            exec.started_at.get_or_insert(now);
            apply_step_timeout(&mut exec, req.step_timeout_in_minutes, now);
        } else {
            exec.step_deadline = None;
        }
        self.put(exec, fx);
        if target.is_terminal() {
            self.after_terminal(job_id, thing, now, fx);
        }
        Ok(())
    }

    /// Renders an execution for the HTTP plane.
    fn data_plane_execution(
        &self,
        exec: &JobExecution,
        include_document: bool,
        now: u64,
    ) -> DataPlaneExecution {
        let timeout = self
            .jobs
            .get(&exec.job_id)
            .and_then(|e| e.in_progress_timeout());
        DataPlaneExecution {
            job_id: exec.job_id.clone(),
            thing_name: exec.thing_name.clone(),
            status: exec.status,
            status_details: exec.status_details.clone(),
            queued_at: secs(exec.queued_at),
            started_at: exec.started_at.map(secs),
            last_updated_at: secs(exec.last_updated_at),
            approximate_seconds_before_timed_out: exec
                .timeout_deadline(timeout)
                .map(|d| d.saturating_sub(now).div_ceil(1000)),
            version_number: exec.version_number,
            execution_number: exec.execution_number,
            job_document: include_document
                .then(|| self.rendered_document(&exec.job_id, now))
                .flatten()
                .map(|d| d.into_owned()),
        }
    }

    /// iot-jobs-data DescribeJobExecution (`job_id` may be `$next`; the document is included
    /// unless `includeJobDocument` is false). `$next` with nothing pending is
    /// `ResourceNotFound` over HTTP.
    pub fn describe_job_execution(
        &self,
        thing: &str,
        job_id: &str,
        req: &DescribeRequest,
        now: u64,
    ) -> Result<DescribeJobExecutionResponse, JobsError> {
        let exec = self
            .describe_target(thing, job_id, req)?
            .ok_or_else(|| not_found(thing, job_id))?;
        let include = req.include_job_document.unwrap_or(true);
        Ok(DescribeJobExecutionResponse {
            execution: self.data_plane_execution(exec, include, now),
        })
    }

    /// iot-jobs-data GetPendingJobExecutions (also the MQTT `get`).
    pub fn get_pending_job_executions(&self, thing: &str) -> GetPendingJobExecutionsResponse {
        let (in_progress, queued): (Vec<_>, Vec<_>) = self
            .pending_executions(thing)
            .into_iter()
            .partition(|e| e.status == ExecutionStatus::InProgress);
        GetPendingJobExecutionsResponse {
            in_progress_jobs: in_progress
                .into_iter()
                .map(JobExecutionSummary::from)
                .collect(),
            queued_jobs: queued.into_iter().map(JobExecutionSummary::from).collect(),
        }
    }

    /// iot-jobs-data StartNextPendingJobExecution.
    pub fn handle_start_next_pending_job_execution(
        &mut self,
        thing: &str,
        req: &StartNextRequest,
        now: u64,
    ) -> Result<(StartNextPendingJobExecutionResponse, Vec<Action>), JobsError> {
        let mut fx = Effects::default();
        let job_id = self.start_next(thing, req, now, &mut fx)?;
        let execution = job_id
            .and_then(|id| self.execution(&id, thing))
            .map(|e| self.data_plane_execution(e, true, now));
        let response = StartNextPendingJobExecutionResponse { execution };
        Ok((response, self.finish(fx, now)))
    }

    /// iot-jobs-data UpdateJobExecution.
    pub fn handle_update_job_execution(
        &mut self,
        thing: &str,
        job_id: &str,
        req: &UpdateRequest,
        now: u64,
    ) -> Result<(UpdateJobExecutionResponse, Vec<Action>), JobsError> {
        let mut fx = Effects::default();
        self.update(thing, job_id, req, now, &mut fx)?;
        let exec = self.execution(job_id, thing);
        let response = UpdateJobExecutionResponse {
            execution_state: exec
                .filter(|_| req.include_job_execution_state == Some(true))
                .map(ExecutionState::from),
            job_document: (req.include_job_document == Some(true))
                .then(|| self.rendered_document(job_id, now))
                .flatten()
                .map(|d| d.into_owned()),
        };
        Ok((response, self.finish(fx, now)))
    }
}

/// ResourceNotFound for a missing execution.
pub(crate) fn not_found(thing: &str, job_id: &str) -> JobsError {
    JobsError::ResourceNotFound(format!("no job execution {job_id} for thing {thing}"))
}
