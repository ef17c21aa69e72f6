//! Arrival order between device requests and control-plane mutations: a `$next/get` queued
//! before `CreateJob` is answered before the job exists, so the device sees the job once
//! (`notify-next`), never again in a late `$next/get/accepted` (the AWS agent would restart its
//! download from block 0, PROTOCOL.md §1.9.6).

use std::sync::mpsc as std_mpsc;

use otastream_jobs::NoGroups;

use super::*;
use crate::JobsRuntime;

/// Every publication as `(thing, topic, payload)`; the first reply to [`GATE_THING`] blocks the
/// jobs worker (mid-batch, after its commit) until the gate opens.
struct GatedPublisher {
    seen: Mutex<Vec<(String, String, serde_json::Value)>>,
    entered: Mutex<Option<std_mpsc::Sender<()>>>,
    gate: Mutex<Option<std_mpsc::Receiver<()>>>,
}

const GATE_THING: &str = "gate";

impl Publisher for GatedPublisher {
    fn publish(&self, action: &Action) -> bool {
        let topic = action.topic().unwrap_or_default();
        let (Action::Reply { thing, payload, .. }
        | Action::Notify { thing, payload }
        | Action::NotifyNext { thing, payload }) = action
        else {
            return true;
        };
        let body = serde_json::from_slice(payload).unwrap_or_default();
        self.seen
            .lock()
            .expect("seen")
            .push((thing.clone(), topic, body));
        if thing == GATE_THING {
            if let Some(entered) = self.entered.lock().expect("entered").take() {
                let _ = entered.send(());
            }
            if let Some(gate) = self.gate.lock().expect("gate").take() {
                let _ = gate.recv();
            }
        }
        true
    }
}

fn next_get(driver: &JobsRequests, thing: &str) {
    let payload = Bytes::from(format!(r#"{{"clientToken":"{thing}-get"}}"#));
    driver
        .handle_device_request(thing, "$next/get", payload)
        .expect("queued");
}

#[test]
fn a_next_get_queued_before_create_job_is_answered_first_and_the_device_sees_the_job_once() {
    let (entered_tx, entered_rx) = std_mpsc::channel();
    let (open_tx, open_rx) = std_mpsc::channel();
    let publisher = Arc::new(GatedPublisher {
        seen: Mutex::new(Vec::new()),
        entered: Mutex::new(Some(entered_tx)),
        gate: Mutex::new(Some(open_rx)),
    });
    let runtime = JobsRuntime::start(
        Arc::new(MemoryRepository::default()),
        publisher.clone(),
        QueueLimits::default(),
    )
    .expect("wire");
    let (jobs, driver) = (runtime.handle, runtime.requests);

    // The worker is busy with another device's batch (held in its publication) …
    next_get(&driver, GATE_THING);
    entered_rx.recv().expect("worker reached the gate");
    // … while the device's `$next/get` waits in the queue, and then the job is created.
    next_get(&driver, "dev");
    let creator = {
        let jobs = jobs.clone();
        std::thread::spawn(move || {
            let spec = JobSpec {
                job_arn: "arn:aws:iot:us-east-1:123456789012:job/ota-1".into(),
                job_id: "ota-1".into(),
                targets: vec!["arn:aws:iot:us-east-1:123456789012:thing/dev".into()],
                document: r#"{"afr_ota":{}}"#.into(),
                ..JobSpec::default()
            };
            jobs.apply(|e| Ok(((), e.handle_create_job(spec, &NoGroups, now_ms())?)))
        })
    };
    // Give the creator time to get as far as it can (into the engine, without the fix); the
    // assertions below hold however the threads are scheduled once the fix is in.
    std::thread::sleep(Duration::from_millis(100));
    open_tx.send(()).expect("open the gate");
    creator.join().expect("creator").expect("CreateJob");
    // Every publication is made before `apply` returns; wait for the device's answer.
    for _ in 0..2000 {
        let seen = publisher.seen.lock().expect("seen");
        if seen
            .iter()
            .any(|(t, topic, _)| t == "dev" && topic.ends_with("$next/get/accepted"))
        {
            break;
        }
        drop(seen);
        std::thread::sleep(Duration::from_millis(5));
    }

    let seen = publisher.seen.lock().expect("seen");
    let dev: Vec<_> = seen.iter().filter(|(t, ..)| t == "dev").collect();
    let topics: Vec<&str> = dev.iter().map(|(_, topic, _)| topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "$aws/things/dev/jobs/$next/get/accepted",
            "$aws/things/dev/jobs/notify",
            "$aws/things/dev/jobs/notify-next"
        ],
        "{dev:?}"
    );
    let documents = dev
        .iter()
        .filter(|(_, _, body)| body["execution"]["jobId"] == "ota-1")
        .count();
    assert_eq!(
        documents, 1,
        "the device saw the job more than once: {dev:?}"
    );
    assert_eq!(dev[0].2["clientToken"], "dev-get", "{dev:?}");
}

/// Round-robin batches apply a flooding thing's early requests after a quiet thing's later
/// one; a control-plane call must still wait for every request that arrived before it.
#[test]
fn a_control_plane_call_waits_for_every_earlier_request_not_for_a_count() {
    let repository = Arc::new(MemoryRepository::default());
    let jobs = JobsHandle::restore(repository).expect("restore");
    let limits = QueueLimits {
        batch: 1,
        ..QueueLimits::default()
    };
    let driver = JobsRequests::unstarted(limits);
    let ordered = jobs.clone().with_device_queue(driver.device_queue());
    for _ in 0..3 {
        next_get(&driver, "flood");
    }
    let (done_tx, done_rx) = std_mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = ordered.apply(|_| Ok(((), Vec::new())));
        let _ = done_tx.send(());
        out
    });
    // Once the call waits (for arrivals 1..=3), two more things send a request each.
    std::thread::sleep(Duration::from_millis(100));
    next_get(&driver, "quiet");
    next_get(&driver, "other");
    // Round-robin: flood, quiet, other — three applied (as many as arrived before the call),
    // yet two flood requests that arrived before it still wait.
    for _ in 0..3 {
        assert_eq!(driver.apply_next_batch(&jobs, 1), 1);
    }
    assert!(
        done_rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "the call ran before an earlier request was applied"
    );
    assert_eq!(driver.apply_next_batch(&jobs, 1), 1);
    assert_eq!(driver.apply_next_batch(&jobs, 1), 1);
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the call runs once every earlier request is applied");
    waiter.join().expect("waiter").expect("apply");
}
