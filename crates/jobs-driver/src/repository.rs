//! [`writes_of`]: the persistence actions of an engine call as writes of the store's
//! [`JobRepo`](otastream_store::JobRepo) (the driver's only storage seam).

use otastream_jobs::Action;
use otastream_store::JobWrite;

/// The persistence actions among `actions`, in order, as repository writes.
pub fn writes_of(actions: &[Action]) -> Vec<JobWrite<'_>> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SaveJob(job) => Some(JobWrite::SaveJob(job)),
            Action::SaveExecution(e) => Some(JobWrite::SaveExecution(e)),
            Action::DeleteJob { job_id } => Some(JobWrite::DeleteJob { job_id }),
            Action::DeleteExecution { job_id, thing } => {
                Some(JobWrite::DeleteExecution { job_id, thing })
            }
            _ => None,
        })
        .collect()
}
