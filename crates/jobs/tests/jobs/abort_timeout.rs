use otastream_jobs::{
    AbortAction, AbortConfig, AbortCriteria, Action, ExecutionStatus, FailureType, JobSpec,
    JobStatus, TimeoutConfig,
};

use crate::support::{Harness, MINUTE, names, notify_next, spec};

fn abort_spec(things: &[String], failure_type: FailureType, threshold: f64, min: u32) -> JobSpec {
    let refs: Vec<&str> = things.iter().map(String::as_str).collect();
    JobSpec {
        abort_config: Some(AbortConfig {
            criteria_list: vec![AbortCriteria {
                failure_type,
                action: AbortAction::Cancel,
                threshold_percentage: threshold,
                min_number_of_executed_things: min,
            }],
        }),
        ..spec("j", &refs)
    }
}

/// FAILED ≥ 50 % with at least 4 executed things: 2 failures + 1 success (67 %, but only 3
/// executed) do not abort; the 4th outcome (a failure: 75 %) aborts at that very event — the
/// job and its queued and in-progress executions are CANCELED and the devices told.
#[test]
fn abort_at_the_crossing_event_not_before_minimum() {
    let mut h = Harness::new();
    let things = names("t", 10);
    h.create(abort_spec(&things, FailureType::Failed, 50.0, 4));
    h.device("t0000", "j/update", r#"{"status":"FAILED"}"#);
    h.device("t0001", "j/update", r#"{"status":"FAILED"}"#);
    h.device("t0002", "j/update", r#"{"status":"SUCCEEDED"}"#);
    h.device("t0003", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    assert_eq!(h.job_status("j"), Some(JobStatus::InProgress));
    let actions = h.device("t0004", "j/update", r#"{"status":"FAILED"}"#);
    let job = h.engine.job("j").expect("job");
    assert_eq!(job.status, JobStatus::Canceled);
    assert!(
        job.comment
            .as_deref()
            .is_some_and(|c| c.contains("aborted"))
    );
    assert_eq!(h.exec_status("j", "t0003"), Some(ExecutionStatus::Canceled));
    assert_eq!(h.exec_status("j", "t0009"), Some(ExecutionStatus::Canceled));
    assert_eq!(
        h.exec_status("j", "t0002"),
        Some(ExecutionStatus::Succeeded)
    );
    assert_eq!(h.exec_status("j", "t0004"), Some(ExecutionStatus::Failed));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SaveJob(j) if j.status == JobStatus::Canceled))
    );
    assert_eq!(notify_next(&actions, "t0009").len(), 1);
    assert_eq!(h.store.jobs["j"].status, JobStatus::Canceled);
    let counts = h.engine.job_counts("j").expect("counts");
    assert_eq!(counts.get(ExecutionStatus::Canceled), 6);
    let (_, body) =
        crate::support::reply(&h.device("t0005", "j/update", r#"{"status":"SUCCEEDED"}"#));
    assert_eq!(body["code"], "InvalidStateTransition");
}

/// Below the threshold nothing happens, and failure types are counted separately: REJECTED
/// does not count for a FAILED criterion but does for ALL.
#[test]
fn failure_types() {
    let mut h = Harness::new();
    let things = names("t", 6);
    h.create(abort_spec(&things, FailureType::Failed, 50.0, 2));
    for t in ["t0000", "t0001", "t0002"] {
        h.device(t, "j/update", r#"{"status":"REJECTED"}"#);
    }
    assert_eq!(h.job_status("j"), Some(JobStatus::InProgress));

    let mut h = Harness::new();
    h.create(abort_spec(&things, FailureType::All, 50.0, 2));
    h.device("t0000", "j/update", r#"{"status":"SUCCEEDED"}"#);
    h.device("t0001", "j/update", r#"{"status":"SUCCEEDED"}"#);
    h.device("t0002", "j/update", r#"{"status":"REJECTED"}"#);
    assert_eq!(h.job_status("j"), Some(JobStatus::InProgress));
    h.device("t0003", "j/update", r#"{"status":"REJECTED"}"#);
    assert_eq!(h.job_status("j"), Some(JobStatus::Canceled));
}

/// TIMED_OUT executions count for a TIMED_OUT criterion: the timeout that crosses it aborts.
#[test]
fn timeouts_can_abort() {
    let mut h = Harness::new();
    let things = names("t", 4);
    let mut s = abort_spec(&things, FailureType::TimedOut, 100.0, 2);
    s.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(1),
    });
    h.create(s);
    h.device("t0000", "start-next", "");
    h.now += 1000;
    h.device("t0001", "start-next", "");
    let start = h.now;
    h.advance_to(start + MINUTE - 1000);
    assert_eq!(h.exec_status("j", "t0000"), Some(ExecutionStatus::TimedOut));
    assert_eq!(h.job_status("j"), Some(JobStatus::InProgress));
    h.advance_to(start + MINUTE);
    assert_eq!(h.exec_status("j", "t0001"), Some(ExecutionStatus::TimedOut));
    assert_eq!(h.job_status("j"), Some(JobStatus::Canceled));
    assert_eq!(h.exec_status("j", "t0003"), Some(ExecutionStatus::Canceled));
}

/// jobExecutionsRetryConfig: FAILED is retried twice (execution numbers 2 and 3, each a new
/// next job for the device); a third failure is final and completes the SNAPSHOT job.
/// TIMED_OUT is not retried by a FAILED criterion.
#[test]
fn retries_failed_executions() {
    use otastream_jobs::{RetryConfig, RetryCriteria};
    let mut h = Harness::new();
    let mut s = spec("j", &["a", "b"]);
    s.job_executions_retry_config = Some(RetryConfig {
        criteria_list: vec![RetryCriteria {
            failure_type: FailureType::Failed,
            number_of_retries: 2,
        }],
    });
    s.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(1),
    });
    h.create(s);
    for attempt in 1..=2u64 {
        let actions = h.device("a", "j/update", r#"{"status":"FAILED"}"#);
        let next = notify_next(&actions, "a");
        assert_eq!(next.len(), 1, "attempt {attempt}");
        assert_eq!(next[0]["execution"]["executionNumber"], attempt + 1);
        assert_eq!(next[0]["execution"]["status"], "QUEUED");
        let exec = &h.store.executions[&("j".into(), "a".into())];
        assert_eq!(
            (exec.execution_number, exec.retry_attempt),
            (attempt + 1, attempt as u32)
        );
    }
    h.device(
        "a",
        "j/update",
        r#"{"status":"FAILED","executionNumber":3}"#,
    );
    assert_eq!(h.exec_status("j", "a"), Some(ExecutionStatus::Failed));
    h.device("b", "start-next", "");
    h.advance_to(h.now + MINUTE);
    assert_eq!(h.exec_status("j", "b"), Some(ExecutionStatus::TimedOut));
    assert_eq!(h.job_status("j"), Some(JobStatus::Completed));
}
