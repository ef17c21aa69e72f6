//! Job lifecycle: creation and target expansion, thing-group membership events, rollout
//! release, abort criteria, retries, SNAPSHOT completion, cancel and delete.

use std::collections::BTreeSet;

use crate::engine::{Action, Effects, Engine, JobEntry};
use crate::error::JobsError;
use crate::execution::{ExecutionStatus, JobExecution};
use crate::model::{
    FailureType, Job, JobSpec, JobStatus, RolloutProgress, Target, TargetResolver, TargetSelection,
    is_valid_job_id, is_valid_thing_name,
};
use crate::rollout::{abort_criterion_met, maybe_advance_stage, validate_abort, validate_rollout};

/// Longest job document (chars), as the CreateJob model allows.
pub const MAX_DOCUMENT_CHARS: usize = 32_768;

/// Checks a CreateJob request (everything but target resolution).
pub fn validate_spec(spec: &JobSpec) -> Result<(), JobsError> {
    let invalid = |m: String| Err(JobsError::InvalidRequest(m));
    if !is_valid_job_id(&spec.job_id) {
        return invalid(format!(
            "jobId {:?} must be 1-64 characters of [a-zA-Z0-9_-]",
            spec.job_id
        ));
    }
    if spec.targets.is_empty() {
        return invalid("targets must name at least one thing or thing group".into());
    }
    if spec.document.chars().count() > MAX_DOCUMENT_CHARS {
        return invalid(format!(
            "document is longer than {MAX_DOCUMENT_CHARS} characters"
        ));
    }
    match serde_json::from_str::<serde_json::Value>(&spec.document) {
        Ok(v) if v.is_object() => {}
        _ => return invalid("document must be a JSON object".into()),
    }
    if let Some(rollout) = &spec.job_executions_rollout_config {
        validate_rollout(rollout).map_err(JobsError::InvalidRequest)?;
    }
    if let Some(abort) = &spec.abort_config {
        validate_abort(abort).map_err(JobsError::InvalidRequest)?;
    }
    if let Some(retry) = &spec.job_executions_retry_config {
        let ok = (1..=2).contains(&retry.criteria_list.len())
            && retry
                .criteria_list
                .iter()
                .all(|c| c.number_of_retries <= 10 && c.failure_type != FailureType::Rejected);
        if !ok {
            return invalid(
                "jobExecutionsRetryConfig needs 1-2 criteria of FAILED, TIMED_OUT or ALL with numberOfRetries 0-10"
                    .into(),
            );
        }
    }
    if let Some(minutes) = spec
        .timeout_config
        .as_ref()
        .and_then(|t| t.in_progress_timeout_in_minutes)
        && !(1..=10_080).contains(&minutes)
    {
        return invalid(format!(
            "inProgressTimeoutInMinutes {minutes} must be 1-10080"
        ));
    }
    if let Some(secs) = spec
        .presigned_url_config
        .as_ref()
        .and_then(|p| p.expires_in_sec)
        && !(60..=3600).contains(&secs)
    {
        return invalid(format!("expiresInSec {secs} must be 60-3600"));
    }
    Ok(())
}

/// Expands targets into thing names.
fn resolve_targets(
    targets: &[Target],
    resolver: &dyn TargetResolver,
) -> Result<BTreeSet<String>, JobsError> {
    let mut things = BTreeSet::new();
    for target in targets {
        match target {
            Target::Thing(name) => {
                things.insert(name.clone());
            }
            Target::Group(group) => {
                let members = resolver.group_members(group).ok_or_else(|| {
                    JobsError::ResourceNotFound(format!("thing group {group} does not exist"))
                })?;
                things.extend(members);
            }
            Target::Name(name) => match resolver.group_members(name) {
                Some(members) => things.extend(members),
                None => {
                    things.insert(name.clone());
                }
            },
        }
    }
    if let Some(bad) = things.iter().find(|t| !is_valid_thing_name(t)) {
        return Err(JobsError::InvalidRequest(format!(
            "target thing name {bad:?} must be 1-128 characters of [a-zA-Z0-9:_-]"
        )));
    }
    Ok(things)
}

impl Engine {
    /// CreateJob: validates, expands targets into QUEUED executions and releases as many as
    /// the rollout allows now.
    pub fn handle_create_job(
        &mut self,
        spec: JobSpec,
        resolver: &dyn TargetResolver,
        now: u64,
    ) -> Result<Vec<Action>, JobsError> {
        validate_spec(&spec)?;
        if self.jobs.contains_key(&spec.job_id) {
            return Err(JobsError::ResourceAlreadyExists(format!(
                "job {} already exists",
                spec.job_id
            )));
        }
        let job_id = spec.job_id.clone();
        let entry = JobEntry::new(Job {
            spec,
            status: JobStatus::InProgress,
            created_at: now,
            last_updated_at: now,
            completed_at: None,
            comment: None,
            reason_code: None,
            force_canceled: false,
            rollout_progress: RolloutProgress {
                stage_anchor: now,
                ..RolloutProgress::default()
            },
        });
        let things = resolve_targets(&entry.targets, resolver)?;
        self.jobs.insert(job_id.clone(), entry);
        let mut fx = Effects::default();
        fx.jobs.insert(job_id.clone());
        for thing in things {
            self.enqueue(&job_id, &thing, 1, now, &mut fx);
        }
        self.release_due(&job_id, now, &mut fx);
        self.check_completion(&job_id, now, &mut fx);
        Ok(self.finish(fx, now))
    }

    /// Creates a held-back QUEUED execution.
    fn enqueue(&mut self, job_id: &str, thing: &str, number: u64, now: u64, fx: &mut Effects) {
        self.put(JobExecution::queued(job_id, thing, number, now), fx);
        if let Some(entry) = self.jobs.get_mut(job_id) {
            entry.unreleased.push_back(thing.to_owned());
        }
    }

    /// A thing joined a thing group: every IN_PROGRESS CONTINUOUS job targeting the group gives
    /// it an execution (a fresh one, numbered +1, if its previous one was REMOVED).
    pub fn handle_thing_added_to_group(
        &mut self,
        thing: &str,
        group: &str,
        now: u64,
    ) -> Vec<Action> {
        let mut fx = Effects::default();
        let job_ids: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, e)| {
                e.job.status == JobStatus::InProgress
                    && e.job.spec.target_selection == TargetSelection::Continuous
                    && e.targets.iter().any(|t| t.names_group(group))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in job_ids {
            let number = match self.execution(&job_id, thing) {
                None => 1,
                Some(e) if e.status == ExecutionStatus::Removed => e.execution_number + 1,
                Some(_) => continue,
            };
            self.enqueue(&job_id, thing, number, now, &mut fx);
            self.release_due(&job_id, now, &mut fx);
        }
        self.finish(fx, now)
    }

    /// A thing left a thing group: its unfinished executions of IN_PROGRESS jobs that target
    /// the group become REMOVED, unless the job still targets the thing directly or through
    /// another group (asked of `resolver`, which must already reflect the removal).
    pub fn handle_thing_removed_from_group(
        &mut self,
        thing: &str,
        group: &str,
        resolver: &dyn TargetResolver,
        now: u64,
    ) -> Vec<Action> {
        let mut fx = Effects::default();
        let still_targeted = |t: &Target| match t {
            Target::Thing(name) => name == thing,
            Target::Group(g) | Target::Name(g) => {
                t.names_thing(thing)
                    || resolver
                        .group_members(g)
                        .is_some_and(|m| m.iter().any(|x| x == thing))
            }
        };
        let job_ids: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, e)| {
                e.job.status == JobStatus::InProgress
                    && e.targets.iter().any(|t| t.names_group(group))
                    && !e.targets.iter().any(still_targeted)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in job_ids {
            if self.set_service_status(&job_id, thing, ExecutionStatus::Removed, now, &mut fx) {
                self.after_terminal(&job_id, thing, now, &mut fx);
            }
        }
        self.finish(fx, now)
    }

    /// Moves a non-terminal execution to a service-set terminal status. Returns whether it did.
    fn set_service_status(
        &mut self,
        job_id: &str,
        thing: &str,
        status: ExecutionStatus,
        now: u64,
        fx: &mut Effects,
    ) -> bool {
        let Some(mut exec) = self.execution(job_id, thing).cloned() else {
            return false;
        };
        if exec.status.is_terminal() {
            return false;
        }
        exec.status = status;
        exec.step_deadline = None;
        exec.last_updated_at = now;
        exec.version_number += 1;
        if let Some(entry) = self.jobs.get_mut(job_id) {
            entry.unreleased.retain(|t| t != thing);
        }
        self.put(exec, fx);
        true
    }

    /// Releases every held-back execution of `job_id` whose rollout slot has come.
    pub(crate) fn release_due(&mut self, job_id: &str, now: u64, fx: &mut Effects) {
        loop {
            let Some(entry) = self.jobs.get_mut(job_id) else {
                return;
            };
            if entry.next_release().is_none_or(|at| at > now) {
                return;
            }
            let Some(thing) = entry.unreleased.pop_front() else {
                return;
            };
            let Some(mut exec) = self.execution(job_id, &thing).cloned() else {
                continue;
            };
            if exec.status != ExecutionStatus::Queued || exec.released_at.is_some() {
                continue;
            }
            exec.released_at = Some(now);
            self.put(exec, fx);
            self.note_rollout_progress(job_id, 1, now, fx);
        }
    }

    /// Counts `released` new releases and advances the exponential stage when due.
    fn note_rollout_progress(&mut self, job_id: &str, released: u64, now: u64, fx: &mut Effects) {
        let Some(entry) = self.jobs.get_mut(job_id) else {
            return;
        };
        let job = &mut entry.job;
        job.rollout_progress.released_in_stage += released;
        let succeeded = entry.counts.get(ExecutionStatus::Succeeded);
        let advanced = maybe_advance_stage(
            job.spec.job_executions_rollout_config.as_ref(),
            &mut job.rollout_progress,
            succeeded,
            now,
        );
        if released > 0 || advanced {
            fx.jobs.insert(job_id.to_owned());
        }
    }

    /// Runs after every terminal transition of `job_id`'s execution on `thing`: abort
    /// criteria, retry, succeeded-count rollout criteria, SNAPSHOT completion.
    pub(crate) fn after_terminal(&mut self, job_id: &str, thing: &str, now: u64, fx: &mut Effects) {
        let Some(entry) = self.jobs.get(job_id) else {
            return;
        };
        if entry.job.status != JobStatus::InProgress {
            return;
        }
        if let Some(c) = abort_criterion_met(entry.job.spec.abort_config.as_ref(), &entry.counts) {
            let comment = format!(
                "aborted: {:?} executions reached {}% of {} executed things",
                c.failure_type,
                c.threshold_percentage,
                entry.counts.executed()
            );
            self.cancel(job_id, true, now, fx);
            if let Some(entry) = self.jobs.get_mut(job_id) {
                entry.job.comment = Some(comment);
            }
            return;
        }
        self.maybe_retry(job_id, thing, now, fx);
        self.note_rollout_progress(job_id, 0, now, fx);
        self.check_completion(job_id, now, fx);
    }

    /// Queues a failed or timed-out execution again (execution number + 1, released at once)
    /// while the job's retry config allows.
    fn maybe_retry(&mut self, job_id: &str, thing: &str, now: u64, fx: &mut Effects) {
        let (Some(entry), Some(exec)) = (self.jobs.get(job_id), self.execution(job_id, thing))
        else {
            return;
        };
        let failure = match exec.status {
            ExecutionStatus::Failed => FailureType::Failed,
            ExecutionStatus::TimedOut => FailureType::TimedOut,
            _ => return,
        };
        let allowed = entry
            .job
            .spec
            .job_executions_retry_config
            .iter()
            .flat_map(|c| &c.criteria_list)
            .filter(|c| c.failure_type == failure || c.failure_type == FailureType::All)
            .map(|c| c.number_of_retries)
            .max()
            .unwrap_or(0);
        if exec.retry_attempt >= allowed {
            return;
        }
        let mut retry = JobExecution::queued(job_id, thing, exec.execution_number + 1, now);
        retry.retry_attempt = exec.retry_attempt + 1;
        retry.released_at = Some(now);
        self.put(retry, fx);
    }

    /// A SNAPSHOT job whose executions are all terminal becomes COMPLETED.
    pub(crate) fn check_completion(&mut self, job_id: &str, now: u64, fx: &mut Effects) {
        let Some(entry) = self.jobs.get_mut(job_id) else {
            return;
        };
        let job = &mut entry.job;
        if job.status == JobStatus::InProgress
            && job.spec.target_selection == TargetSelection::Snapshot
            && entry.counts.pending() == 0
        {
            job.status = JobStatus::Completed;
            job.completed_at = Some(now);
            job.last_updated_at = now;
            fx.jobs.insert(job_id.to_owned());
        }
    }

    /// Cancels the job: QUEUED executions (and IN_PROGRESS ones if `include_in_progress`)
    /// become CANCELED.
    fn cancel(&mut self, job_id: &str, include_in_progress: bool, now: u64, fx: &mut Effects) {
        let Some(entry) = self.jobs.get_mut(job_id) else {
            return;
        };
        entry.job.status = JobStatus::Canceled;
        entry.job.last_updated_at = now;
        entry.job.completed_at.get_or_insert(now);
        entry.unreleased.clear();
        let members: Vec<String> = entry.members.iter().cloned().collect();
        fx.jobs.insert(job_id.to_owned());
        for thing in members {
            let cancel = self.execution(job_id, &thing).is_some_and(|e| {
                e.status == ExecutionStatus::Queued
                    || include_in_progress && e.status == ExecutionStatus::InProgress
            });
            if cancel {
                self.set_service_status(job_id, &thing, ExecutionStatus::Canceled, now, fx);
            }
        }
    }

    fn job_entry(&self, job_id: &str) -> Result<&JobEntry, JobsError> {
        self.jobs
            .get(job_id)
            .ok_or_else(|| JobsError::ResourceNotFound(format!("job {job_id} does not exist")))
    }

    /// CancelJob: QUEUED executions become CANCELED; with `force`, IN_PROGRESS ones too (a
    /// CANCELED job may be canceled again with `force`). COMPLETED jobs cannot be canceled.
    pub fn handle_cancel_job(
        &mut self,
        job_id: &str,
        force: bool,
        reason_code: Option<String>,
        comment: Option<String>,
        now: u64,
    ) -> Result<Vec<Action>, JobsError> {
        let entry = self.job_entry(job_id)?;
        match entry.job.status {
            JobStatus::InProgress => {}
            JobStatus::Canceled if force => {}
            status => {
                return Err(JobsError::InvalidRequest(format!(
                    "job {job_id} is {status:?} and cannot be canceled"
                )));
            }
        }
        let mut fx = Effects::default();
        self.cancel(job_id, force, now, &mut fx);
        if let Some(entry) = self.jobs.get_mut(job_id) {
            let job = &mut entry.job;
            job.force_canceled |= force;
            job.reason_code = reason_code.or(job.reason_code.take());
            job.comment = comment.or(job.comment.take());
        }
        Ok(self.finish(fx, now))
    }

    /// DeleteJob: only COMPLETED/CANCELED jobs unless `force`. Devices with a pending
    /// execution of the job are notified of their new next job.
    pub fn handle_delete_job(
        &mut self,
        job_id: &str,
        force: bool,
        now: u64,
    ) -> Result<Vec<Action>, JobsError> {
        let entry = self.job_entry(job_id)?;
        if entry.job.status == JobStatus::InProgress && !force {
            return Err(JobsError::InvalidStateTransition {
                message: format!("job {job_id} is IN_PROGRESS; delete it with force"),
                state: None,
            });
        }
        let members: Vec<String> = entry.members.iter().cloned().collect();
        let mut fx = Effects::default();
        for thing in &members {
            self.remove_execution(job_id, thing, &mut fx);
        }
        self.jobs.remove(job_id);
        fx.deleted_jobs.push(job_id.to_owned());
        Ok(self.finish(fx, now))
    }
}
