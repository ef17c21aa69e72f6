use std::collections::BTreeMap;

use otastream_jobs::{
    AbortAction, AbortConfig, AbortCriteria, Action, ExecutionStatus, FailureType, JobSpec,
    JobStatus, RetryConfig, RetryCriteria, RolloutConfig, TargetSelection, TimeoutConfig,
};
use proptest::prelude::*;

use crate::support::{Harness, group_arn, spec};

const THINGS: [&str; 4] = ["t0", "t1", "t2", "t3"];
const JOBS: [&str; 3] = ["j0", "j1", "j2"];

#[derive(Clone, Debug)]
enum Event {
    Create(Plan),
    Device {
        thing: usize,
        suffix: String,
        payload: String,
    },
    Garbage {
        thing: usize,
        suffix: String,
        payload: Vec<u8>,
    },
    Advance {
        ms: u64,
    },
    Join {
        thing: usize,
    },
    Leave {
        thing: usize,
    },
    Cancel {
        job: usize,
        force: bool,
    },
    Delete {
        job: usize,
        force: bool,
    },
    CancelExecution {
        job: usize,
        thing: usize,
        force: bool,
    },
    DeleteExecution {
        job: usize,
        thing: usize,
        force: bool,
    },
    Restart,
}

fn device_request() -> impl Strategy<Value = (String, String)> {
    let job = prop_oneof![Just("j0"), Just("j1"), Just("j2"), Just("$next")];
    let status = prop::sample::select(&ExecutionStatus::ALL[..]);
    let details = prop_oneof![
        Just(String::new()),
        Just(r#","statusDetails":{"self_test":"ready"}"#.to_owned()),
        Just(r#","statusDetails":{"bad key":"x"}"#.to_owned()),
    ];
    let extra = prop_oneof![
        Just(String::new()),
        (0u64..5).prop_map(|v| format!(r#","expectedVersion":{v}"#)),
        (0u64..5).prop_map(|v| format!(r#","expectedVersion":"{v}""#)),
        (-2i64..4).prop_map(|m| format!(r#","stepTimeoutInMinutes":{m}"#)),
        Just(r#","executionNumber":2"#.to_owned()),
    ];
    prop_oneof![
        (job.clone(), status, details.clone(), extra.clone()).prop_map(|(j, s, d, e)| {
            (
                format!("{j}/update"),
                format!(r#"{{"status":"{}"{d}{e},"clientToken":"c"}}"#, s.as_str()),
            )
        }),
        job.prop_map(|j| (format!("{j}/get"), r#"{"clientToken":":t"}"#.to_owned())),
        (details, extra).prop_map(|(d, e)| (
            "start-next".to_owned(),
            format!(r#"{{"clientToken":"s"{d}{e}}}"#)
        )),
        Just(("get".to_owned(), String::new())),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        2 => (0..3usize, 1..16u8, any::<bool>(), prop::option::of(1..4u32), any::<bool>(), prop::option::of(1..3u64), prop::option::of(0..3u32))
            .prop_map(|(job, things, continuous, rate, abort, timeout, retries)| Event::Create(Plan { job, things, continuous, rate, abort, timeout, retries })),
        8 => (0..4usize, device_request()).prop_map(|(thing, (suffix, payload))| Event::Device { thing, suffix, payload }),
        1 => (0..4usize, prop_oneof![Just("j0/update"), Just("x/y/z"), Just("$next/get"), Just("notify")], prop::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(thing, suffix, payload)| Event::Garbage { thing, suffix: suffix.to_owned(), payload }),
        3 => (0..200_000u64).prop_map(|ms| Event::Advance { ms }),
        1 => (0..4usize).prop_map(|thing| Event::Join { thing }),
        1 => (0..4usize).prop_map(|thing| Event::Leave { thing }),
        1 => (0..3usize, any::<bool>()).prop_map(|(job, force)| Event::Cancel { job, force }),
        1 => (0..3usize, any::<bool>()).prop_map(|(job, force)| Event::Delete { job, force }),
        1 => (0..3usize, 0..4usize, any::<bool>()).prop_map(|(job, thing, force)| Event::CancelExecution { job, thing, force }),
        1 => (0..3usize, 0..4usize, any::<bool>()).prop_map(|(job, thing, force)| Event::DeleteExecution { job, thing, force }),
        1 => Just(Event::Restart),
    ]
}

/// A job to create: which id, which things (bit mask), and which configs.
#[derive(Clone, Debug)]
struct Plan {
    job: usize,
    things: u8,
    continuous: bool,
    rate: Option<u32>,
    abort: bool,
    timeout: Option<u64>,
    retries: Option<u32>,
}

fn create_spec(plan: &Plan) -> JobSpec {
    let Plan {
        job,
        things,
        continuous,
        rate,
        abort,
        timeout,
        retries,
    } = *plan;
    let mut targets: Vec<String> = (0..4)
        .filter(|i| things & (1 << i) != 0)
        .map(|i| crate::support::thing_arn(THINGS[i]))
        .collect();
    if continuous {
        targets.push(group_arn("g"));
    }
    JobSpec {
        targets,
        target_selection: if continuous {
            TargetSelection::Continuous
        } else {
            TargetSelection::Snapshot
        },
        job_executions_rollout_config: rate.map(|r| RolloutConfig {
            maximum_per_minute: Some(r),
            exponential_rate: None,
        }),
        abort_config: abort.then(|| AbortConfig {
            criteria_list: vec![AbortCriteria {
                failure_type: FailureType::All,
                action: AbortAction::Cancel,
                threshold_percentage: 50.0,
                min_number_of_executed_things: 2,
            }],
        }),
        job_executions_retry_config: retries.map(|n| RetryConfig {
            criteria_list: vec![RetryCriteria {
                failure_type: FailureType::All,
                number_of_retries: n,
            }],
        }),
        timeout_config: timeout.map(|m| TimeoutConfig {
            in_progress_timeout_in_minutes: Some(m),
        }),
        ..spec(JOBS[job], &[])
    }
}

/// Persists a batch like a driver would and hands it back for checking.
fn persist(h: &mut Harness, actions: Vec<Action>) -> Vec<Action> {
    h.store.apply(&actions);
    actions
}

/// Checks the invariants over one batch of actions and the engine afterwards.
fn check(
    h: &Harness,
    actions: &[Action],
    finals: &mut BTreeMap<(String, String, u64), ExecutionStatus>,
) {
    // Persist before publish.
    if let Some(first) = actions.iter().position(|a| a.topic().is_some()) {
        assert!(
            actions[first..].iter().all(|a| a.topic().is_some()),
            "persist before publish"
        );
    }
    for action in actions {
        match action {
            Action::SaveExecution(e) => {
                assert!(e.version_number >= 1);
                let key = (e.job_id.clone(), e.thing_name.clone(), e.execution_number);
                if let Some(done) = finals.get(&key) {
                    assert_eq!(*done, e.status, "terminal execution changed: {e:?}");
                }
                if e.status.is_terminal() {
                    finals.insert(key, e.status);
                }
                if e.released_at.is_none() {
                    assert!(
                        matches!(
                            e.status,
                            ExecutionStatus::Queued
                                | ExecutionStatus::Canceled
                                | ExecutionStatus::Removed
                        ),
                        "{e:?}"
                    );
                }
                if matches!(
                    e.status,
                    ExecutionStatus::InProgress | ExecutionStatus::TimedOut
                ) {
                    assert!(e.started_at.is_some(), "{e:?}");
                }
            }
            Action::Reply {
                topic_suffix,
                payload,
                ..
            } => {
                assert!(topic_suffix.ends_with("/accepted") || topic_suffix.ends_with("/rejected"));
                assert!(serde_json::from_slice::<serde_json::Value>(payload).is_ok());
            }
            Action::Notify { payload, .. } | Action::NotifyNext { payload, .. } => {
                assert!(serde_json::from_slice::<serde_json::Value>(payload).is_ok());
            }
            _ => {}
        }
    }
    // Everything the engine holds was persisted, and nothing else.
    let live_jobs: Vec<_> = h.engine.jobs().cloned().collect();
    let stored_jobs: Vec<_> = h.store.jobs.values().cloned().collect();
    assert_eq!(live_jobs, stored_jobs);
    for job in h.engine.jobs() {
        let live: Vec<_> = h
            .engine
            .executions_for_job(&job.spec.job_id)
            .into_iter()
            .cloned()
            .collect();
        let stored: Vec<_> = h
            .store
            .executions
            .iter()
            .filter(|((j, _), _)| *j == job.spec.job_id)
            .map(|(_, e)| e.clone())
            .collect();
        assert_eq!(live, stored);
        let counts = h.engine.job_counts(&job.spec.job_id).expect("counts");
        assert_eq!(counts.total(), live.len() as u64);
        if job.status == JobStatus::Completed {
            assert_eq!(job.spec.target_selection, TargetSelection::Snapshot);
            assert!(live.iter().all(|e| e.status.is_terminal()));
        }
    }
}

/// Plays `events` against one harness, checking the invariants after every batch.
fn run(events: Vec<Event>) {
    let mut h = Harness::new();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::from([("g".to_owned(), vec![])]);
    let mut finals = BTreeMap::new();
    for event in events {
        let actions = match event {
            Event::Create(plan) => {
                let actions = h
                    .engine
                    .handle_create_job(create_spec(&plan), &members, h.now)
                    .unwrap_or_default();
                persist(&mut h, actions)
            }
            Event::Device {
                thing,
                suffix,
                payload,
            } => h.device(THINGS[thing], &suffix, &payload),
            Event::Garbage {
                thing,
                suffix,
                payload,
            } => {
                let actions =
                    h.engine
                        .handle_device_request(THINGS[thing], &suffix, &payload, h.now);
                persist(&mut h, actions)
            }
            Event::Advance { ms } => {
                let until = h.now + ms;
                while let Some(at) = h.engine.poll_timeout().filter(|at| *at <= until) {
                    h.now = h.now.max(at);
                    let actions = h.engine.handle_timeout(h.now);
                    h.store.apply(&actions);
                    check(&h, &actions, &mut finals);
                }
                h.now = until;
                Vec::new()
            }
            Event::Join { thing } => {
                let list = members.entry("g".into()).or_default();
                if !list.iter().any(|t| t == THINGS[thing]) {
                    list.push(THINGS[thing].to_owned());
                }
                let actions = h
                    .engine
                    .handle_thing_added_to_group(THINGS[thing], "g", h.now);
                persist(&mut h, actions)
            }
            Event::Leave { thing } => {
                members
                    .entry("g".into())
                    .or_default()
                    .retain(|t| t != THINGS[thing]);
                let actions =
                    h.engine
                        .handle_thing_removed_from_group(THINGS[thing], "g", &members, h.now);
                persist(&mut h, actions)
            }
            Event::Cancel { job, force } => {
                let actions = h
                    .engine
                    .handle_cancel_job(JOBS[job], force, None, None, h.now)
                    .unwrap_or_default();
                persist(&mut h, actions)
            }
            Event::Delete { job, force } => {
                let actions = h
                    .engine
                    .handle_delete_job(JOBS[job], force, h.now)
                    .unwrap_or_default();
                h.store.apply(&actions);
                finals.retain(|(j, _, _), _| j != JOBS[job] || h.engine.job(JOBS[job]).is_some());
                actions
            }
            Event::CancelExecution { job, thing, force } => {
                let actions = h
                    .engine
                    .handle_cancel_job_execution(JOBS[job], THINGS[thing], force, None, None, h.now)
                    .unwrap_or_default();
                persist(&mut h, actions)
            }
            Event::DeleteExecution { job, thing, force } => {
                let number = h
                    .engine
                    .execution(JOBS[job], THINGS[thing])
                    .map_or(1, |e| e.execution_number);
                let actions = h
                    .engine
                    .handle_delete_job_execution(JOBS[job], THINGS[thing], number, force, h.now)
                    .unwrap_or_default();
                h.store.apply(&actions);
                if actions
                    .iter()
                    .any(|a| matches!(a, Action::DeleteExecution { .. }))
                {
                    finals.retain(|(j, t, _), _| j != JOBS[job] || t != THINGS[thing]);
                }
                actions
            }
            Event::Restart => {
                h.restart();
                Vec::new()
            }
        };
        check(&h, &actions, &mut finals);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Random event sequences never panic, never make a terminal execution change, never leave
    /// an unpersisted change, and always answer requests with well-formed JSON.
    #[test]
    fn random_event_sequences(events in prop::collection::vec(event(), 1..60)) {
        run(events);
    }
}
