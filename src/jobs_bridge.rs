//! The seam between the jobs engine (`otastream-jobs`, driven by `otastream_api::jobs_hub`) and
//! the device gateway, both ways:
//!
//! - device → engine: [`JobsRequests`] is the gateway's [`JobsDriver`]; it queues each
//!   `$aws/things/<T>/jobs/...` request to one blocking worker that runs it through
//!   [`JobsHandle::apply`] (persist first, then publish), in arrival order;
//! - engine → device: [`GatewaySink`] is the engine's [`ActionSink`]; answers go to the requester
//!   without a subscription ([`Gateway::reply`](otastream_gateway::Gateway::reply)), `notify` / `notify-next` only to subscribers
//!   ([`Gateway::notify`](otastream_gateway::Gateway::notify)).

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use otastream_api::jobs_hub::{ActionSink, JobsHandle, Plane};
use otastream_gateway::{JobsDriver, WeakGateway};
use otastream_jobs::Action;
use otastream_store::Store;
use tokio::sync::mpsc;

/// Requests queued for the jobs worker before new ones are dropped (the device's agent retries).
const QUEUE: usize = 10_000;

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

/// The gateway's [`JobsDriver`]: a queue in front of one blocking worker.
pub struct JobsRequests {
    queue: mpsc::Sender<JobsRequest>,
}

impl JobsRequests {
    /// Starts the worker that applies requests to `jobs` and persists into `store`, one at a
    /// time in arrival order. Must be called inside a tokio runtime; the worker ends when this
    /// value is dropped or the runtime shuts down.
    pub fn start(jobs: JobsHandle, store: Store) -> Self {
        let (queue, mut rx) = mpsc::channel::<JobsRequest>(QUEUE);
        tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let (jobs, store) = (jobs.clone(), store.clone());
                let applied = tokio::task::spawn_blocking(move || {
                    jobs.apply(&store, Plane::Data, |engine| {
                        let actions = engine.handle_device_request(
                            &req.thing,
                            &req.topic_suffix,
                            &req.payload,
                            now_ms(),
                        );
                        Ok(((), actions))
                    })
                })
                .await;
                match applied {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e.message, "jobs request could not be applied")
                    }
                    Err(e) => tracing::error!(error = %e, "jobs worker failed"),
                }
            }
        });
        Self { queue }
    }
}

impl JobsDriver for JobsRequests {
    fn handle_jobs_request(&self, thing: &str, topic_suffix: &str, payload: Bytes) {
        let req = JobsRequest {
            thing: thing.to_owned(),
            topic_suffix: topic_suffix.to_owned(),
            payload,
        };
        if self.queue.try_send(req).is_err() {
            tracing::warn!(thing, topic_suffix, "jobs queue full; request dropped");
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
/// plane and the timers), the sink (to receive the gateway once built) and the driver.
pub fn wire(store: &Store) -> anyhow::Result<(JobsHandle, Arc<GatewaySink>, Arc<JobsRequests>)> {
    let sink = Arc::new(GatewaySink::default());
    let jobs = JobsHandle::restore(store)?.with_sink(sink.clone());
    let requests = Arc::new(JobsRequests::start(jobs.clone(), store.clone()));
    Ok((jobs, sink, requests))
}
