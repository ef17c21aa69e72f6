//! The control plane's side of the jobs driver (`otastream-jobs-driver`): which API a jobs call
//! came through, and the one place its failures become wire errors ([`ApplyAs::apply_as`]);
//! and [`start_jobs`], the jobs wiring of both binaries over the store's [`JobRepo`].

use otastream_jobs::engine::{Action, Engine};
use otastream_jobs::error::JobsError;
pub use otastream_jobs_driver::JobsHandle;
use std::sync::Arc;

use otastream_jobs_driver::{ApplyError, JobsRuntime, Publisher, QueueLimits, StartError};
use otastream_store::JobRepo;

use crate::error::{ApiError, ApiResult};

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
pub fn start_jobs(
    store: Arc<dyn JobRepo>,
    publisher: Arc<dyn Publisher>,
) -> Result<JobsRuntime, StartError> {
    JobsRuntime::start(store, publisher, QueueLimits::default())
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
