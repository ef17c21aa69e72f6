//! The driver of the sans-IO jobs engine (`otastream-jobs`) on the control-plane side.
//!
//! [`JobsHandle`] owns the shared [`Engine`] behind a mutex. [`JobsHandle::apply`] runs one
//! engine call and then carries out its actions in order: `Save*` / `Delete*` actions are
//! written to the store in ONE transaction before anything is published, and publish actions
//! (`Reply`, `Notify`, `NotifyNext`) go to the [`ActionSink`] (the device gateway when the
//! server wires one in; dropped otherwise). The engine mutex is not held across the commit: a
//! second mutex, taken before the engine is released, keeps commits and publications in engine
//! order while the next engine call already runs (a pipeline of two). Engine inputs follow
//! arrival order: device requests reach the engine through a queue (the server's jobs bridge),
//! so every other mutation first waits, through the [`DeviceQueue`] installed with
//! [`JobsHandle::with_device_queue`], until the device requests queued before it are applied —
//! without holding any lock of its own. Records are written through the store's
//! [`JobRepo`] (one `save_jobs` batch per apply).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use otastream_jobs::engine::{Action, Engine, Presigner};
use otastream_jobs::error::JobsError;
use otastream_store::{JobRepo, JobWrite, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::util::now_ms;

/// Which API a request came through: errors are encoded differently (AWS-API.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The iot control plane.
    Control,
    /// iot-jobs-data.
    Data,
    /// Device requests (MQTT) applied by the device queue itself, already in arrival order;
    /// errors are encoded like iot-jobs-data.
    Device,
}

/// The queue device requests wait in before they reach the engine.
pub trait DeviceQueue: Send + Sync {
    /// Blocks until every device request queued before this call has been applied (or the
    /// queue has stopped). Never called with a [`JobsHandle`] lock held, nor for
    /// [`Plane::Device`] (the queue's own applies).
    fn wait_for_earlier(&self);
}

/// Receives the publish actions of the engine (MQTT replies and notifications).
pub trait ActionSink: Send + Sync {
    /// Publishes `action` (one of `Reply`, `Notify`, `NotifyNext`).
    fn publish(&self, action: Action);
}

/// A sink that drops publications (no device gateway attached).
struct NoDevices;

impl ActionSink for NoDevices {
    fn publish(&self, action: Action) {
        tracing::debug!(topic = ?action.topic(), "no device gateway attached; publication dropped");
    }
}

/// The jobs engine shared by the control plane and (through the server wiring) the gateway.
#[derive(Clone)]
pub struct JobsHandle {
    engine: Arc<Mutex<Engine>>,
    /// Held from the end of an engine call until its records are committed and published.
    commit: Arc<Mutex<()>>,
    sink: Arc<dyn ActionSink>,
    device_queue: Option<Arc<dyn DeviceQueue>>,
}

impl JobsHandle {
    /// Rebuilds the engine from the persisted jobs and executions.
    pub fn restore(store: &(impl JobRepo + ?Sized)) -> Result<Self, StoreError> {
        let snapshot = store.load_jobs()?;
        let engine = Engine::restore(snapshot.jobs, snapshot.executions, now_ms());
        Ok(Self {
            engine: Arc::new(Mutex::new(engine)),
            commit: Arc::new(Mutex::new(())),
            sink: Arc::new(NoDevices),
            device_queue: None,
        })
    }

    /// Sends publish actions to `sink` from now on.
    pub fn with_sink(mut self, sink: Arc<dyn ActionSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Makes every non-device mutation of this handle (and its later clones) wait for the
    /// device requests queued in `queue` before it (arrival order).
    pub fn with_device_queue(mut self, queue: Arc<dyn DeviceQueue>) -> Self {
        self.device_queue = Some(queue);
        self
    }

    /// Installs the presigner for `${aws:iot:s3-presigned-url:…}` placeholders.
    pub fn set_presigner(&self, presigner: Box<dyn Presigner>) {
        self.lock().set_presigner(presigner);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the engine.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock())
    }

    /// Runs a mutating engine call, persists its records, then publishes. Blocking (store I/O;
    /// outside [`Plane::Device`] also the wait for earlier device requests).
    /// `f` may make many engine calls (group commit): all their records go into one
    /// transaction and their publications follow in order once it has committed.
    pub fn apply<T>(
        &self,
        store: &(impl JobRepo + ?Sized),
        plane: Plane,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Action>), JobsError>,
    ) -> ApiResult<T> {
        // Arrival order: device requests queued before this call go first. No lock held here.
        if let (Some(queue), Plane::Control | Plane::Data) = (&self.device_queue, plane) {
            queue.wait_for_earlier();
        }
        let mut engine = self.lock();
        let (out, actions) = f(&mut engine).map_err(|e| match plane {
            Plane::Control => jobs_error(e),
            Plane::Data | Plane::Device => data_plane_error(e),
        })?;
        // Hand over: commits happen in engine order, without the engine locked during fsync.
        let commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        drop(engine);
        persist(store, &actions)?;
        for action in actions.into_iter().filter(|a| a.topic().is_some()) {
            self.sink.publish(action);
        }
        drop(commit);
        Ok(out)
    }

    /// Fires due timeouts and rollout releases forever (spawn it once per server).
    pub async fn run_timers<S: JobRepo + Clone + 'static>(self, store: S) {
        loop {
            let now = now_ms();
            let due = self.read(Engine::poll_timeout);
            if due.is_some_and(|d| d <= now) {
                let (handle, store) = (self.clone(), store.clone());
                let run = tokio::task::spawn_blocking(move || {
                    handle.apply(&store, Plane::Control, |e| Ok(((), e.handle_timeout(now))))
                });
                if let Ok(Err(e)) = run.await {
                    tracing::error!(error = %e.message, "jobs timers could not be persisted");
                }
                continue;
            }
            let wait = due.map_or(1000, |d| (d - now).min(1000));
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

/// Writes the persistence actions in one transaction (nothing is published before it commits).
fn persist(store: &(impl JobRepo + ?Sized), actions: &[Action]) -> ApiResult<()> {
    let writes: Vec<JobWrite<'_>> = actions
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
        .collect();
    store.save_jobs(&writes)?;
    Ok(())
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
