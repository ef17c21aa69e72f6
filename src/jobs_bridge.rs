//! The jobs driver (`otastream-jobs-driver`) wired to the device gateway, both ways:
//!
//! - device → engine: [`GatewayJobs`] is the gateway's [`JobsDriver`]; it hands each
//!   `$aws/things/<T>/jobs/...` request to the driver's fair queue, and a request the driver
//!   refuses (its thing has too many waiting) goes back as [`JobsAdmission::RejectNow`];
//! - engine → device: [`GatewayPublisher`] is the driver's [`Publisher`]; answers go to the
//!   requester without a subscription ([`Gateway::reply`](otastream_gateway::Gateway::reply);
//!   one its connection cannot queue now is offered again by the driver),
//!   `notify` / `notify-next` only to subscribers
//!   ([`Gateway::notify`](otastream_gateway::Gateway::notify)).
//!
//! Wiring only: persistence, timers, the queue, group commit and arrival order are the
//! driver's.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use otastream_api::jobs_hub::{JobsHandle, start_jobs};
use otastream_gateway::{JobsAdmission, JobsDriver, WeakGateway};
use otastream_jobs::Action;
use otastream_jobs_driver::{JobsRequests, Publisher};
use otastream_store::JobRepo;

/// The engine's publications, delivered by the gateway (set once the gateway exists). Holds the
/// gateway weakly: the gateway owns the jobs driver, which owns the engine, which owns this.
#[derive(Default)]
pub struct GatewayPublisher(pub OnceLock<WeakGateway>);

impl Publisher for GatewayPublisher {
    /// False when a reply could not be queued to its device (full, or not connected): the driver
    /// offers it again.
    fn publish(&self, action: &Action) -> bool {
        let (Some(gateway), Some(topic)) =
            (self.0.get().and_then(WeakGateway::upgrade), action.topic())
        else {
            return true;
        };
        match action {
            Action::Reply { thing, payload, .. } => {
                gateway.reply(thing, topic, Bytes::copy_from_slice(payload))
            }
            Action::Notify { thing, payload } | Action::NotifyNext { thing, payload } => {
                gateway.notify(thing, topic, Bytes::copy_from_slice(payload));
                true
            }
            _ => true,
        }
    }
}

/// The gateway's [`JobsDriver`]: the driver's request queue.
pub struct GatewayJobs(pub Arc<JobsRequests>);

impl JobsDriver for GatewayJobs {
    fn handle_jobs_request(
        &self,
        thing: &str,
        topic_suffix: &str,
        payload: Bytes,
    ) -> JobsAdmission {
        match self.0.handle_device_request(thing, topic_suffix, payload) {
            Ok(()) => JobsAdmission::Queued,
            Err(refusal) => JobsAdmission::RejectNow {
                topic_suffix: refusal.topic_suffix,
                payload: refusal.payload,
            },
        }
    }
}

/// The jobs engine restored from `store` with its request worker: the handle (for the control
/// plane and the timers; its mutations wait for earlier device requests), the publisher (to
/// receive the gateway once built) and the gateway's driver.
pub fn wire(
    store: Arc<dyn JobRepo>,
) -> anyhow::Result<(JobsHandle, Arc<GatewayPublisher>, Arc<GatewayJobs>)> {
    let publisher = Arc::new(GatewayPublisher::default());
    let jobs = start_jobs(store, publisher.clone())?;
    Ok((jobs.handle, publisher, Arc::new(GatewayJobs(jobs.requests))))
}
