use otastream_jobs::{
    DescribeRequest, JobSpec, JobsError, Presigner, StartNextRequest, TimeoutConfig, UpdateRequest,
    parse_body,
};
use serde_json::json;

use crate::support::{Harness, MINUTE, reply, spec};

/// Describe / start-next / update / get-pending over the HTTP shapes: thingName present,
/// jobDocument a string, approximateSecondsBeforeTimedOut while a timer runs.
#[test]
fn http_operations() {
    let mut h = Harness::new();
    let mut s = spec("j", &["dev"]);
    s.timeout_config = Some(TimeoutConfig {
        in_progress_timeout_in_minutes: Some(10),
    });
    h.create(s);
    let t = h.now / 1000;
    let described = h
        .engine
        .describe_job_execution("dev", "j", &DescribeRequest::default(), h.now)
        .expect("describe");
    let value = serde_json::to_value(&described).expect("json");
    assert_eq!(value["execution"]["thingName"], "dev");
    assert_eq!(value["execution"]["jobDocument"], crate::support::DOC);
    assert_eq!(value["execution"]["queuedAt"], t);
    assert!(
        value["execution"]
            .get("approximateSecondsBeforeTimedOut")
            .is_none()
    );

    let req: StartNextRequest =
        parse_body(br#"{"statusDetails":{"k":"v"},"stepTimeoutInMinutes":"2"}"#).expect("body");
    let (started, actions) = h
        .engine
        .handle_start_next_pending_job_execution("dev", &req, h.now)
        .expect("start");
    h.store.apply(&actions);
    let exec = started.execution.expect("execution");
    assert_eq!(
        (
            exec.status.as_str(),
            exec.approximate_seconds_before_timed_out
        ),
        ("IN_PROGRESS", Some(120))
    );
    h.now += 30_500;
    let pending = serde_json::to_value(h.engine.get_pending_job_executions("dev")).expect("json");
    assert_eq!(pending["inProgressJobs"][0]["jobId"], "j");
    assert_eq!(pending["queuedJobs"], json!([]));
    let described = h
        .engine
        .describe_job_execution(
            "dev",
            "$next",
            &DescribeRequest {
                include_job_document: Some(false),
                ..Default::default()
            },
            h.now,
        )
        .expect("next");
    assert_eq!(
        described.execution.approximate_seconds_before_timed_out,
        Some(90)
    );
    assert_eq!(described.execution.job_document, None);

    let req: UpdateRequest = parse_body(br#"{"status":"SUCCEEDED","expectedVersion":2,"includeJobExecutionState":true,"includeJobDocument":true}"#).expect("body");
    let (updated, actions) = h
        .engine
        .handle_update_job_execution("dev", "j", &req, h.now)
        .expect("update");
    h.store.apply(&actions);
    assert_eq!(
        serde_json::to_value(&updated).expect("json"),
        json!({"executionState":{"status":"SUCCEEDED","statusDetails":{"k":"v"},"versionNumber":3},"jobDocument":crate::support::DOC})
    );
    let err = h
        .engine
        .describe_job_execution("dev", "j", &DescribeRequest::default(), h.now)
        .expect_err("terminal");
    assert_eq!(err.data_plane_error(), (410, "TerminalStateException"));
    let err = h
        .engine
        .describe_job_execution("dev", "$next", &DescribeRequest::default(), h.now)
        .expect_err("none");
    assert_eq!(err.data_plane_error(), (404, "ResourceNotFoundException"));
    let (none, _) = h
        .engine
        .handle_start_next_pending_job_execution("dev", &StartNextRequest::default(), h.now)
        .expect("start");
    assert_eq!(serde_json::to_value(none).expect("json"), json!({}));
    let err = h
        .engine
        .handle_update_job_execution("dev", "j", &req, h.now)
        .expect_err("stale");
    assert_eq!(
        err.data_plane_error(),
        (409, "InvalidStateTransitionException")
    );
    assert!(matches!(
        parse_body::<UpdateRequest>(b"{"),
        Err(JobsError::InvalidJson(_))
    ));
}

struct FakePresigner;

impl Presigner for FakePresigner {
    fn presign(&self, url: &str, expires_in_sec: u64, now: u64) -> Option<String> {
        Some(format!(
            "{url}?X-Amz-Expires={expires_in_sec}&X-Amz-Date={}",
            now / 1000
        ))
    }
}

/// `${aws:iot:s3-presigned-url:…}` placeholders are replaced when the device fetches the
/// document (fresh per fetch), on MQTT and HTTP alike; the stored document is untouched.
#[test]
fn presigned_url_substitution() {
    let mut h = Harness::new();
    h.engine.set_presigner(Box::new(FakePresigner));
    let document = r#"{"afr_ota":{"protocols":["HTTP"],"files":[{"filepath":"f","filesize":9,"fileid":0,"certfile":"c","update_data_url":"${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/k}","auth_scheme":"aws.s3.presigned","sig-sha256-ecdsa":"AA=="}]}}"#;
    h.create(JobSpec {
        document: document.into(),
        ..spec("j", &["dev"])
    });
    let (_, body) = reply(&h.device("dev", "$next/get", ""));
    let url = format!(
        "https://b.s3.amazonaws.com/k?X-Amz-Expires=1800&X-Amz-Date={}",
        h.now / 1000
    );
    assert_eq!(
        body["execution"]["jobDocument"]["afr_ota"]["files"][0]["update_data_url"],
        url
    );
    h.now += MINUTE;
    let described = h
        .engine
        .describe_job_execution("dev", "j", &DescribeRequest::default(), h.now)
        .expect("describe");
    assert!(
        described
            .execution
            .job_document
            .expect("doc")
            .contains(&format!("X-Amz-Date={}", h.now / 1000))
    );
    assert_eq!(
        h.engine.job("j").map(|j| j.spec.document.as_str()),
        Some(document)
    );
}
