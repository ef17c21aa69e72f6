//! The control plane's side of the jobs driver (`otastream-jobs-driver`): which API a jobs call
//! came through, and the one place its failures become wire errors ([`ApplyAs::apply_as`]);
//! [`start_jobs`], the jobs wiring of both binaries; and [`ResourceJobs`], the store's
//! [`JobRepo`] over today's JSON resources table (until the SQLite store implements it).
//!
//! Records: `job/<jobId>` holds a serialized [`Job`], `job-execution/<jobId>/<thing>` a
//! [`JobExecution`] with the job as parent.

use otastream_jobs::engine::{Action, Engine};
use otastream_jobs::error::JobsError;
pub use otastream_jobs_driver::JobsHandle;
use std::sync::Arc;

use otastream_jobs_driver::{ApplyError, JobsRuntime, Publisher, QueueLimits, StartError};
use otastream_store::{JobRepo, JobWrite, JobsSnapshot, Store, StoreResult};

use crate::error::{ApiError, ApiResult};

/// Resource kind of persisted jobs.
pub const JOB_KIND: &str = "job";
/// Resource kind of persisted executions (id `<jobId>/<thing>`, parent `<jobId>`).
pub const EXECUTION_KIND: &str = "job-execution";

/// Which API a request came through: errors are encoded differently (AWS-API.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The iot control plane.
    Control,
    /// iot-jobs-data.
    Data,
}

impl Plane {
    /// The wire error of a failed [`JobsHandle::apply`] on this plane.
    pub fn error(self, e: ApplyError) -> ApiError {
        match (e, self) {
            (ApplyError::Refused(e), Self::Control) => jobs_error(e),
            (ApplyError::Refused(e), Self::Data) => data_plane_error(e),
            (ApplyError::Store(e), _) => e.into(),
        }
    }
}

/// The jobs engine restored from `store` and started: its handle (ordered behind the device
/// request queue; hand it to [`crate::ApiState::with_jobs`] and spawn its timers) and the device
/// request queue (for the gateway), publishing to `publisher`. The one jobs wiring: `otastream
/// serve` and `otastream-control-plane` both start jobs here.
pub fn start_jobs(store: &Store, publisher: Arc<dyn Publisher>) -> Result<JobsRuntime, StartError> {
    JobsRuntime::start(
        Arc::new(ResourceJobs(store.clone())),
        publisher,
        QueueLimits::default(),
    )
}

/// [`JobsHandle::apply`] with its failures as wire errors.
pub trait ApplyAs {
    /// Runs `f` through the driver (persist, then publish) and maps a failure for `plane`.
    fn apply_as<T>(
        &self,
        plane: Plane,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Action>), JobsError>,
    ) -> ApiResult<T>;
}

impl ApplyAs for JobsHandle {
    fn apply_as<T>(
        &self,
        plane: Plane,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Action>), JobsError>,
    ) -> ApiResult<T> {
        self.apply(f).map_err(|e| plane.error(e))
    }
}

/// The jobs repository over the store's JSON resources (until the store has a typed one).
pub struct ResourceJobs(pub Store);

impl JobRepo for ResourceJobs {
    fn load_jobs(&self) -> StoreResult<JobsSnapshot> {
        let decode = |kind: &str| -> StoreResult<Vec<serde_json::Value>> {
            Ok(self
                .0
                .list_resources(kind, None)?
                .into_iter()
                .map(|(_, v)| v)
                .collect())
        };
        let jobs = decode(JOB_KIND)?
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()?;
        let executions = decode(EXECUTION_KIND)?
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()?;
        Ok(JobsSnapshot { jobs, executions })
    }

    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()> {
        self.0.transaction(|tx| {
            for write in writes {
                match *write {
                    JobWrite::SaveJob(job) => tx.put_resource(
                        JOB_KIND,
                        &job.spec.job_id,
                        None,
                        &serde_json::to_value(job)?,
                    )?,
                    JobWrite::SaveExecution(e) => {
                        let id = format!("{}/{}", e.job_id, e.thing_name);
                        tx.put_resource(
                            EXECUTION_KIND,
                            &id,
                            Some(&e.job_id),
                            &serde_json::to_value(e)?,
                        )?;
                    }
                    JobWrite::DeleteJob { job_id } => {
                        for (id, _) in tx.list_resources(EXECUTION_KIND, Some(job_id))? {
                            tx.delete_resource(EXECUTION_KIND, &id)?;
                        }
                        tx.delete_resource(JOB_KIND, job_id)?;
                    }
                    JobWrite::DeleteExecution { job_id, thing } => {
                        tx.delete_resource(EXECUTION_KIND, &format!("{job_id}/{thing}"))?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// The control-plane wire error of an engine refusal.
pub(crate) fn jobs_error(e: JobsError) -> ApiError {
    let (status, code) = e.control_plane_error();
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    ApiError::new(status, code, e.to_string())
}

/// The iot-jobs-data wire error of an engine refusal.
pub(crate) fn data_plane_error(e: JobsError) -> ApiError {
    let (status, code) = e.data_plane_error();
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    ApiError::new(status, code, e.to_string())
}
