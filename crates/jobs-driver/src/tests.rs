//! The driver against an in-memory repository: group commit keeps each device's order and
//! answers only what is durable, concurrent batches commit in engine order, and a flooding
//! device neither loses another device's requests nor goes unanswered itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use otastream_jobs::{Action, ExecutionStatus, Job, JobExecution, JobSpec};
use otastream_store::StoreResult;

use crate::handle::now_ms;
use crate::redelivery::Redelivery;
use crate::requests::apply_batch;
use crate::{
    DeviceRequest, JobRepo, JobWrite, JobsHandle, JobsRequests, JobsSnapshot, Publisher,
    QueueLimits,
};

mod arrival_order;
mod flood;

/// Jobs and executions in memory; every `save` is one atomic step.
#[derive(Default)]
pub(crate) struct MemoryRepository {
    records: Mutex<Records>,
}

#[derive(Default, Clone)]
pub(crate) struct Records {
    pub(crate) jobs: BTreeMap<String, Job>,
    pub(crate) executions: BTreeMap<(String, String), JobExecution>,
}

impl MemoryRepository {
    pub(crate) fn execution(&self, job_id: &str, thing: &str) -> Option<JobExecution> {
        let records = self.records.lock().expect("records");
        records
            .executions
            .get(&(job_id.to_owned(), thing.to_owned()))
            .cloned()
    }
}

impl JobRepo for MemoryRepository {
    fn load_jobs(&self) -> StoreResult<JobsSnapshot> {
        let records = self.records.lock().expect("records");
        Ok(JobsSnapshot {
            jobs: records.jobs.values().cloned().collect(),
            executions: records.executions.values().cloned().collect(),
        })
    }

    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()> {
        let mut records = self.records.lock().expect("records");
        let mut next = records.clone();
        for write in writes {
            match *write {
                JobWrite::SaveJob(job) => {
                    next.jobs.insert(job.spec.job_id.clone(), job.clone());
                }
                JobWrite::SaveExecution(e) => {
                    next.executions
                        .insert((e.job_id.clone(), e.thing_name.clone()), e.clone());
                }
                JobWrite::DeleteJob { job_id } => {
                    next.jobs.remove(job_id);
                    next.executions.retain(|(job, _), _| job != job_id);
                }
                JobWrite::DeleteExecution { job_id, thing } => {
                    next.executions
                        .remove(&(job_id.to_owned(), thing.to_owned()));
                }
            }
        }
        *records = next;
        Ok(())
    }
}

const THINGS: usize = 20;
const STEPS: u64 = 5;

/// One answer as a device saw it, with what the repository held at that moment.
#[derive(Debug)]
struct Answer {
    thing: String,
    token: String,
    accepted: bool,
    stored_step: Option<u64>,
}

/// Records every answer together with the execution record durable when it was published.
struct Recorder {
    repository: Arc<MemoryRepository>,
    answers: Mutex<Vec<Answer>>,
}

impl Publisher for Recorder {
    fn publish(&self, action: &Action) -> bool {
        let Action::Reply {
            thing,
            topic_suffix,
            payload,
        } = action
        else {
            return true;
        };
        let body: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
        let stored = self.repository.execution("j", thing);
        let answer = Answer {
            token: body["clientToken"].as_str().unwrap_or_default().to_owned(),
            accepted: topic_suffix.ends_with("/accepted"),
            stored_step: stored
                .and_then(|e| e.status_details.get("step").and_then(|s| s.parse().ok())),
            thing: thing.clone(),
        };
        self.answers.lock().expect("recorder").push(answer);
        true
    }
}

/// A job `j` for `things`, created through `jobs`.
pub(crate) fn create_job(jobs: &JobsHandle, things: &[String]) {
    let groups = BTreeMap::from([("fleet".to_owned(), things.to_vec())]);
    let spec = JobSpec {
        job_arn: "arn:aws:iot:us-east-1:123456789012:job/j".into(),
        job_id: "j".into(),
        targets: vec!["arn:aws:iot:us-east-1:123456789012:thinggroup/fleet".into()],
        document: "{}".into(),
        ..JobSpec::default()
    };
    jobs.apply(|e| Ok(((), e.handle_create_job(spec, &groups, now_ms())?)))
        .expect("create job");
}

/// A job for `THINGS` things and a recording publisher.
fn setup() -> (Arc<MemoryRepository>, JobsHandle, Arc<Recorder>) {
    let repository = Arc::new(MemoryRepository::default());
    let recorder = Arc::new(Recorder {
        repository: repository.clone(),
        answers: Mutex::new(Vec::new()),
    });
    let jobs = JobsHandle::restore(repository.clone())
        .expect("restore")
        .with_publisher(recorder.clone());
    let things: Vec<String> = (0..THINGS).map(|i| format!("t{i}")).collect();
    create_job(&jobs, &things);
    (repository, jobs, recorder)
}

fn request(thing: String, topic_suffix: &str, payload: String) -> DeviceRequest {
    DeviceRequest {
        thing,
        topic_suffix: topic_suffix.into(),
        payload: Bytes::from(payload),
        arrival: 0,
    }
}

/// Every device's updates, interleaved across devices: step k expects version k, so an
/// update applied out of its device's order is rejected (VersionMismatch).
fn interleaved_updates() -> Vec<DeviceRequest> {
    (1..=STEPS)
        .flat_map(|step| {
            (0..THINGS).map(move |i| {
                let status = if step == STEPS { "SUCCEEDED" } else { "IN_PROGRESS" };
                let payload = format!(
                    r#"{{"status":"{status}","expectedVersion":{step},"clientToken":"t{i}-{step}","statusDetails":{{"step":"{step}"}}}}"#
                );
                request(format!("t{i}"), "j/update", payload)
            })
        })
        .collect()
}

/// Per device: answers in request order, all accepted, each published only once the
/// record it acknowledges was in the repository.
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
    let (_repository, jobs, recorder) = setup();
    apply_batch(&jobs, &interleaved_updates(), &mut Redelivery::default());
    assert_ordered_and_durable(&recorder);
    let done = jobs.read(|e| e.job_counts("j").map(|c| c.get(ExecutionStatus::Succeeded)));
    assert_eq!(done, Some(THINGS as u64));
}

#[test]
fn the_queue_worker_keeps_each_devices_order_across_batches() {
    let (_repository, jobs, recorder) = setup();
    let limits = QueueLimits {
        batch: 7,
        ..QueueLimits::default()
    };
    let driver = JobsRequests::start(jobs, limits).expect("worker");
    for req in interleaved_updates() {
        driver
            .handle_device_request(&req.thing, &req.topic_suffix, req.payload)
            .expect("queued");
        std::thread::yield_now();
    }
    for _ in 0..2000 {
        if recorder.answers.lock().expect("recorder").len() >= THINGS * STEPS as usize {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_ordered_and_durable(&recorder);
}

/// Concurrent batches (the engine is released before each commit) still reach the repository
/// in engine order: after racing updates of the same executions, every stored record equals
/// the engine's.
#[test]
fn concurrent_batches_commit_in_engine_order() {
    let (repository, jobs, _recorder) = setup();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let jobs = &jobs;
            scope.spawn(move || {
                for round in 0..50 {
                    let batch: Vec<DeviceRequest> = (0..THINGS)
                        .map(|i| {
                            let payload = format!(
                                r#"{{"status":"IN_PROGRESS","statusDetails":{{"by":"{worker}-{round}"}}}}"#
                            );
                            request(format!("t{i}"), "j/update", payload)
                        })
                        .collect();
                    apply_batch(jobs, &batch, &mut Redelivery::default());
                }
            });
        }
    });
    for i in 0..THINGS {
        let thing = format!("t{i}");
        let stored = repository.execution("j", &thing).expect("record");
        let live = jobs.read(|e| e.execution("j", &thing).cloned());
        assert_eq!(Some(&stored), live.as_ref());
        assert_eq!(stored.version_number, 201, "{stored:?}");
    }
}

/// A restored engine sees what the repository holds (and nothing is lost by a restart).
#[test]
fn a_restored_handle_has_every_committed_record() {
    let (repository, jobs, _recorder) = setup();
    apply_batch(&jobs, &interleaved_updates(), &mut Redelivery::default());
    let restored = JobsHandle::restore(repository).expect("restore");
    let counts = restored.read(|e| e.job_counts("j").map(|c| c.get(ExecutionStatus::Succeeded)));
    assert_eq!(counts, Some(THINGS as u64));
}
