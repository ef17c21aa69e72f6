//! Throughput of device job updates through the jobs driver (fair queue, group commit, the
//! store's jobs repository: SQLite, or with `--postgres` a throw-away PostgreSQL + SeaweedFS): `DEVICES` things each send `IN_PROGRESS` then `SUCCEEDED` for one
//! job through the driver's device request queue (what the gateway's `JobsDriver` calls); the
//! clock stops when every answer has been published (a throttled request counts as a rejected
//! answer). Prints updates per second.
//!
//! `cargo bench --bench jobs_updates` (optionally `-- <devices>` and `--postgres`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use otastream_jobs::{Action, JobSpec};
use otastream_jobs_driver::{JobsHandle, JobsRequests, Publisher, QueueLimits};
use otastream_store::{JobRepo, Store};

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
    let postgres = std::env::args().any(|a| a == "--postgres");
    let dir = tempfile::tempdir()?;
    let (store, backend, _stack): (Arc<dyn JobRepo>, _, _) = if postgres {
        let stack = otastream_testkit::Stack::start()?;
        let config = otastream_store_pg::PgConfig {
            database_url: stack.database_url.clone(),
            objects: otastream_store_pg::S3Location {
                bucket: otastream_testkit::STACK_BUCKET.to_owned(),
                endpoint: Some(stack.s3.endpoint()),
                region: "us-east-1".to_owned(),
                access_key_id: stack.s3.access_key_id().to_owned(),
                secret_access_key: stack.s3.secret_access_key().to_owned(),
            },
            cache_dir: dir.path().to_owned(),
            pool_size: otastream_store_pg::DEFAULT_POOL_SIZE,
        };
        let backend = otastream_store_pg::PgBackend::connect(&config)?;
        (Arc::new(backend), "PostgreSQL", Some(stack))
    } else {
        (Arc::new(Store::open(dir.path())?), "SQLite", None)
    };
    let answers = Arc::new(Answers::default());
    let jobs = JobsHandle::restore(store)?.with_publisher(answers.clone());
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
        "jobs_updates ({backend}): {devices} devices, {updates} updates ({} rejected) in {:.2} s = {:.0} updates/s",
        answers.rejected.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        updates as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
