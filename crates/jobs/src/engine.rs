//! [`Engine`]: the in-memory jobs state and the one funnel every change goes through.
//!
//! # Calling protocol
//! 1. Build with [`Engine::new`] or [`Engine::restore`] (from every persisted record).
//! 2. Feed inputs through the `handle_*` methods (control plane, group membership, device
//!    requests, [`Engine::handle_timeout`]); each returns the [`Action`]s to carry out **in
//!    order**: `Save*`/`Delete*` first (persist them before publishing anything), then the
//!    `Reply`, then `Notify`/`NotifyNext`.
//! 3. After every call, ask [`Engine::poll_timeout`] when to call `handle_timeout` next.
//!
//! Every execution change goes through `put`, which keeps the per-job counts, the timer index
//! and the "before" view of each touched thing; `finish` turns the collected effects into
//! actions, emitting `NotifyNext` only when the identity of a thing's next execution changed
//! and `Notify` only when its set of pending jobs changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use crate::counts::StatusCounts;
use crate::execution::{ExecutionStatus, JobExecution};
use crate::model::{Job, JobStatus, Target};
use crate::rollout::{current_rate, next_release_at};

/// Something the driver must do, in the order returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Persist (insert or replace) this job record (boxed: it is the large one).
    SaveJob(Box<Job>),
    /// Persist (insert or replace) this execution record, keyed by (jobId, thingName).
    SaveExecution(JobExecution),
    /// Delete the job and all its executions.
    DeleteJob {
        /// The job.
        job_id: String,
    },
    /// Delete one execution record.
    DeleteExecution {
        /// The job.
        job_id: String,
        /// The thing.
        thing: String,
    },
    /// Publish `payload` to `$aws/things/<thing>/jobs/<topic_suffix>` (the requester gets it
    /// even without a subscription).
    Reply {
        /// The requesting thing.
        thing: String,
        /// E.g. `$next/get/accepted`.
        topic_suffix: String,
        /// JSON bytes.
        payload: Vec<u8>,
    },
    /// Publish `payload` to `$aws/things/<thing>/jobs/notify-next`.
    NotifyNext {
        /// The thing.
        thing: String,
        /// JSON bytes.
        payload: Vec<u8>,
    },
    /// Publish `payload` to `$aws/things/<thing>/jobs/notify`.
    Notify {
        /// The thing.
        thing: String,
        /// JSON bytes.
        payload: Vec<u8>,
    },
}

impl Action {
    /// The full MQTT topic for publish actions (`None` for persistence actions).
    pub fn topic(&self) -> Option<String> {
        match self {
            Self::Reply {
                thing,
                topic_suffix,
                ..
            } => Some(jobs_topic(thing, topic_suffix)),
            Self::NotifyNext { thing, .. } => Some(jobs_topic(thing, "notify-next")),
            Self::Notify { thing, .. } => Some(jobs_topic(thing, "notify")),
            Self::SaveJob(_)
            | Self::SaveExecution(_)
            | Self::DeleteJob { .. }
            | Self::DeleteExecution { .. } => None,
        }
    }
}

/// `$aws/things/<thing>/jobs/<suffix>`.
pub fn jobs_topic(thing: &str, suffix: &str) -> String {
    format!("$aws/things/{thing}/jobs/{suffix}")
}

/// Turns `${aws:iot:s3-presigned-url:<url>}` placeholders into presigned URLs when a device
/// fetches a job document. Implemented by the driver (it holds the credentials); must be pure
/// given `now` (epoch ms).
pub trait Presigner: Send + Sync {
    /// A presigned GET URL for `url`, valid `expires_in_sec` seconds from `now`; `None` leaves
    /// the placeholder as it is.
    fn presign(&self, url: &str, expires_in_sec: u64, now: u64) -> Option<String>;
}

/// One job and its derived indexes.
#[derive(Debug)]
pub(crate) struct JobEntry {
    pub(crate) job: Job,
    pub(crate) targets: Vec<Target>,
    /// Things that have an execution of this job.
    pub(crate) members: BTreeSet<String>,
    /// Things whose QUEUED execution waits for the rollout pace, in release order.
    pub(crate) unreleased: VecDeque<String>,
    pub(crate) counts: StatusCounts,
}

impl JobEntry {
    pub(crate) fn new(job: Job) -> Self {
        let targets = job.spec.targets.iter().map(|t| Target::parse(t)).collect();
        Self {
            job,
            targets,
            members: BTreeSet::new(),
            unreleased: VecDeque::new(),
            counts: StatusCounts::default(),
        }
    }

    pub(crate) fn in_progress_timeout(&self) -> Option<u64> {
        self.job
            .spec
            .timeout_config
            .as_ref()
            .and_then(|t| t.in_progress_timeout_in_minutes)
    }

    /// When the next held-back execution is due, if any is waiting.
    pub(crate) fn next_release(&self) -> Option<u64> {
        if self.job.status != JobStatus::InProgress || self.unreleased.is_empty() {
            return None;
        }
        let rollout = self.job.spec.job_executions_rollout_config.as_ref();
        Some(next_release_at(rollout, &self.job.rollout_progress))
    }
}

/// What one thing sees: its next execution's identity and its pending job ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThingView {
    pub(crate) next: Option<(String, u64)>,
    pub(crate) pending: BTreeSet<String>,
}

/// Changes collected during one `handle_*` call.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) jobs: BTreeSet<String>,
    pub(crate) executions: BTreeSet<(String, String)>,
    pub(crate) deleted_jobs: Vec<String>,
    pub(crate) deleted_executions: Vec<(String, String)>,
    pub(crate) before: BTreeMap<String, ThingView>,
    pub(crate) replies: Vec<Action>,
}

/// The sans-IO jobs engine. See the module docs for the calling protocol.
#[derive(Default)]
pub struct Engine {
    pub(crate) jobs: BTreeMap<String, JobEntry>,
    /// thing → job id → execution.
    pub(crate) things: BTreeMap<String, BTreeMap<String, JobExecution>>,
    /// (deadline ms, job id, thing) of every running step / in-progress timer.
    pub(crate) timers: BTreeSet<(u64, String, String)>,
    pub(crate) presigner: Option<Box<dyn Presigner>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("jobs", &self.jobs.len())
            .field("things", &self.things.len())
            .field("timers", &self.timers.len())
            .field("presigner", &self.presigner.is_some())
            .finish()
    }
}

impl Engine {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the engine from every persisted job and execution. Paced rollouts that fell
    /// behind while the service was down resume at their configured rate from `now` instead of
    /// releasing the backlog at once; overdue timeouts fire at the next `handle_timeout(now)`.
    pub fn restore(jobs: Vec<Job>, executions: Vec<JobExecution>, now: u64) -> Self {
        let mut engine = Self::new();
        for job in jobs {
            engine
                .jobs
                .insert(job.spec.job_id.clone(), JobEntry::new(job));
        }
        let mut held_back: Vec<(u64, String, String)> = Vec::new();
        for exec in executions {
            let Some(entry) = engine.jobs.get_mut(&exec.job_id) else {
                continue;
            };
            entry.counts.add(exec.status);
            entry.members.insert(exec.thing_name.clone());
            if let Some(deadline) = exec.timeout_deadline(entry.in_progress_timeout()) {
                engine
                    .timers
                    .insert((deadline, exec.job_id.clone(), exec.thing_name.clone()));
            }
            if exec.status == ExecutionStatus::Queued && exec.released_at.is_none() {
                held_back.push((exec.queued_at, exec.job_id.clone(), exec.thing_name.clone()));
            }
            engine
                .things
                .entry(exec.thing_name.clone())
                .or_default()
                .insert(exec.job_id.clone(), exec);
        }
        held_back.sort();
        for (_, job_id, thing) in held_back {
            if let Some(entry) = engine.jobs.get_mut(&job_id) {
                entry.unreleased.push_back(thing);
            }
        }
        for entry in engine.jobs.values_mut() {
            let paced = current_rate(
                entry.job.spec.job_executions_rollout_config.as_ref(),
                entry.job.rollout_progress.stage,
            )
            .is_some();
            if let Some(due) = entry.next_release()
                && due < now
                && paced
            {
                entry.job.rollout_progress.stage_anchor += now - due;
            }
        }
        engine
    }

    /// Installs the presigner used for `${aws:iot:s3-presigned-url:…}` placeholders.
    pub fn set_presigner(&mut self, presigner: Box<dyn Presigner>) {
        self.presigner = Some(presigner);
    }

    /// When `handle_timeout` should next be called (epoch ms), if anything is scheduled.
    pub fn poll_timeout(&self) -> Option<u64> {
        let timer = self.timers.first().map(|(deadline, _, _)| *deadline);
        let release = self.jobs.values().filter_map(JobEntry::next_release).min();
        match (timer, release) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every due step / in-progress timeout (→ TIMED_OUT) and releases every execution
    /// whose rollout slot has come.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<Action> {
        let mut fx = Effects::default();
        while let Some(first) = self.timers.first().cloned() {
            if first.0 > now {
                break;
            }
            self.timers.remove(&first);
            let (_, job_id, thing) = first;
            self.time_out(&job_id, &thing, now, &mut fx);
        }
        let due: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, e)| e.next_release().is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in due {
            self.release_due(&job_id, now, &mut fx);
        }
        self.finish(fx, now)
    }

    fn time_out(&mut self, job_id: &str, thing: &str, now: u64, fx: &mut Effects) {
        let Some(mut exec) = self.execution(job_id, thing).cloned() else {
            return;
        };
        if exec.status != ExecutionStatus::InProgress {
            return;
        }
        exec.status = ExecutionStatus::TimedOut;
        exec.step_deadline = None;
        exec.last_updated_at = now;
        exec.version_number += 1;
        self.put(exec, fx);
        self.after_terminal(job_id, thing, now, fx);
    }

    /// Stores `exec` (insert or replace), keeping counts, members and timers consistent and
    /// remembering what its thing saw before the first change of this call.
    pub(crate) fn put(&mut self, exec: JobExecution, fx: &mut Effects) {
        let thing = exec.thing_name.clone();
        let job_id = exec.job_id.clone();
        if !fx.before.contains_key(&thing) {
            let view = self.thing_view(&thing);
            fx.before.insert(thing.clone(), view);
        }
        let old = self.execution(&job_id, &thing).cloned();
        let Some(entry) = self.jobs.get_mut(&job_id) else {
            return;
        };
        let timeout = entry.in_progress_timeout();
        if let Some(old) = old {
            entry.counts.remove(old.status);
            if let Some(deadline) = old.timeout_deadline(timeout) {
                self.timers
                    .remove(&(deadline, job_id.clone(), thing.clone()));
            }
        }
        entry.counts.add(exec.status);
        entry.members.insert(thing.clone());
        if let Some(deadline) = exec.timeout_deadline(timeout) {
            self.timers
                .insert((deadline, job_id.clone(), thing.clone()));
        }
        self.things
            .entry(thing.clone())
            .or_default()
            .insert(job_id.clone(), exec);
        fx.executions.insert((job_id, thing));
    }

    /// Forgets the execution of `job_id` on `thing` (timers, counts, release queue), remembering
    /// what the thing saw before.
    pub(crate) fn remove_execution(&mut self, job_id: &str, thing: &str, fx: &mut Effects) {
        if !fx.before.contains_key(thing) {
            let view = self.thing_view(thing);
            fx.before.insert(thing.to_owned(), view);
        }
        let Some(exec) = self.things.get_mut(thing).and_then(|m| m.remove(job_id)) else {
            return;
        };
        fx.executions.remove(&(job_id.to_owned(), thing.to_owned()));
        if let Some(entry) = self.jobs.get_mut(job_id) {
            entry.counts.remove(exec.status);
            entry.members.remove(thing);
            entry.unreleased.retain(|t| t != thing);
            if let Some(deadline) = exec.timeout_deadline(entry.in_progress_timeout()) {
                self.timers
                    .remove(&(deadline, job_id.to_owned(), thing.to_owned()));
            }
        }
    }

    /// Turns collected effects into ordered actions: saves, deletes, replies, notifications.
    pub(crate) fn finish(&self, fx: Effects, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for job_id in &fx.jobs {
            if let Some(entry) = self.jobs.get(job_id) {
                actions.push(Action::SaveJob(Box::new(entry.job.clone())));
            }
        }
        for (job_id, thing) in &fx.executions {
            if let Some(exec) = self.execution(job_id, thing) {
                actions.push(Action::SaveExecution(exec.clone()));
            }
        }
        for (job_id, thing) in fx.deleted_executions {
            actions.push(Action::DeleteExecution { job_id, thing });
        }
        for job_id in fx.deleted_jobs {
            actions.push(Action::DeleteJob { job_id });
        }
        actions.extend(fx.replies);
        for (thing, before) in &fx.before {
            self.notifications(thing, before, now, &mut actions);
        }
        actions
    }

    /// The execution of `job_id` on `thing`, released or not.
    pub fn execution(&self, job_id: &str, thing: &str) -> Option<&JobExecution> {
        self.things.get(thing)?.get(job_id)
    }

    /// The job record.
    pub fn job(&self, job_id: &str) -> Option<&Job> {
        self.jobs.get(job_id).map(|e| &e.job)
    }

    /// Every job, by id.
    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values().map(|e| &e.job)
    }

    /// Execution counts by status for a job.
    pub fn job_counts(&self, job_id: &str) -> Option<StatusCounts> {
        self.jobs.get(job_id).map(|e| e.counts)
    }

    /// Every execution of a job, by thing name.
    pub fn executions_for_job(&self, job_id: &str) -> Vec<&JobExecution> {
        let Some(entry) = self.jobs.get(job_id) else {
            return Vec::new();
        };
        entry
            .members
            .iter()
            .filter_map(|thing| self.execution(job_id, thing))
            .collect()
    }

    /// Every execution on a thing, by job id.
    pub fn executions_for_thing(&self, thing: &str) -> Vec<&JobExecution> {
        self.things
            .get(thing)
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }
}
