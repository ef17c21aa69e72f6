use std::collections::BTreeMap;

use otastream_jobs::{
    Action, Engine, ExecutionStatus, Job, JobExecution, JobSpec, JobStatus, NoGroups,
    TargetResolver,
};
use serde_json::Value;

/// A fixed start time (epoch ms), mid-second on purpose.
pub const T0: u64 = 1_700_000_000_250;
/// One minute in ms.
pub const MINUTE: u64 = 60_000;

pub const DOC: &str = r#"{"afr_ota":{"protocols":["MQTT"],"streamname":"AFR_OTA-s1","files":[{"filepath":"/device/updates","filesize":309929,"fileid":0,"certfile":"/certs/signer.pem","sig-sha256-ecdsa":"MEQCIA=="}]}}"#;

pub fn thing_arn(thing: &str) -> String {
    format!("arn:aws:iot:us-east-1:123456789012:thing/{thing}")
}

pub fn group_arn(group: &str) -> String {
    format!("arn:aws:iot:us-east-1:123456789012:thinggroup/{group}")
}

/// A SNAPSHOT job with DOC targeting `things` by ARN.
pub fn spec(job_id: &str, things: &[&str]) -> JobSpec {
    JobSpec {
        job_arn: format!("arn:aws:iot:us-east-1:123456789012:job/{job_id}"),
        job_id: job_id.into(),
        targets: things.iter().map(|t| thing_arn(t)).collect(),
        document: DOC.into(),
        ..JobSpec::default()
    }
}

/// Thing names `prefix0 .. prefix{n-1}`.
pub fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

/// Records persisted through `Save*`/`DeleteJob` actions, as a driver's store holds them.
#[derive(Debug, Default)]
pub struct Store {
    pub jobs: BTreeMap<String, Job>,
    pub executions: BTreeMap<(String, String), JobExecution>,
}

impl Store {
    pub fn apply(&mut self, actions: &[Action]) {
        for action in actions {
            match action {
                Action::SaveJob(job) => {
                    self.jobs.insert(job.spec.job_id.clone(), (**job).clone());
                }
                Action::SaveExecution(e) => {
                    self.executions
                        .insert((e.job_id.clone(), e.thing_name.clone()), e.clone());
                }
                Action::DeleteExecution { job_id, thing } => {
                    self.executions.remove(&(job_id.clone(), thing.clone()));
                }
                Action::DeleteJob { job_id } => {
                    self.jobs.remove(job_id);
                    self.executions.retain(|(j, _), _| j != job_id);
                }
                _ => {}
            }
        }
    }

    pub fn restore(&self, now: u64) -> Engine {
        Engine::restore(
            self.jobs.values().cloned().collect(),
            self.executions.values().cloned().collect(),
            now,
        )
    }
}

/// An engine, its store and a simulated clock.
pub struct Harness {
    pub engine: Engine,
    pub store: Store,
    pub now: u64,
}

impl Harness {
    pub fn new() -> Self {
        Self {
            engine: Engine::new(),
            store: Store::default(),
            now: T0,
        }
    }

    /// Creates a job (must succeed) and persists its actions.
    pub fn create(&mut self, spec: JobSpec) -> Vec<Action> {
        self.create_with(spec, &NoGroups)
    }

    pub fn create_with(&mut self, spec: JobSpec, resolver: &dyn TargetResolver) -> Vec<Action> {
        let actions = self
            .engine
            .handle_create_job(spec, resolver, self.now)
            .expect("create job");
        self.store.apply(&actions);
        actions
    }

    /// A device request at the current time.
    pub fn device(&mut self, thing: &str, suffix: &str, payload: &str) -> Vec<Action> {
        let actions =
            self.engine
                .handle_device_request(thing, suffix, payload.as_bytes(), self.now);
        self.store.apply(&actions);
        actions
    }

    /// Runs every timeout up to and including `until`, then sets the clock to `until`.
    pub fn advance_to(&mut self, until: u64) -> Vec<Action> {
        let mut all = Vec::new();
        while let Some(at) = self.engine.poll_timeout() {
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            let actions = self.engine.handle_timeout(self.now);
            self.store.apply(&actions);
            all.extend(actions);
        }
        self.now = until;
        all
    }

    /// The job's status, if it exists.
    pub fn job_status(&self, job_id: &str) -> Option<JobStatus> {
        self.engine.job(job_id).map(|j| j.status)
    }

    /// The status of `job_id`'s execution on `thing`, if it exists.
    pub fn exec_status(&self, job_id: &str, thing: &str) -> Option<ExecutionStatus> {
        self.engine.execution(job_id, thing).map(|e| e.status)
    }

    pub fn restart(&mut self) {
        self.engine = self.store.restore(self.now);
    }
}

/// The single `Reply` among `actions`: (topic suffix, payload text).
pub fn reply_text(actions: &[Action]) -> (String, String) {
    let replies: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply {
                topic_suffix,
                payload,
                ..
            } => Some((
                topic_suffix.clone(),
                String::from_utf8(payload.clone()).expect("utf-8"),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 1, "exactly one reply expected: {actions:?}");
    replies.into_iter().next().expect("one reply")
}

/// The single `Reply`, parsed.
pub fn reply(actions: &[Action]) -> (String, Value) {
    let (topic, text) = reply_text(actions);
    (topic, serde_json::from_str(&text).expect("reply is JSON"))
}

/// Payloads of `NotifyNext` actions for `thing`.
pub fn notify_next(actions: &[Action], thing: &str) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::NotifyNext { thing: t, payload } if t == thing => {
                Some(serde_json::from_slice(payload).expect("notify-next is JSON"))
            }
            _ => None,
        })
        .collect()
}

/// Number of `NotifyNext` actions.
pub fn notify_next_count(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::NotifyNext { .. }))
        .count()
}

/// Number of `Notify` actions.
pub fn notify_count(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Notify { .. }))
        .count()
}

/// Executions released by these actions (saved with `releasedAt` = now, status QUEUED, v1).
pub fn released(actions: &[Action]) -> Vec<(String, u64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SaveExecution(e) if e.released_at.is_some() && e.version_number == 1 => {
                Some((e.thing_name.clone(), e.released_at.unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}
