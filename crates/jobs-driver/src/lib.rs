//! # otastream-jobs-driver
//!
//! The driver of the sans-IO jobs engine (`otastream-jobs`): it persists the engine's records
//! before anything is published, fires its timers, and feeds it device requests in arrival
//! order through a fair, bounded queue with group commit. It knows neither the gateway nor the
//! HTTP API: records go to the store's [`JobRepo`] trait (never a concrete backend),
//! publications to a [`Publisher`] (the server's
//! wiring implements it over the device gateway), and the api crate maps [`ApplyError`]s to its
//! wire codes.
//!
//! # Layout
//! - [`handle`]: [`JobsHandle`] — the shared engine and [`JobsHandle::apply`] (engine calls,
//!   one transaction, then publications, in engine order), [`JobsHandle::run_timers`], the
//!   [`Publisher`] and [`DeviceQueue`] seams.
//! - [`requests`]: [`JobsRequests`] — device requests through the queue to one worker thread
//!   (group commit), `RequestThrottled` refusals, the arrival order the control plane waits on.
//! - [`fair_queue`]: [`FairQueue`], the sans-IO per-thing bounded FIFOs taken round-robin.
//! - [`redelivery`]: [`redelivery::Redelivery`], answers a device could not take yet, offered
//!   again in order.
//! - [`repository`]: engine actions as the store's [`JobWrite`]s.
//!
//! # Wiring
//! [`JobsRuntime::start`] restores the engine, starts the request worker and orders the handle
//! behind its queue; the caller spawns [`JobsHandle::run_timers`] and hands
//! [`JobsRuntime::requests`] to the device gateway. Both binaries wire jobs this way.

pub mod fair_queue;
pub mod handle;
pub mod redelivery;
pub mod repository;
pub mod requests;

use std::sync::Arc;

pub use fair_queue::{DeviceRequest, FairQueue, Full};
pub use handle::{ApplyError, DeviceQueue, JobsHandle, NoDevices, Publisher};
pub use otastream_store::{JobRepo, JobWrite, JobsSnapshot};
pub use requests::{JobsRequests, QueueLimits, Refusal};

use otastream_store::StoreError;

/// Why [`JobsRuntime::start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The jobs could not be loaded.
    #[error("loading jobs: {0}")]
    Load(#[from] StoreError),
    /// The request worker thread could not be started.
    #[error("starting the jobs request worker: {0}")]
    Worker(#[from] std::io::Error),
}

/// The engine restored and wired: the handle (ordered behind the device queue) and the queue.
pub struct JobsRuntime {
    /// For the control plane and the timers; its mutations wait for earlier device requests.
    pub handle: JobsHandle,
    /// Device requests in (the gateway's side); dropping the last clone ends the worker.
    pub requests: Arc<JobsRequests>,
}

impl JobsRuntime {
    /// Restores the engine from `repository`, publishing to `publisher`, with its request
    /// worker started.
    pub fn start(
        repository: Arc<dyn JobRepo>,
        publisher: Arc<dyn Publisher>,
        limits: QueueLimits,
    ) -> Result<Self, StartError> {
        let handle = JobsHandle::restore(repository)?.with_publisher(publisher);
        let requests = Arc::new(JobsRequests::start(handle.clone(), limits)?);
        let handle = handle.with_device_queue(requests.device_queue());
        Ok(Self { handle, requests })
    }
}

#[cfg(test)]
mod tests;
