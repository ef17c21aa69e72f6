//! Throughput of device job updates through the jobs driver (fair queue, group commit, SQLite
//! behind the jobs repository): `DEVICES` things each send `IN_PROGRESS` then `SUCCEEDED` for one
//! job through the driver's device request queue (what the gateway's `JobsDriver` calls); the
//! clock stops when every answer has been published (a throttled request counts as a rejected
//! answer). Prints updates per second.
//!
//! `cargo bench --bench jobs_updates` (optionally `-- <devices>`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use otastream_jobs::{Action, JobSpec};
use otastream_jobs_driver::{JobsHandle, JobsRequests, Publisher, QueueLimits};
use otastream_store::Store;

/// Counts accepted and rejected answers.
#[derive(Default)]
struct Answers {
    accepted: AtomicUsize,
    rejected: AtomicUsize,
}

impl Publisher for Answers {
    fn publish(&self, action: &Action) -> bool {
        if let Action::Reply { .. } = action {
            let topic = action.topic().unwrap_or_default();
            let counter = if topic.ends_with("/rejected") {
                &self.rejected
            } else {
                &self.accepted
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

fn main() -> anyhow::Result<()> {
    let devices: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let answers = Arc::new(Answers::default());
    let jobs = JobsHandle::restore(Arc::new(store.clone()))?.with_publisher(answers.clone());
    let things: Vec<String> = (0..devices).map(|i| format!("bench-{i}")).collect();
    let groups = BTreeMap::from([("fleet".to_owned(), things.clone())]);
    let spec = JobSpec {
        job_arn: "arn:aws:iot:us-east-1:123456789012:job/bench".into(),
        job_id: "bench".into(),
        targets: vec!["arn:aws:iot:us-east-1:123456789012:thinggroup/fleet".into()],
        document: r#"{"op":"update"}"#.into(),
        ..JobSpec::default()
    };
    jobs.apply(|e| Ok(((), e.handle_create_job(spec, &groups, 1)?)))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let updates = 2 * devices;
    let driver = JobsRequests::start(jobs.clone(), QueueLimits::default())?;
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        for status in ["IN_PROGRESS", "SUCCEEDED"] {
            for thing in &things {
                let payload = format!(r#"{{"status":"{status}","clientToken":"{thing}"}}"#);
                if driver
                    .handle_device_request(thing, "bench/update", Bytes::from(payload))
                    .is_err()
                {
                    answers.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while answers.accepted.load(Ordering::Relaxed) + answers.rejected.load(Ordering::Relaxed)
            < updates
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        start.elapsed()
    });
    println!(
        "jobs_updates: {devices} devices, {updates} updates ({} rejected) in {:.2} s = {:.0} updates/s",
        answers.rejected.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        updates as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
