//! [`JobsHandle`]: the shared [`Engine`], and the one way to change it — [`JobsHandle::apply`]
//! runs engine calls, persists their records, then publishes.
//!
//! `Save*` / `Delete*` actions are written to the [`JobRepo`] in ONE transaction before
//! anything is published; publish actions (`Reply`, `Notify`, `NotifyNext`) then go to the
//! [`Publisher`]. The engine mutex is not held across the commit: a second mutex, taken before
//! the engine is released, keeps commits and publications in engine order while the next engine
//! call already runs (a pipeline of two). Engine inputs follow arrival order: device requests
//! reach the engine through the [`DeviceQueue`] (the driver's request queue), so every other
//! mutation first waits until the device requests queued before it are applied — without
//! holding any lock of its own.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otastream_jobs::engine::{Action, Engine, Presigner};
use otastream_jobs::error::JobsError;
use otastream_store::{JobRepo, StoreError};

use crate::redelivery::Redelivery;
use crate::repository::writes_of;

/// Receives the publish actions of the engine (MQTT replies and notifications). The device
/// gateway implements it through the server's wiring.
pub trait Publisher: Send + Sync {
    /// Publishes `action` (one of `Reply`, `Notify`, `NotifyNext`), after the records it
    /// reports on are durable. Must not block. Returns false when it could not hand the
    /// message over now (the device's queue is full, or it is not connected): the driver offers
    /// a device request's `Reply` again later; notifications are not repeated.
    fn publish(&self, action: &Action) -> bool;
}

/// A publisher that drops everything (no device gateway attached).
pub struct NoDevices;

impl Publisher for NoDevices {
    fn publish(&self, action: &Action) -> bool {
        tracing::debug!(topic = ?action.topic(), "no device gateway attached; publication dropped");
        true
    }
}

/// The queue device requests wait in before they reach the engine.
pub trait DeviceQueue: Send + Sync {
    /// Blocks until every device request queued before this call has been applied (or the
    /// queue has stopped). Never called with a [`JobsHandle`] lock held, nor by the queue's
    /// own applies.
    fn wait_for_earlier(&self);
}

/// Why [`JobsHandle::apply`] failed. Nothing was published; the api maps it to its wire codes.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The engine refused the call (nothing changed).
    #[error("{0}")]
    Refused(#[from] JobsError),
    /// The records could not be written (the engine changed; the store did not).
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The jobs engine shared by the control plane and the device request queue. Cheap to clone.
#[derive(Clone)]
pub struct JobsHandle {
    engine: Arc<Mutex<Engine>>,
    /// Held from the end of an engine call until its records are committed and published.
    commit: Arc<Mutex<()>>,
    repository: Arc<dyn JobRepo>,
    publisher: Arc<dyn Publisher>,
    device_queue: Option<Arc<dyn DeviceQueue>>,
}

impl JobsHandle {
    /// Rebuilds the engine from every job and execution in `repository`; publishes nowhere
    /// until [`JobsHandle::with_publisher`].
    pub fn restore(repository: Arc<dyn JobRepo>) -> Result<Self, StoreError> {
        let snapshot = repository.load_jobs()?;
        let engine = Engine::restore(snapshot.jobs, snapshot.executions, now_ms());
        Ok(Self {
            engine: Arc::new(Mutex::new(engine)),
            commit: Arc::new(Mutex::new(())),
            repository,
            publisher: Arc::new(NoDevices),
            device_queue: None,
        })
    }

    /// Sends publish actions to `publisher` from now on.
    pub fn with_publisher(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.publisher = publisher;
        self
    }

    /// Makes every [`JobsHandle::apply`] of this handle (and its later clones) wait for the
    /// device requests queued in `queue` before it (arrival order).
    pub fn with_device_queue(mut self, queue: Arc<dyn DeviceQueue>) -> Self {
        self.device_queue = Some(queue);
        self
    }

    /// Installs the presigner for `${aws:iot:s3-presigned-url:…}` placeholders.
    pub fn set_presigner(&self, presigner: Box<dyn Presigner>) {
        self.lock().set_presigner(presigner);
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the engine.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock())
    }

    /// Runs a mutating engine call once the device requests queued before it are applied,
    /// persists its records, then publishes. Blocking (repository I/O and the wait).
    /// `f` may make many engine calls (group commit): all their records go into one
    /// transaction and their publications follow in order once it has committed.
    pub fn apply<T>(
        &self,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Action>), JobsError>,
    ) -> Result<T, ApplyError> {
        // Arrival order: device requests queued before this call go first. No lock held here.
        if let Some(queue) = &self.device_queue {
            queue.wait_for_earlier();
        }
        self.apply_now(f, None)
    }

    /// [`JobsHandle::apply`] without waiting: the device queue's own applies (already in
    /// arrival order). With `redelivery`, a `Reply` the publisher cannot take now (or whose
    /// thing already has answers waiting there) is kept there, to be offered again.
    pub(crate) fn apply_now<T>(
        &self,
        f: impl FnOnce(&mut Engine) -> Result<(T, Vec<Action>), JobsError>,
        mut redelivery: Option<&mut Redelivery>,
    ) -> Result<T, ApplyError> {
        let mut engine = self.lock();
        let (out, actions) = f(&mut engine)?;
        // Hand over: commits happen in engine order, without the engine locked during fsync.
        let commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        drop(engine);
        let writes = writes_of(&actions);
        if !writes.is_empty() {
            self.repository.save_jobs(&writes)?;
        }
        drop(writes);
        let now = std::time::Instant::now();
        for action in actions {
            match (&mut redelivery, &action) {
                (Some(kept), Action::Reply { .. }) => self.publish_or_keep(action, kept, now),
                (_, Action::Reply { .. } | Action::Notify { .. } | Action::NotifyNext { .. }) => {
                    self.publisher.publish(&action);
                }
                _ => {}
            }
        }
        drop(commit);
        Ok(out)
    }

    /// Publishes the `Reply` `answer` unless its thing already has answers kept (it queues
    /// behind them) or the publisher cannot take it now; then keeps it in `kept`.
    fn publish_or_keep(&self, answer: Action, kept: &mut Redelivery, now: std::time::Instant) {
        let Action::Reply { thing, .. } = &answer else {
            return;
        };
        if kept.has(thing) || !self.publisher.publish(&answer) {
            let thing = thing.clone();
            kept.push(&thing, answer, now);
        }
    }

    /// Offers `action` to the publisher again (see [`Publisher::publish`]).
    pub(crate) fn publish(&self, action: &Action) -> bool {
        self.publisher.publish(action)
    }

    /// Fires due timeouts and rollout releases forever (spawn it once per engine).
    pub async fn run_timers(self) {
        loop {
            let now = now_ms();
            let due = self.read(Engine::poll_timeout);
            if due.is_some_and(|d| d <= now) {
                let handle = self.clone();
                let run = tokio::task::spawn_blocking(move || {
                    handle.apply(|e| Ok(((), e.handle_timeout(now))))
                });
                if let Ok(Err(e)) = run.await {
                    tracing::error!(error = %e, "jobs timers could not be persisted");
                }
                continue;
            }
            let wait = due.map_or(1000, |d| (d - now).min(1000));
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

/// Milliseconds since the Unix epoch (the engine's clock unit).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
