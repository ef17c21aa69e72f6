//! The seam between the jobs engine (`otastream-jobs`, driven by `otastream_api::jobs_hub`) and
//! the device gateway, both ways:
//!
//! - device → engine: [`JobsRequests`] is the gateway's [`JobsDriver`]; it queues each
//!   `$aws/things/<T>/jobs/...` request to one worker thread that applies whatever is queued as
//!   one batch through [`JobsHandle::apply`] (engine calls in arrival order, one store
//!   transaction for the batch — group commit —, then every answer), so thousands of devices
//!   do not serialise on fsync;
//! - arrival order across both: [`Arrivals`] counts requests queued and applied; as the
//!   handle's [`DeviceQueue`] it makes every control-plane / HTTP mutation wait until the device
//!   requests queued before it are applied (else a `$next/get` sent before `CreateJob` could be
//!   answered after it, and the agent would see the new job twice and restart its download);
//! - engine → device: [`GatewaySink`] is the engine's [`ActionSink`]; answers go to the requester
//!   without a subscription ([`Gateway::reply`](otastream_gateway::Gateway::reply)), `notify` / `notify-next` only to subscribers
//!   ([`Gateway::notify`](otastream_gateway::Gateway::notify)).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
#[cfg(test)]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use otastream_api::jobs_hub::{ActionSink, DeviceQueue, JobsHandle, Plane};
use otastream_gateway::{JobsDriver, WeakGateway};
use otastream_jobs::Action;
use otastream_store::Store;
use tokio::sync::mpsc;

/// Requests queued for the jobs worker before new ones are dropped (the device's agent retries).
const QUEUE: usize = 10_000;

/// Most requests applied in one engine pass and one store transaction.
const BATCH: usize = 1024;

/// The engine's publications, delivered by the gateway (set once the gateway exists). Holds the
/// gateway weakly: the gateway owns the jobs driver, which owns the engine, which owns this sink.
#[derive(Default)]
pub struct GatewaySink(pub OnceLock<WeakGateway>);

impl ActionSink for GatewaySink {
    fn publish(&self, action: Action) {
        let (Some(gateway), Some(topic)) =
            (self.0.get().and_then(WeakGateway::upgrade), action.topic())
        else {
            return;
        };
        match action {
            Action::Reply { thing, payload, .. } => {
                gateway.reply(&thing, topic, Bytes::from(payload));
            }
            Action::Notify { thing, payload } | Action::NotifyNext { thing, payload } => {
                gateway.notify(&thing, topic, Bytes::from(payload));
            }
            _ => {}
        }
    }
}

/// One device request for the jobs worker.
struct JobsRequest {
    thing: String,
    topic_suffix: String,
    payload: Bytes,
}

/// How far the device queue is: requests queued, requests applied, and whether the worker
/// stopped. The [`DeviceQueue`] that keeps engine inputs in arrival order.
#[derive(Default)]
pub struct Arrivals {
    /// Requests accepted into the queue so far (taken while enqueueing: queue order = count).
    queued: Mutex<u64>,
    applied: Mutex<Applied>,
    advanced: Condvar,
}

#[derive(Default)]
struct Applied {
    count: u64,
    stopped: bool,
}

impl Arrivals {
    fn applied(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `n` more requests applied (answered or dropped) and wakes the waiters.
    fn advance(&self, n: usize) {
        self.applied().count += n as u64;
        self.advanced.notify_all();
    }

    /// The worker is gone: nothing will be applied any more, nobody may wait for it.
    fn stop(&self) {
        self.applied().stopped = true;
        self.advanced.notify_all();
    }
}

impl DeviceQueue for Arrivals {
    fn wait_for_earlier(&self) {
        let target = *self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = self.applied();
        let _done = self
            .advanced
            .wait_while(applied, |a| a.count < target && !a.stopped)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Marks the [`Arrivals`] stopped when the worker thread ends, however it ends.
struct StopOnExit(Arc<Arrivals>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The gateway's [`JobsDriver`]: a queue in front of one worker thread.
pub struct JobsRequests {
    queue: mpsc::Sender<JobsRequest>,
    arrivals: Arc<Arrivals>,
}

impl JobsRequests {
    /// Starts the worker thread that applies requests to `jobs` and persists into `store`, in
    /// arrival order. The worker ends when this value is dropped. It is a thread of its own, not
    /// a runtime task, so control-plane calls blocked in [`DeviceQueue::wait_for_earlier`]
    /// cannot starve it.
    ///
    /// Group commit: the worker takes everything queued (up to [`BATCH`] requests), runs each
    /// through the engine in order, writes all their records in one store transaction, and only
    /// then publishes every answer — one fsync for the whole batch instead of one per request.
    pub fn start(jobs: JobsHandle, store: Store) -> std::io::Result<Self> {
        let (queue, mut rx) = mpsc::channel::<JobsRequest>(QUEUE);
        let arrivals = Arc::new(Arrivals::default());
        let stop = StopOnExit(arrivals.clone());
        std::thread::Builder::new()
            .name("jobs-requests".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < BATCH {
                        let Ok(next) = rx.try_recv() else { break };
                        batch.push(next);
                    }
                    let applied =
                        catch_unwind(AssertUnwindSafe(|| apply_batch(&jobs, &store, &batch)));
                    if applied.is_err() {
                        tracing::error!(requests = batch.len(), "jobs worker panicked on a batch");
                    }
                    stop.0.advance(batch.len());
                    batch.clear();
                }
            })?;
        Ok(Self { queue, arrivals })
    }

    /// The queue's progress, to install with [`JobsHandle::with_device_queue`].
    pub fn arrivals(&self) -> Arc<Arrivals> {
        self.arrivals.clone()
    }
}

/// Runs `requests` through the engine in order (one engine call each, one clock reading for
/// all), persists every record they produce in ONE transaction, then publishes their answers in
/// order. Blocking (store I/O). If the commit fails nothing is answered: the agents retry.
fn apply_batch(jobs: &JobsHandle, store: &Store, requests: &[JobsRequest]) {
    let now = now_ms();
    let applied = jobs.apply(store, Plane::Device, |engine| {
        let actions = requests
            .iter()
            .flat_map(|req| {
                engine.handle_device_request(&req.thing, &req.topic_suffix, &req.payload, now)
            })
            .collect();
        Ok(((), actions))
    });
    if let Err(e) = applied {
        tracing::error!(error = %e.message, requests = requests.len(), "jobs requests could not be applied");
    }
}

impl JobsDriver for JobsRequests {
    fn handle_jobs_request(&self, thing: &str, topic_suffix: &str, payload: Bytes) {
        let req = JobsRequest {
            thing: thing.to_owned(),
            topic_suffix: topic_suffix.to_owned(),
            payload,
        };
        let mut queued = self
            .arrivals
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match self.queue.try_send(req) {
            Ok(()) => *queued += 1,
            Err(_) => tracing::warn!(thing, topic_suffix, "jobs queue full; request dropped"),
        }
    }
}

/// Milliseconds since the Unix epoch (the engine's clock unit).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds the shared jobs engine with its gateway sink; returns the handle (for the control
/// plane and the timers; its mutations wait for earlier device requests), the sink (to receive
/// the gateway once built) and the driver.
pub fn wire(store: &Store) -> anyhow::Result<(JobsHandle, Arc<GatewaySink>, Arc<JobsRequests>)> {
    let sink = Arc::new(GatewaySink::default());
    let (jobs, requests) = wire_with_sink(store, sink.clone())?;
    Ok((jobs, sink, requests))
}

/// The engine restored from `store` publishing to `sink`, its device-request driver, and the
/// handle ordered behind that driver's queue.
fn wire_with_sink(
    store: &Store,
    sink: Arc<dyn ActionSink>,
) -> anyhow::Result<(JobsHandle, Arc<JobsRequests>)> {
    let jobs = JobsHandle::restore(store)?.with_sink(sink);
    let requests = Arc::new(JobsRequests::start(jobs.clone(), store.clone())?);
    let jobs = jobs.with_device_queue(requests.arrivals());
    Ok((jobs, requests))
}

#[cfg(test)]
mod arrival_order_tests;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use otastream_jobs::{ExecutionStatus, JobExecution, JobSpec};
    use otastream_store::JobRepo;

    use super::*;

    const THINGS: usize = 20;
    const STEPS: u64 = 5;

    /// One answer as a device saw it, with what the store held at that moment.
    #[derive(Debug)]
    struct Answer {
        thing: String,
        token: String,
        accepted: bool,
        stored_step: Option<u64>,
    }

    /// Records every answer together with the execution record durable when it was published.
    struct Recorder {
        store: Store,
        answers: Mutex<Vec<Answer>>,
    }

    impl ActionSink for Recorder {
        fn publish(&self, action: Action) {
            let Action::Reply {
                thing,
                topic_suffix,
                payload,
            } = action
            else {
                return;
            };
            let body: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
            let stored = stored_execution(&self.store, &thing);
            let answer = Answer {
                token: body["clientToken"].as_str().unwrap_or_default().to_owned(),
                accepted: topic_suffix.ends_with("/accepted"),
                stored_step: stored
                    .and_then(|e| e.status_details.get("step").and_then(|s| s.parse().ok())),
                thing,
            };
            self.answers.lock().expect("recorder").push(answer);
        }
    }

    /// The durable execution of job `j` on `thing`.
    fn stored_execution(store: &Store, thing: &str) -> Option<JobExecution> {
        let snapshot = store.load_jobs().expect("store");
        snapshot
            .executions
            .into_iter()
            .find(|e| e.job_id == "j" && e.thing_name == thing)
    }

    /// A job for `THINGS` things and a recording sink.
    fn setup() -> (tempfile::TempDir, Store, JobsHandle, Arc<Recorder>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let recorder = Arc::new(Recorder {
            store: store.clone(),
            answers: Mutex::new(Vec::new()),
        });
        let jobs = JobsHandle::restore(&store)
            .expect("restore")
            .with_sink(recorder.clone());
        let things = (0..THINGS).map(|i| format!("t{i}")).collect();
        let groups = BTreeMap::from([("fleet".to_owned(), things)]);
        let spec = JobSpec {
            job_arn: "arn:aws:iot:us-east-1:123456789012:job/j".into(),
            job_id: "j".into(),
            targets: vec!["arn:aws:iot:us-east-1:123456789012:thinggroup/fleet".into()],
            document: "{}".into(),
            ..JobSpec::default()
        };
        jobs.apply(&store, Plane::Control, |e| {
            Ok(((), e.handle_create_job(spec, &groups, now_ms())?))
        })
        .expect("create job");
        (dir, store, jobs, recorder)
    }

    /// Every device's updates, interleaved across devices: step k expects version k, so an
    /// update applied out of its device's order is rejected (VersionMismatch).
    fn interleaved_updates() -> Vec<JobsRequest> {
        (1..=STEPS)
            .flat_map(|step| {
                (0..THINGS).map(move |i| {
                    let status = if step == STEPS { "SUCCEEDED" } else { "IN_PROGRESS" };
                    let payload = format!(
                        r#"{{"status":"{status}","expectedVersion":{step},"clientToken":"t{i}-{step}","statusDetails":{{"step":"{step}"}}}}"#
                    );
                    JobsRequest {
                        thing: format!("t{i}"),
                        topic_suffix: "j/update".into(),
                        payload: Bytes::from(payload),
                    }
                })
            })
            .collect()
    }

    /// Per device: answers in request order, all accepted, each published only once the
    /// record it acknowledges was in the store.
    fn assert_ordered_and_durable(recorder: &Recorder) {
        let answers = recorder.answers.lock().expect("recorder");
        assert_eq!(answers.len(), THINGS * STEPS as usize, "{answers:?}");
        for i in 0..THINGS {
            let thing = format!("t{i}");
            let mine: Vec<&Answer> = answers.iter().filter(|a| a.thing == thing).collect();
            for (step, answer) in (1..=STEPS).zip(&mine) {
                assert_eq!(answer.token, format!("{thing}-{step}"), "{mine:?}");
                assert!(answer.accepted, "{answer:?}");
                assert!(
                    answer.stored_step >= Some(step),
                    "reply before persist: {answer:?}"
                );
            }
        }
    }

    #[test]
    fn one_batch_applies_interleaved_device_updates_in_order_and_answers_after_the_commit() {
        let (_dir, store, jobs, recorder) = setup();
        apply_batch(&jobs, &store, &interleaved_updates());
        assert_ordered_and_durable(&recorder);
        let done = jobs.read(|e| e.job_counts("j").map(|c| c.get(ExecutionStatus::Succeeded)));
        assert_eq!(done, Some(THINGS as u64));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_worker_keeps_each_devices_order_across_batches() {
        let (_dir, store, jobs, recorder) = setup();
        let driver = JobsRequests::start(jobs, store).expect("worker");
        for req in interleaved_updates() {
            driver.handle_jobs_request(&req.thing, &req.topic_suffix, req.payload);
            tokio::task::yield_now().await;
        }
        for _ in 0..2000 {
            if recorder.answers.lock().expect("recorder").len() >= THINGS * STEPS as usize {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_ordered_and_durable(&recorder);
    }

    /// Concurrent batches (the engine is released before each commit) still reach the store in
    /// engine order: after racing updates of the same executions, every stored record equals
    /// the engine's.
    #[test]
    fn concurrent_batches_commit_in_engine_order() {
        let (_dir, store, jobs, _recorder) = setup();
        std::thread::scope(|scope| {
            for worker in 0..4 {
                let (jobs, store) = (&jobs, &store);
                scope.spawn(move || {
                    for round in 0..50 {
                        let batch: Vec<JobsRequest> = (0..THINGS)
                            .map(|i| JobsRequest {
                                thing: format!("t{i}"),
                                topic_suffix: "j/update".into(),
                                payload: Bytes::from(format!(
                                    r#"{{"status":"IN_PROGRESS","statusDetails":{{"by":"{worker}-{round}"}}}}"#
                                )),
                            })
                            .collect();
                        apply_batch(jobs, store, &batch);
                    }
                });
            }
        });
        for i in 0..THINGS {
            let thing = format!("t{i}");
            let stored = stored_execution(&store, &thing).expect("record");
            let live = jobs.read(|e| e.execution("j", &thing).cloned());
            assert_eq!(Some(&stored), live.as_ref());
            assert_eq!(stored.version_number, 201, "{stored:?}");
        }
    }
}
