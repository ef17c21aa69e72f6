use otastream_jobs::{
    Action, Engine, ExecutionStatus, Job, JobExecution, JobStatus, RolloutProgress, TimeoutConfig,
};
use serde_json::json;

use crate::support::{Harness, MINUTE, T0, reply, spec};

use ExecutionStatus::{Failed, InProgress, Queued, Rejected, Succeeded, TimedOut};

/// The device-legal transitions of PROTOCOL §2.5, written out independently of the engine.
const LEGAL: [(ExecutionStatus, ExecutionStatus); 7] = [
    (Queued, InProgress),
    (Queued, Rejected),
    (Queued, Failed),
    (Queued, Succeeded),
    (InProgress, InProgress),
    (InProgress, Succeeded),
    (InProgress, Failed),
];

fn job_record() -> Job {
    Job {
        spec: spec("j", &["dev"]),
        status: JobStatus::InProgress,
        created_at: T0,
        last_updated_at: T0,
        completed_at: None,
        comment: None,
        reason_code: None,
        force_canceled: false,
        rollout_progress: RolloutProgress::default(),
    }
}

fn execution_in(status: ExecutionStatus) -> JobExecution {
    let mut exec = JobExecution::queued("j", "dev", 1, T0);
    exec.status = status;
    exec.version_number = 5;
    exec.released_at = Some(T0);
    if status != Queued {
        exec.started_at = Some(T0 + 1000);
    }
    exec
}

/// All 64 (from, to) pairs: legal ones are accepted and bump the version by one; every other
/// one is rejected with InvalidStateTransition, carries the unchanged state and saves nothing.
#[test]
fn transition_table() {
    for from in ExecutionStatus::ALL {
        for to in ExecutionStatus::ALL {
            let mut engine = Engine::restore(vec![job_record()], vec![execution_in(from)], T0);
            let payload = format!(r#"{{"status":"{}"}}"#, to.as_str());
            let actions =
                engine.handle_device_request("dev", "j/update", payload.as_bytes(), T0 + 5000);
            let (topic, body) = reply(&actions);
            let exec = engine.execution("j", "dev").expect("execution");
            if LEGAL.contains(&(from, to)) {
                assert_eq!(topic, "j/update/accepted", "{from:?}->{to:?}: {body}");
                assert_eq!(exec.status, to, "{from:?}->{to:?}");
                assert_eq!(exec.version_number, 6);
                assert!(
                    actions
                        .iter()
                        .any(|a| matches!(a, Action::SaveExecution(e) if e.status == to))
                );
            } else {
                assert_eq!(
                    topic, "j/update/rejected",
                    "{from:?}->{to:?} must be refused"
                );
                assert_eq!(body["code"], "InvalidStateTransition", "{from:?}->{to:?}");
                assert_eq!(body["executionState"]["status"], from.as_str());
                assert_eq!(body["executionState"]["versionNumber"], 5);
                assert_eq!(exec.status, from);
                assert_eq!(exec.version_number, 5);
                assert!(
                    !actions
                        .iter()
                        .any(|a| matches!(a, Action::SaveExecution(_) | Action::SaveJob(_)))
                );
            }
        }
    }
}

/// An unknown status or a missing status is InvalidRequest, not a transition error.
#[test]
fn unknown_or_missing_status_is_invalid_request() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    for payload in [
        r#"{"status":"DONE"}"#,
        r#"{"statusDetails":{"a":"b"}}"#,
        "",
        r#"{"status":7}"#,
    ] {
        let (topic, body) = reply(&h.device("dev", "j/update", payload));
        assert_eq!(topic, "j/update/rejected", "{payload}");
        assert_eq!(body["code"], "InvalidRequest", "{payload}");
    }
}

/// expectedVersion is accepted as a JSON number and as quoted digits (the AWS Jobs C
/// library's form); a stale one is VersionMismatch with the current executionState.
#[test]
fn expected_version_number_and_string() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let (topic, _) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","expectedVersion":1}"#,
    ));
    assert_eq!(topic, "j/update/accepted");
    let (topic, _) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","expectedVersion":"2"}"#,
    ));
    assert_eq!(topic, "j/update/accepted");
    let (topic, body) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"SUCCEEDED","expectedVersion":"2","statusDetails":{"k":"v"},"clientToken":"t1"}"#,
    ));
    assert_eq!(topic, "j/update/rejected");
    assert_eq!(body["code"], "VersionMismatch");
    assert_eq!(body["clientToken"], "t1");
    assert_eq!(
        body["executionState"],
        json!({"status":"IN_PROGRESS","versionNumber":3})
    );
    let (_, body) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"SUCCEEDED","expectedVersion":"x3"}"#,
    ));
    assert_eq!(body["code"], "InvalidRequest");
    let exec = h.engine.execution("j", "dev").expect("execution");
    assert_eq!((exec.status, exec.version_number), (InProgress, 3));
}

/// statusDetails limits: ≤ 10 pairs, key pattern and length, value length, no control chars.
#[test]
fn status_details_validation() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let eleven: serde_json::Map<_, _> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    let ten: serde_json::Map<_, _> = (0..10).map(|i| (format!("k{i}"), json!("v"))).collect();
    let long_key = "k".repeat(129);
    let cases = [
        (json!(eleven), false),
        (json!({"bad key": "v"}), false),
        (json!({ long_key: "v" }), false),
        (json!({"k": ""}), false),
        (json!({"k": "line\nbreak"}), false),
        (json!({"k": "x".repeat(1025)}), false),
        (json!({"k": 5}), false),
        (json!({"k": "x".repeat(1024), "a:b_c-d": "ok"}), true),
        (json!(ten), true),
    ];
    for (details, ok) in cases {
        let payload = json!({"status": "IN_PROGRESS", "statusDetails": details}).to_string();
        let (topic, body) = reply(&h.device("dev", "j/update", &payload));
        if ok {
            assert_eq!(topic, "j/update/accepted", "{payload}");
        } else {
            assert_eq!(topic, "j/update/rejected", "{payload}");
            assert_eq!(body["code"], "InvalidRequest", "{payload}");
        }
    }
}

/// A supplied statusDetails replaces the stored one; an omitted one leaves it unchanged; it
/// survives a restart from the persisted records and comes back in `$next/get`.
#[test]
fn status_details_replace_and_survive_restore() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/76"}}"#,
    );
    h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"ready","updatedBy":"0x0000000a"}}"#,
    );
    h.device("dev", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    h.restart();
    h.now += MINUTE;
    let (_, body) = reply(&h.device("dev", "$next/get", r#"{"clientToken":":dev"}"#));
    assert_eq!(
        body["execution"]["statusDetails"],
        json!({"self_test":"ready","updatedBy":"0x0000000a"})
    );
    assert_eq!(body["execution"]["versionNumber"], 4);
    assert_eq!(body["execution"]["status"], "IN_PROGRESS");
}

/// A step timeout set by start-next fires at exactly the configured minute; a new
/// stepTimeoutInMinutes on update restarts it; -1 cancels it.
#[test]
fn step_timeout() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let started = h.now;
    h.device("dev", "start-next", r#"{"stepTimeoutInMinutes":2}"#);
    assert_eq!(h.engine.poll_timeout(), Some(started + 2 * MINUTE));
    h.advance_to(started + MINUTE);
    h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":3}"#,
    );
    let deadline = started + MINUTE + 3 * MINUTE;
    assert_eq!(h.engine.poll_timeout(), Some(deadline));
    h.advance_to(deadline - 1);
    assert_eq!(h.exec_status("j", "dev"), Some(InProgress));
    h.advance_to(deadline);
    let exec = h.engine.execution("j", "dev").expect("execution");
    assert_eq!((exec.status, exec.last_updated_at), (TimedOut, deadline));
    assert_eq!(
        h.store.executions[&("j".into(), "dev".into())].status,
        TimedOut
    );

    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    h.device("dev", "start-next", r#"{"stepTimeoutInMinutes":2}"#);
    h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":-1}"#,
    );
    assert_eq!(h.engine.poll_timeout(), None);
    let (_, body) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","stepTimeoutInMinutes":0}"#,
    ));
    assert_eq!(body["code"], "InvalidRequest");
}

/// The job's inProgressTimeoutInMinutes runs from startedAt and is not reset by progress
/// updates: TIMED_OUT at exactly the configured minute, not a millisecond earlier.
#[test]
fn in_progress_timeout_at_configured_minute() {
    let mut h = Harness::new();
    let mut s = spec("j", &["dev", "other"]);
    s.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(5),
    });
    h.create(s);
    h.now += 7_000;
    let started = h.now;
    h.device("dev", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    for minute in 1..5 {
        h.advance_to(started + minute * MINUTE);
        h.device(
            "dev",
            "j/update",
            r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"2/76"}}"#,
        );
    }
    h.advance_to(started + 5 * MINUTE - 1);
    assert_eq!(h.exec_status("j", "dev"), Some(InProgress));
    let actions = h.advance_to(started + 5 * MINUTE);
    assert!(actions.iter().any(|a| matches!(a, Action::SaveExecution(e) if e.status == TimedOut && e.last_updated_at == started + 5 * MINUTE)));
    // The QUEUED execution of the other thing has no timer.
    assert_eq!(h.exec_status("j", "other"), Some(Queued));
    assert_eq!(h.engine.poll_timeout(), None);
    let (_, body) = reply(&h.device("dev", "j/update", r#"{"status":"SUCCEEDED"}"#));
    assert_eq!(body["code"], "InvalidStateTransition");
}

/// Timers survive a restart: an overdue in-progress timeout fires at the first handle_timeout.
#[test]
fn timeout_survives_restart() {
    let mut h = Harness::new();
    let mut s = spec("j", &["dev"]);
    s.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(1),
    });
    h.create(s);
    h.device("dev", "start-next", "");
    h.now += 10 * MINUTE;
    h.restart();
    assert!(h.engine.poll_timeout().is_some_and(|t| t <= h.now));
    h.advance_to(h.now);
    assert_eq!(h.exec_status("j", "dev"), Some(TimedOut));
    assert_eq!(h.job_status("j"), Some(JobStatus::Completed));
}

/// executionNumber must match when given (number or quoted digits).
#[test]
fn execution_number_must_match() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let (_, body) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","executionNumber":2}"#,
    ));
    assert_eq!(body["code"], "ResourceNotFound");
    let (topic, _) = reply(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","executionNumber":"1"}"#,
    ));
    assert_eq!(topic, "j/update/accepted");
}
