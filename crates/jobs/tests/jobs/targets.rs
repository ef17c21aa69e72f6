use std::collections::BTreeMap;

use otastream_jobs::{Action, ExecutionStatus, JobSpec, JobStatus, JobsError, TargetSelection};

use crate::support::{Harness, group_arn, notify_next, reply, spec};

fn groups(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(g, m)| ((*g).to_owned(), m.iter().map(|t| (*t).to_owned()).collect()))
        .collect()
}

fn group_spec(job_id: &str, group: &str, selection: TargetSelection) -> JobSpec {
    JobSpec {
        targets: vec![group_arn(group)],
        target_selection: selection,
        ..spec(job_id, &[])
    }
}

/// A SNAPSHOT job completes (with completedAt) when its last execution becomes terminal.
#[test]
fn snapshot_completion() {
    let mut h = Harness::new();
    h.create(spec("j", &["a", "b"]));
    h.device("a", "j/update", r#"{"status":"SUCCEEDED"}"#);
    assert_eq!(h.job_status("j"), Some(JobStatus::InProgress));
    h.now += 5000;
    let actions = h.device("b", "j/update", r#"{"status":"REJECTED"}"#);
    let job = h.engine.job("j").expect("job");
    assert_eq!(
        (job.status, job.completed_at),
        (JobStatus::Completed, Some(h.now))
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SaveJob(j) if j.status == JobStatus::Completed))
    );
}

/// CONTINUOUS: a thing added to the target group later gets an execution and a notify-next;
/// a SNAPSHOT job on the same group does not; the CONTINUOUS job never completes by itself.
#[test]
fn continuous_late_joiner() {
    let mut h = Harness::new();
    let members = groups(&[("g", &["a"])]);
    h.create_with(
        group_spec("cont", "g", TargetSelection::Continuous),
        &members,
    );
    h.create_with(group_spec("snap", "g", TargetSelection::Snapshot), &members);
    h.now += 1000;
    let actions = h.engine.handle_thing_added_to_group("late", "g", h.now);
    h.store.apply(&actions);
    let next = notify_next(&actions, "late");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["execution"]["jobId"], "cont");
    assert!(h.engine.execution("snap", "late").is_none());
    assert!(
        h.engine
            .handle_thing_added_to_group("late", "other", h.now)
            .is_empty()
    );
    for thing in ["a", "late"] {
        h.device(thing, "cont/update", r#"{"status":"SUCCEEDED"}"#);
    }
    assert_eq!(h.job_status("cont"), Some(JobStatus::InProgress));
    h.device("a", "snap/update", r#"{"status":"SUCCEEDED"}"#);
    assert_eq!(h.job_status("snap"), Some(JobStatus::Completed));
}

/// Leaving the group REMOVEs an unfinished execution (the device is told it has no next job);
/// rejoining a CONTINUOUS job gives a fresh execution numbered 2. A thing still targeted
/// through another group keeps its execution.
#[test]
fn removed_from_group() {
    let mut h = Harness::new();
    let before = groups(&[("g", &["a", "b"]), ("h", &["b"])]);
    let mut s = group_spec("j", "g", TargetSelection::Continuous);
    s.targets.push(group_arn("h"));
    h.create_with(s, &before);
    let after = groups(&[("g", &[]), ("h", &["b"])]);
    let actions = h
        .engine
        .handle_thing_removed_from_group("a", "g", &after, h.now);
    h.store.apply(&actions);
    assert_eq!(h.exec_status("j", "a"), Some(ExecutionStatus::Removed));
    assert_eq!(
        notify_next(&actions, "a"),
        [serde_json::json!({"timestamp": h.now / 1000})]
    );
    let actions = h
        .engine
        .handle_thing_removed_from_group("b", "g", &after, h.now);
    assert!(actions.is_empty());
    assert_eq!(h.exec_status("j", "b"), Some(ExecutionStatus::Queued));
    let actions = h.engine.handle_thing_added_to_group("a", "g", h.now);
    h.store.apply(&actions);
    let exec = h.engine.execution("j", "a").expect("execution");
    assert_eq!(
        (exec.status, exec.execution_number),
        (ExecutionStatus::Queued, 2)
    );
    let (_, body) = reply(&h.device("a", "$next/get", ""));
    assert_eq!(body["execution"]["executionNumber"], 2);
}

/// Bare names resolve to groups when the resolver knows them; unknown group ARNs are
/// ResourceNotFound; duplicate ids, bad ids and bad documents are refused without state change.
#[test]
fn creation_rules() {
    let mut h = Harness::new();
    let members = groups(&[("fleet", &["x", "y"])]);
    h.create_with(
        JobSpec {
            targets: vec!["fleet".into(), "z".into()],
            ..spec("j", &[])
        },
        &members,
    );
    assert_eq!(h.engine.executions_for_job("j").len(), 3);
    let err = |h: &mut Harness, s: JobSpec| {
        h.engine
            .handle_create_job(s, &members, h.now)
            .expect_err("refused")
    };
    assert!(matches!(
        err(&mut h, spec("j", &["q"])),
        JobsError::ResourceAlreadyExists(_)
    ));
    assert!(matches!(
        err(&mut h, group_spec("k", "nope", TargetSelection::Snapshot)),
        JobsError::ResourceNotFound(_)
    ));
    assert!(matches!(
        err(&mut h, spec("bad id", &["q"])),
        JobsError::InvalidRequest(_)
    ));
    assert!(matches!(
        err(
            &mut h,
            JobSpec {
                document: "[1]".into(),
                ..spec("k", &["q"])
            }
        ),
        JobsError::InvalidRequest(_)
    ));
    assert!(matches!(
        err(
            &mut h,
            JobSpec {
                targets: vec![],
                ..spec("k", &[])
            }
        ),
        JobsError::InvalidRequest(_)
    ));
    assert!(matches!(
        err(&mut h, spec("k", &["bad thing"])),
        JobsError::InvalidRequest(_)
    ));
    assert!(h.engine.job("k").is_none());
    assert!(h.engine.executions_for_thing("q").is_empty());
}

/// CancelJob cancels QUEUED executions only; with force, IN_PROGRESS ones too. DeleteJob
/// needs force while IN_PROGRESS and tells devices their next job changed.
#[test]
fn cancel_and_delete() {
    let mut h = Harness::new();
    h.create(spec("j", &["a", "b"]));
    h.device("a", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    let actions = h
        .engine
        .handle_cancel_job("j", false, Some("BAD_IMAGE".into()), None, h.now)
        .expect("cancel");
    h.store.apply(&actions);
    assert_eq!(h.exec_status("j", "a"), Some(ExecutionStatus::InProgress));
    assert_eq!(h.exec_status("j", "b"), Some(ExecutionStatus::Canceled));
    let job = h.engine.job("j").expect("job");
    assert_eq!(
        (job.status, job.reason_code.as_deref(), job.force_canceled),
        (JobStatus::Canceled, Some("BAD_IMAGE"), false)
    );
    let actions = h
        .engine
        .handle_cancel_job("j", true, None, None, h.now)
        .expect("force cancel");
    assert_eq!(notify_next(&actions, "a").len(), 1);
    assert_eq!(h.exec_status("j", "a"), Some(ExecutionStatus::Canceled));
    assert!(h.engine.job("j").is_some_and(|j| j.force_canceled));

    let mut h = Harness::new();
    h.create(spec("d", &["a"]));
    assert!(matches!(
        h.engine.handle_delete_job("d", false, h.now),
        Err(JobsError::InvalidStateTransition { state: None, .. })
    ));
    let actions = h
        .engine
        .handle_delete_job("d", true, h.now)
        .expect("delete");
    h.store.apply(&actions);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::DeleteJob { job_id } if job_id == "d"))
    );
    assert_eq!(notify_next(&actions, "a").len(), 1);
    assert!(h.store.executions.is_empty() && h.store.jobs.is_empty());
    assert!(h.engine.job("d").is_none());
    let (_, body) = reply(&h.device("a", "d/get", ""));
    assert_eq!(body["code"], "ResourceNotFound");
    assert!(matches!(
        h.engine.handle_cancel_job("d", false, None, None, h.now),
        Err(JobsError::ResourceNotFound(_))
    ));
}

/// CreateJob config limits (AWS-API §7.2): rate 1..=1000, incrementFactor 1.1..=5, criteria
/// present, threshold ≤ 100, minNumberOfExecutedThings ≥ 1, timeout 1..=10080 min, presigned
/// expiry 60..=3600 s. Each violation is InvalidRequest and creates nothing.
#[test]
fn config_validation() {
    use otastream_jobs::{
        AbortAction, AbortConfig, AbortCriteria, ExponentialRate, FailureType, PresignedUrlConfig,
        RateIncreaseCriteria, RolloutConfig, TimeoutConfig,
    };
    let rate = |max| {
        Some(RolloutConfig {
            maximum_per_minute: Some(max),
            exponential_rate: None,
        })
    };
    let exp = |factor, notified| {
        Some(RolloutConfig {
            maximum_per_minute: None,
            exponential_rate: Some(ExponentialRate {
                base_rate_per_minute: 10,
                increment_factor: factor,
                rate_increase_criteria: RateIncreaseCriteria {
                    number_of_notified_things: notified,
                    number_of_succeeded_things: None,
                },
            }),
        })
    };
    let abort = |threshold, min| {
        Some(AbortConfig {
            criteria_list: vec![AbortCriteria {
                failure_type: FailureType::Failed,
                action: AbortAction::Cancel,
                threshold_percentage: threshold,
                min_number_of_executed_things: min,
            }],
        })
    };
    let base = spec("k", &["a"]);
    let bad = [
        JobSpec {
            job_executions_rollout_config: rate(0),
            ..base.clone()
        },
        JobSpec {
            job_executions_rollout_config: rate(1001),
            ..base.clone()
        },
        JobSpec {
            job_executions_rollout_config: exp(1.0, Some(5)),
            ..base.clone()
        },
        JobSpec {
            job_executions_rollout_config: exp(2.0, None),
            ..base.clone()
        },
        JobSpec {
            abort_config: abort(100.5, 1),
            ..base.clone()
        },
        JobSpec {
            abort_config: abort(50.0, 0),
            ..base.clone()
        },
        JobSpec {
            abort_config: Some(AbortConfig {
                criteria_list: vec![],
            }),
            ..base.clone()
        },
        JobSpec {
            timeout_config: Some(TimeoutConfig {
                in_progress_timeout_in_minutes: Some(0),
            }),
            ..base.clone()
        },
        JobSpec {
            presigned_url_config: Some(PresignedUrlConfig {
                role_arn: None,
                expires_in_sec: Some(30),
            }),
            ..base.clone()
        },
        JobSpec {
            document: format!(r#"{{"pad":"{}"}}"#, "x".repeat(32_768)),
            ..base.clone()
        },
    ];
    let mut h = Harness::new();
    for s in bad {
        let result = h
            .engine
            .handle_create_job(s.clone(), &otastream_jobs::NoGroups, h.now);
        assert!(matches!(result, Err(JobsError::InvalidRequest(_))), "{s:?}");
    }
    assert!(h.engine.job("k").is_none());
    let good = [
        JobSpec {
            job_executions_rollout_config: rate(1000),
            ..base.clone()
        },
        JobSpec {
            job_executions_rollout_config: exp(5.0, Some(1)),
            job_id: "k2".into(),
            ..base.clone()
        },
        JobSpec {
            abort_config: abort(100.0, 1),
            job_id: "k3".into(),
            ..base.clone()
        },
    ];
    for s in good {
        h.create(s);
    }
}
