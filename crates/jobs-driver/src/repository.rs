//! [`JobsRepository`]: where the driver keeps jobs and executions, and [`writes_of`], the
//! persistence actions of an engine call as repository writes.

use otastream_jobs::{Action, Job, JobExecution};
use otastream_store::StoreError;

/// One write of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobWrite<'a> {
    /// Insert or replace this job.
    Job(&'a Job),
    /// Insert or replace this execution (keyed by job id and thing name).
    Execution(&'a JobExecution),
    /// Delete the job and all its executions.
    DeleteJob(&'a str),
    /// Delete one execution.
    DeleteExecution {
        /// The job.
        job_id: &'a str,
        /// The thing.
        thing: &'a str,
    },
}

/// Durable storage of jobs and executions, synchronous (the driver calls it from a blocking
/// context: its worker thread or `spawn_blocking`).
pub trait JobsRepository: Send + Sync {
    /// Every job and every execution, to rebuild the engine at start-up.
    fn load(&self) -> Result<(Vec<Job>, Vec<JobExecution>), StoreError>;

    /// Applies `writes` in order in ONE transaction: all of them are durable when this returns
    /// `Ok`, none when it returns `Err`.
    fn save(&self, writes: &[JobWrite<'_>]) -> Result<(), StoreError>;
}

/// The persistence actions among `actions`, in order, as repository writes.
pub fn writes_of(actions: &[Action]) -> Vec<JobWrite<'_>> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SaveJob(job) => Some(JobWrite::Job(job)),
            Action::SaveExecution(e) => Some(JobWrite::Execution(e)),
            Action::DeleteJob { job_id } => Some(JobWrite::DeleteJob(job_id)),
            Action::DeleteExecution { job_id, thing } => {
                Some(JobWrite::DeleteExecution { job_id, thing })
            }
            _ => None,
        })
        .collect()
}
