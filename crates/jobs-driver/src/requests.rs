//! [`JobsRequests`]: device requests in, through the [`FairQueue`], to one worker thread that
//! applies them in batches (group commit); and the [`DeviceQueue`] that keeps every other engine
//! mutation behind the device requests that arrived before it.
//!
//! - **Group commit**: the worker takes up to [`QueueLimits::batch`] waiting requests, runs each
//!   through the engine (one engine call each, one clock reading for the batch), writes all
//!   their records in one repository transaction, and only then publishes every answer — one
//!   fsync for the batch instead of one per request, so thousands of devices do not serialise
//!   on fsync.
//! - **Fairness, no silent loss**: each thing has a bounded share of the queue; a request past
//!   it is refused at once with the `…/rejected` answer `RequestThrottled` (the caller delivers
//!   it), never dropped, and another thing's requests are never refused because of it. An
//!   answer the publisher cannot hand over yet (the device reads slower than it asks) is kept
//!   in the [`Redelivery`] and offered again every [`RETRY_EVERY`], still occupying its
//!   thing's share.
//! - **Arrival order**: a control-plane or HTTP mutation waits until every device request
//!   accepted before it has been applied (else a `$next/get` sent before `CreateJob` could be
//!   answered after it, and the agent would see the new job twice and restart its download).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use otastream_jobs::device_api::refuse_device_request;
use otastream_jobs::{DeviceOp, JobsError};

use crate::fair_queue::{DeviceRequest, FairQueue, Full};
use crate::handle::{DeviceQueue, JobsHandle, now_ms};
use crate::redelivery::Redelivery;

/// How often answers waiting in the [`Redelivery`] are offered again.
pub const RETRY_EVERY: Duration = Duration::from_millis(5);

/// Sizes of the device request queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Requests one thing may have waiting or being applied (an OTA agent has one or two).
    pub per_thing: usize,
    /// Requests all things together may have waiting or being applied.
    pub total: usize,
    /// Most requests applied in one engine pass and one repository transaction.
    pub batch: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            per_thing: 32,
            total: 131_072,
            batch: 1024,
        }
    }
}

/// The answer to a request refused at once: publish `payload` to
/// `$aws/things/<thing>/jobs/<topic_suffix>` (a `…/rejected` topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// E.g. `$next/get/rejected`.
    pub topic_suffix: String,
    /// The `RequestThrottled` rejected payload, the request's client token echoed.
    pub payload: Bytes,
}

/// The queue and the worker's progress, shared by the driver, its worker and the waiters.
struct Shared {
    state: Mutex<State>,
    /// Signalled when requests are queued or the driver closes (the worker waits on it).
    queued: Condvar,
    /// Signalled when a batch has been applied or the worker stopped (waiters wait on it).
    applied: Condvar,
}

struct State {
    queue: FairQueue,
    /// No more requests: the worker applies what is waiting and ends.
    closing: bool,
    /// The worker is gone: nothing will be applied any more, nobody may wait for it.
    stopped: bool,
}

impl Shared {
    fn new(limits: QueueLimits) -> Self {
        Self {
            state: Mutex::new(State {
                queue: FairQueue::new(limits.per_thing, limits.total),
                closing: false,
                stopped: false,
            }),
            queued: Condvar::new(),
            applied: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next batch, waiting for one (at most `patience`, if given: then an empty batch);
    /// `None` once closing and drained.
    fn next_batch(&self, max: usize, patience: Option<Duration>) -> Option<Vec<DeviceRequest>> {
        let state = self.state();
        let idle = |s: &mut State| s.queue.is_empty() && !s.closing;
        let mut state = match patience {
            None => self
                .queued
                .wait_while(state, idle)
                .unwrap_or_else(PoisonError::into_inner),
            Some(limit) => {
                self.queued
                    .wait_timeout_while(state, limit, idle)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        if state.closing && state.queue.is_empty() {
            return None;
        }
        Some(state.queue.take_batch(max))
    }

    /// Records `batch` applied (answered, or given up on) with the answers to `held` things
    /// kept for redelivery, and wakes the waiters.
    fn finish(&self, batch: &[DeviceRequest], held: &[String]) {
        let mut state = self.state();
        for thing in held {
            state.queue.hold(thing);
        }
        state.queue.applied(batch);
        drop(state);
        self.applied.notify_all();
    }

    /// Offers the kept answers again; frees the places of those handed over or given up on.
    fn redeliver(&self, jobs: &JobsHandle, kept: &mut Redelivery) {
        let retried = kept.retry(Instant::now(), |answer| jobs.publish(answer));
        if retried.delivered.is_empty() && retried.dropped.is_empty() {
            return;
        }
        let mut state = self.state();
        for thing in retried.delivered.iter().chain(&retried.dropped) {
            state.queue.release(thing);
        }
    }

    fn stop(&self) {
        self.state().stopped = true;
        self.applied.notify_all();
    }
}

impl DeviceQueue for Shared {
    fn wait_for_earlier(&self) {
        let state = self.state();
        let target = state.queue.last_arrival();
        let _done = self
            .applied
            .wait_while(state, |s| !s.queue.applied_through(target) && !s.stopped)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Marks the queue stopped when the worker thread ends, however it ends.
struct StopOnExit(Arc<Shared>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Device requests into the engine: a fair queue in front of one worker thread. Dropping it
/// lets the worker apply what is queued and end.
pub struct JobsRequests {
    shared: Arc<Shared>,
}

impl JobsRequests {
    /// Starts the worker thread that applies requests to `jobs` in arrival order per thing. It
    /// is a thread of its own, not a runtime task, so control-plane calls blocked in
    /// [`DeviceQueue::wait_for_earlier`] cannot starve it.
    pub fn start(jobs: JobsHandle, limits: QueueLimits) -> std::io::Result<Self> {
        let requests = Self::without_worker(limits);
        let stop = StopOnExit(requests.shared.clone());
        std::thread::Builder::new()
            .name("jobs-requests".into())
            .spawn(move || {
                let mut kept = Redelivery::default();
                loop {
                    let patience = (!kept.is_empty()).then_some(RETRY_EVERY);
                    let Some(batch) = stop.0.next_batch(limits.batch, patience) else {
                        break;
                    };
                    if !batch.is_empty() {
                        let held = apply_batch(&jobs, &batch, &mut kept);
                        stop.0.finish(&batch, &held);
                    }
                    if !kept.is_empty() {
                        stop.0.redeliver(&jobs, &mut kept);
                    }
                }
                // Closing: one last offer of what is kept (the gateway is going away).
                stop.0.redeliver(&jobs, &mut kept);
            })?;
        Ok(requests)
    }

    fn without_worker(limits: QueueLimits) -> Self {
        Self {
            shared: Arc::new(Shared::new(limits)),
        }
    }

    /// The queue's order, to install with [`JobsHandle::with_device_queue`].
    pub fn device_queue(&self) -> Arc<dyn DeviceQueue> {
        self.shared.clone()
    }

    /// Queues one request of `thing` on `$aws/things/<thing>/jobs/<topic_suffix>`; it is answered
    /// through the handle's publisher once applied. Never blocks. `Err` when the thing (or the
    /// whole queue) is full: the caller must deliver the refusal to the device.
    pub fn handle_device_request(
        &self,
        thing: &str,
        topic_suffix: &str,
        payload: Bytes,
    ) -> Result<(), Refusal> {
        // Not a request (a device publishing to its own `notify`, say): nothing to answer.
        if DeviceOp::parse(topic_suffix).is_none() {
            return Ok(());
        }
        let pushed = self
            .shared
            .state()
            .queue
            .push(thing, topic_suffix, payload.clone());
        match pushed {
            Ok(_) => {
                self.shared.queued.notify_one();
                Ok(())
            }
            Err(full) => Err(refusal(thing, topic_suffix, &payload, full)),
        }
    }

    /// Applies one batch of at most `max` waiting requests on this thread (tests without a
    /// worker); how many it applied.
    #[cfg(test)]
    pub(crate) fn apply_next_batch(&self, jobs: &JobsHandle, max: usize) -> usize {
        self.apply_next_batch_keeping(jobs, max, &mut Redelivery::default())
    }

    /// [`JobsRequests::apply_next_batch`] keeping undelivered answers in `kept` (and offering
    /// those kept before again afterwards), as the worker does.
    #[cfg(test)]
    pub(crate) fn apply_next_batch_keeping(
        &self,
        jobs: &JobsHandle,
        max: usize,
        kept: &mut Redelivery,
    ) -> usize {
        let batch = self.shared.state().queue.take_batch(max);
        if !batch.is_empty() {
            let held = apply_batch(jobs, &batch, kept);
            self.shared.finish(&batch, &held);
        }
        self.shared.redeliver(jobs, kept);
        batch.len()
    }

    /// A queue without a worker (tests drive it with [`JobsRequests::apply_next_batch`]).
    #[cfg(test)]
    pub(crate) fn unstarted(limits: QueueLimits) -> Self {
        Self::without_worker(limits)
    }
}

impl Drop for JobsRequests {
    fn drop(&mut self) {
        self.shared.state().closing = true;
        self.shared.queued.notify_all();
    }
}

/// The `RequestThrottled` answer to a request that found its queue full.
fn refusal(thing: &str, topic_suffix: &str, payload: &[u8], full: Full) -> Refusal {
    let message = match full {
        Full::Thing => "too many jobs requests from this thing are waiting; retry later",
        Full::Queue => "the jobs request queue is full; retry later",
    };
    tracing::debug!(thing, topic_suffix, ?full, "jobs request throttled");
    let error = JobsError::RequestThrottled(message.into());
    let (topic_suffix, payload) = refuse_device_request(topic_suffix, payload, &error, now_ms())
        .unwrap_or_else(|| (format!("{topic_suffix}/rejected"), Vec::new()));
    Refusal {
        topic_suffix,
        payload: Bytes::from(payload),
    }
}

/// Runs `requests` through the engine in order (one engine call each, one clock reading for
/// all), persists every record they produce in ONE transaction, then publishes their answers in
/// order; an answer that cannot be handed over now goes to `kept`. Returns the thing of each
/// answer newly kept. Blocking. If the commit fails nothing is answered: the agents retry.
pub(crate) fn apply_batch(
    jobs: &JobsHandle,
    requests: &[DeviceRequest],
    kept: &mut Redelivery,
) -> Vec<String> {
    let now = now_ms();
    let applied = catch_unwind(AssertUnwindSafe(|| {
        jobs.apply_now(
            |engine| {
                let actions = requests
                    .iter()
                    .flat_map(|r| {
                        engine.handle_device_request(&r.thing, &r.topic_suffix, &r.payload, now)
                    })
                    .collect();
                Ok(((), actions))
            },
            Some(kept),
        )
    }));
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, requests = requests.len(), "jobs requests could not be applied")
        }
        Err(_) => tracing::error!(requests = requests.len(), "jobs worker panicked on a batch"),
    }
    kept.take_newly_kept()
}
