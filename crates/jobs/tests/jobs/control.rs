use otastream_jobs::{Action, ExecutionStatus, JobSpec, JobStatus, JobsError, RolloutConfig};
use serde_json::json;

use crate::support::{Harness, MINUTE, T0, notify_next, reply, spec};

/// DescribeJob's `job`: seconds with a ms fraction, process details counting every status,
/// processing targets while the rollout still holds executions back.
#[test]
fn describe_job_shape() {
    let mut h = Harness::new();
    let rollout = RolloutConfig {
        maximum_per_minute: Some(1),
        exponential_rate: None,
    };
    h.create(JobSpec {
        job_executions_rollout_config: Some(rollout),
        ..spec("j", &["a", "b"])
    });
    h.device("a", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    let value = serde_json::to_value(h.engine.describe_job("j").expect("job")).expect("json");
    assert_eq!(value["createdAt"], json!(T0 as f64 / 1000.0));
    assert_eq!(value["status"], "IN_PROGRESS");
    assert_eq!(value["targetSelection"], "SNAPSHOT");
    assert_eq!(
        value["jobExecutionsRolloutConfig"],
        json!({"maximumPerMinute": 1})
    );
    assert_eq!(value["jobProcessDetails"]["numberOfInProgressThings"], 1);
    assert_eq!(value["jobProcessDetails"]["numberOfQueuedThings"], 1);
    assert_eq!(
        value["jobProcessDetails"]["processingTargets"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(value.get("completedAt").is_none());
    h.advance_to(T0 + MINUTE);
    h.device("a", "j/update", r#"{"status":"SUCCEEDED"}"#);
    h.device("b", "j/update", r#"{"status":"FAILED"}"#);
    let value = serde_json::to_value(h.engine.describe_job("j").expect("job")).expect("json");
    assert_eq!(value["status"], "COMPLETED");
    assert_eq!(value["completedAt"], json!(h.now as f64 / 1000.0));
    assert_eq!(value["jobProcessDetails"]["numberOfSucceededThings"], 1);
    assert_eq!(value["jobProcessDetails"]["numberOfFailedThings"], 1);
    assert_eq!(value["jobProcessDetails"]["processingTargets"], json!([]));
    assert!(h.engine.describe_job("nope").is_none());
}

/// CancelJobExecution: QUEUED cancels; IN_PROGRESS needs force; terminal cannot; a stale
/// expectedVersion is a VersionConflictException on the iot face.
#[test]
fn cancel_job_execution() {
    let mut h = Harness::new();
    h.create(spec("j", &["a", "b", "c"]));
    h.device("b", "j/update", r#"{"status":"IN_PROGRESS"}"#);
    h.device("c", "j/update", r#"{"status":"SUCCEEDED"}"#);
    let actions = h
        .engine
        .handle_cancel_job_execution("j", "a", false, Some(1), None, h.now)
        .expect("cancel");
    assert_eq!(
        notify_next(&actions, "a"),
        [json!({"timestamp": h.now / 1000})]
    );
    assert_eq!(h.exec_status("j", "a"), Some(ExecutionStatus::Canceled));
    let err = h
        .engine
        .handle_cancel_job_execution("j", "b", false, None, None, h.now)
        .expect_err("needs force");
    assert_eq!(
        err.control_plane_error(),
        (409, "InvalidStateTransitionException")
    );
    let err = h
        .engine
        .handle_cancel_job_execution("j", "b", true, Some(1), None, h.now)
        .expect_err("stale");
    assert_eq!(err.control_plane_error(), (409, "VersionConflictException"));
    assert!(
        h.engine
            .handle_cancel_job_execution("j", "c", true, None, None, h.now)
            .is_err()
    );
    let details = [("reason".to_owned(), "operator".to_owned())].into();
    let actions = h
        .engine
        .handle_cancel_job_execution("j", "b", true, Some(2), Some(details), h.now)
        .expect("force");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::SaveJob(j) if j.status == JobStatus::Completed))
    );
    assert_eq!(
        h.engine
            .execution("j", "b")
            .map(|e| e.status_details["reason"].clone())
            .as_deref(),
        Some("operator")
    );
}

/// DeleteJobExecution: terminal or forced, matching execution number; the record goes away and
/// the device hears about its new next job.
#[test]
fn delete_job_execution() {
    let mut h = Harness::new();
    h.create(spec("j", &["a", "b"]));
    h.now += 1000;
    h.create(spec("k", &["a"]));
    let err = h
        .engine
        .handle_delete_job_execution("j", "a", 1, false, h.now)
        .expect_err("not terminal");
    assert!(matches!(
        err,
        JobsError::InvalidStateTransition { state: Some(_), .. }
    ));
    assert!(matches!(
        h.engine
            .handle_delete_job_execution("j", "a", 2, true, h.now),
        Err(JobsError::ResourceNotFound(_))
    ));
    let actions = h
        .engine
        .handle_delete_job_execution("j", "a", 1, true, h.now)
        .expect("delete");
    h.store.apply(&actions);
    assert!(actions.contains(&Action::DeleteExecution {
        job_id: "j".into(),
        thing: "a".into()
    }));
    assert_eq!(notify_next(&actions, "a")[0]["execution"]["jobId"], "k");
    assert!(h.engine.execution("j", "a").is_none());
    assert_eq!(h.engine.job_counts("j").map(|c| c.total()), Some(1));
    let (_, body) = reply(&h.device("a", "j/get", ""));
    assert_eq!(body["code"], "ResourceNotFound");
    h.device("b", "j/update", r#"{"status":"SUCCEEDED"}"#);
    assert_eq!(h.job_status("j"), Some(JobStatus::Completed));
}
