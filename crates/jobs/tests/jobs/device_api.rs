use otastream_jobs::{Action, Engine, NoGroups, jobs_topic, split_jobs_topic};
use serde_json::json;

use crate::support::{DOC, Harness, reply, reply_text, spec};

/// PROTOCOL §2.4: the empty `$next/get` reply to the FreeRTOS agent is exactly clientToken +
/// timestamp (the agent's empty-document test), with the mangled token echoed.
#[test]
fn empty_next_reply_is_token_and_timestamp() {
    let mut engine = Engine::new();
    let actions = engine.handle_device_request(
        "thingname",
        "$next/get",
        br#"{"clientToken":":thingname"}"#,
        1_629_735_402_999,
    );
    assert_eq!(
        reply_text(&actions),
        (
            "$next/get/accepted".to_owned(),
            r#"{"clientToken":":thingname","timestamp":1629735402}"#.to_owned()
        )
    );
    assert_eq!(actions.len(), 1);
}

/// notify-next with a job and the empty one after the job ends, byte for byte (PROTOCOL §2.4
/// captures: timestamp first, jobDocument embedded as the stored object).
#[test]
fn notify_next_bytes() {
    let mut engine = Engine::new();
    let actions = engine
        .handle_create_job(spec("j", &["dev"]), &NoGroups, 1_605_788_181_500)
        .expect("create");
    let payloads: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::NotifyNext { thing, payload } if thing == "dev" => {
                Some(String::from_utf8(payload.clone()).expect("utf-8"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        payloads,
        [format!(
            r#"{{"timestamp":1605788181,"execution":{{"jobId":"j","status":"QUEUED","queuedAt":1605788181,"lastUpdatedAt":1605788181,"versionNumber":1,"executionNumber":1,"jobDocument":{DOC}}}}}"#
        )]
    );
    let actions = engine.handle_device_request(
        "dev",
        "j/update",
        br#"{"status":"SUCCEEDED"}"#,
        1_605_788_182_000,
    );
    let empty: Vec<&[u8]> = actions
        .iter()
        .filter_map(|a| match a {
            Action::NotifyNext { payload, .. } => Some(payload.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(empty, [br#"{"timestamp":1605788182}"#.as_slice()]);
    assert_eq!(empty[0].len(), 24);
}

/// update/accepted for a request without token is just the timestamp (PROTOCOL §2.4).
#[test]
fn update_accepted_without_token() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    h.now = 1_717_395_854_000;
    let (topic, text) = reply_text(&h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/76"}}"#,
    ));
    assert_eq!(
        (topic.as_str(), text.as_str()),
        ("j/update/accepted", r#"{"timestamp":1717395854}"#)
    );
}

/// `$next/get` accepts an empty payload, `{}` and a token (PROTOCOL A2); the execution
/// object omits thingName, empty statusDetails and startedAt while QUEUED, in AWS key order.
#[test]
fn next_get_payload_variants_and_execution_shape() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let t = h.now / 1000;
    let expected_exec = format!(
        r#""execution":{{"jobId":"j","status":"QUEUED","queuedAt":{t},"lastUpdatedAt":{t},"versionNumber":1,"executionNumber":1,"jobDocument":{DOC}}}"#
    );
    for (payload, prefix) in [
        ("", String::new()),
        ("{}", String::new()),
        ("  ", String::new()),
        (
            r#"{"clientToken":":thing-c"}"#,
            r#""clientToken":":thing-c","#.to_owned(),
        ),
    ] {
        let (topic, text) = reply_text(&h.device("dev", "$next/get", payload));
        assert_eq!(topic, "$next/get/accepted");
        assert_eq!(
            text,
            format!(r#"{{{prefix}"timestamp":{t},{expected_exec}}}"#),
            "{payload:?}"
        );
    }
    h.device(
        "dev",
        "j/update",
        r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/2"}}"#,
    );
    let (_, body) = reply(&h.device("dev", "$next/get", r#"{"includeJobDocument":false}"#));
    assert_eq!(
        body["execution"],
        json!({"jobId":"j","status":"IN_PROGRESS","statusDetails":{"receive":"1/2"},"queuedAt":t,
               "startedAt":t,"lastUpdatedAt":t,"versionNumber":2,"executionNumber":1})
    );
}

/// The client token is echoed byte for byte, escapes included.
#[test]
fn client_token_echoed_byte_for_byte() {
    let mut h = Harness::new();
    let (_, text) = reply_text(&h.device("dev", "get", r#"{"clientToken":"a\/b\u0041"}"#));
    assert!(text.ends_with(r#","clientToken":"a\/b\u0041"}"#), "{text}");
    let too_long = format!(r#"{{"clientToken":"{}"}}"#, "x".repeat(65));
    let (topic, body) = reply(&h.device("dev", "get", &too_long));
    assert_eq!(
        (topic.as_str(), body["code"].as_str()),
        ("get/rejected", Some("InvalidRequest"))
    );
    let (_, body) = reply(&h.device("dev", "get", r#"{"clientToken":12}"#));
    assert_eq!(body["code"], "InvalidRequest");
}

/// Error replies: InvalidJson, InvalidTopic, ResourceNotFound, TerminalStateReached; reply
/// topics and notify topics are not requests and get no answer.
#[test]
fn rejections() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let (topic, body) = reply(&h.device("dev", "$next/get", "{"));
    assert_eq!(
        (topic.as_str(), body["code"].as_str()),
        ("$next/get/rejected", Some("InvalidJson"))
    );
    assert!(body.get("clientToken").is_none());
    let (_, body) = reply(&h.device("dev", "$next/get", "[1]"));
    assert_eq!(body["code"], "InvalidJson");
    let (topic, body) = reply(&h.device("dev", "j/frobnicate", r#"{"clientToken":"c"}"#));
    assert_eq!(
        (topic.as_str(), body["code"].as_str()),
        ("j/frobnicate/rejected", Some("InvalidTopic"))
    );
    assert_eq!(body["clientToken"], "c");
    let (topic, body) = reply(&h.device("dev", "$next/update", r#"{"status":"SUCCEEDED"}"#));
    assert_eq!(
        (topic.as_str(), body["code"].as_str()),
        ("$next/update/rejected", Some("InvalidTopic"))
    );
    let (_, body) = reply(&h.device("dev", "nope/get", "{}"));
    assert_eq!(body["code"], "ResourceNotFound");
    let (_, body) = reply(&h.device("other", "j/get", "{}"));
    assert_eq!(body["code"], "ResourceNotFound");
    let (_, body) = reply(&h.device("other", "j/update", r#"{"status":"IN_PROGRESS"}"#));
    assert_eq!(body["code"], "ResourceNotFound");
    for suffix in [
        "notify",
        "notify-next",
        "$next/get/accepted",
        "j/update/rejected",
        "get/accepted",
    ] {
        assert!(h.device("dev", suffix, "{}").is_empty(), "{suffix}");
    }
    h.device("dev", "j/update", r#"{"status":"SUCCEEDED"}"#);
    let (topic, body) = reply(&h.device("dev", "j/get", r#"{"clientToken":"d"}"#));
    assert_eq!(
        (topic.as_str(), body["code"].as_str()),
        ("j/get/rejected", Some("TerminalStateReached"))
    );
    assert!(body["timestamp"].is_u64());
}

/// get lists pending executions by status; start-next starts the next one and returns it with
/// its document; `<jobId>/get` honours includeJobDocument.
#[test]
fn get_start_next_describe() {
    let mut h = Harness::new();
    h.create(spec("a", &["dev"]));
    h.now += 1000;
    h.create(spec("b", &["dev"]));
    let (_, body) = reply(&h.device("dev", "get", r#"{"clientToken":"g"}"#));
    assert_eq!(body["inProgressJobs"], json!([]));
    let queued: Vec<_> = body["queuedJobs"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["jobId"].clone())
        .collect();
    assert_eq!(queued, [json!("a"), json!("b")]);
    let (topic, body) = reply(&h.device("dev", "start-next", r#"{"statusDetails":{"s":"1"}}"#));
    assert_eq!(topic, "start-next/accepted");
    assert_eq!(body["execution"]["jobId"], "a");
    assert_eq!(body["execution"]["status"], "IN_PROGRESS");
    assert_eq!(body["execution"]["statusDetails"], json!({"s":"1"}));
    assert_eq!(
        body["execution"]["jobDocument"]["afr_ota"]["streamname"],
        "AFR_OTA-s1"
    );
    let (_, body) = reply(&h.device("dev", "get", ""));
    assert_eq!(body["inProgressJobs"][0]["jobId"], "a");
    assert!(body["inProgressJobs"][0]["startedAt"].is_u64());
    assert_eq!(body["queuedJobs"][0]["jobId"], "b");
    let (topic, body) = reply(&h.device("dev", "b/get", r#"{"includeJobDocument":false}"#));
    assert_eq!(topic, "b/get/accepted");
    assert!(body["execution"].get("jobDocument").is_none());
    let (_, body) = reply(&h.device("dev", "b/get", ""));
    assert!(body["execution"]["jobDocument"].is_object());
    let (_, body) = reply(&h.device(
        "dev",
        "a/update",
        r#"{"status":"SUCCEEDED","includeJobExecutionState":true,"includeJobDocument":true,"clientToken":"u"}"#,
    ));
    assert_eq!(
        body["executionState"],
        json!({"status":"SUCCEEDED","statusDetails":{"s":"1"},"versionNumber":3})
    );
    assert!(body["jobDocument"]["afr_ota"].is_object());
    assert_eq!(body["clientToken"], "u");
}

/// The whole FreeRTOS agent flow: `$next/get`, progress, self-test across a restart, success.
/// The job completes and the device is told it has nothing left.
#[test]
fn ota_agent_flow() {
    let mut h = Harness::new();
    h.create(spec("AFR_OTA-u1", &["dev"]));
    let (_, body) = reply(&h.device("dev", "$next/get", r#"{"clientToken":":dev"}"#));
    assert_eq!(body["execution"]["jobId"], "AFR_OTA-u1");
    for details in [
        r#"{"receive":"1/76"}"#,
        r#"{"receive":"65/76"}"#,
        r#"{"self_test":"ready","updatedBy":"0x0000000a"}"#,
    ] {
        let actions = h.device(
            "dev",
            "AFR_OTA-u1/update",
            &format!(r#"{{"status":"IN_PROGRESS","statusDetails":{details}}}"#),
        );
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::NotifyNext { .. } | Action::Notify { .. }))
        );
    }
    h.restart();
    h.now += 20_000;
    let (_, body) = reply(&h.device("dev", "$next/get", r#"{"clientToken":"1:dev"}"#));
    assert_eq!(body["execution"]["statusDetails"]["self_test"], "ready");
    h.device("dev", "AFR_OTA-u1/update", r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"active","updatedBy":"0x00000014"}}"#);
    let actions = h.device(
        "dev",
        "AFR_OTA-u1/update",
        r#"{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v0.0.20","updatedBy":"  v0.0.10"}}"#,
    );
    assert!(actions.iter().any(
        |a| matches!(a, Action::SaveJob(j) if j.status == otastream_jobs::JobStatus::Completed)
    ));
    assert_eq!(
        crate::support::notify_next(&actions, "dev"),
        [json!({"timestamp": h.now / 1000})]
    );
    let exec = &h.store.executions[&("AFR_OTA-u1".into(), "dev".into())];
    assert_eq!(exec.status_details["reason"], "accepted  v0.0.20");
}

/// Tokens inside spaced JSON are still echoed exactly; topics split and join back.
#[test]
fn spaced_token_and_topics() {
    let mut h = Harness::new();
    let (_, text) = reply_text(&h.device("dev", "$next/get", "{ \"clientToken\" :  \":dev\" }"));
    assert!(text.starts_with(r#"{"clientToken":":dev","#), "{text}");
    let topic = jobs_topic("dev-1", "$next/get");
    assert_eq!(topic, "$aws/things/dev-1/jobs/$next/get");
    assert_eq!(split_jobs_topic(&topic), Some(("dev-1", "$next/get")));
    for other in [
        "$aws/things/dev/streams/s/get/cbor",
        "$aws/things//jobs/get",
        "$aws/things/dev/jobs/",
        "a/b",
    ] {
        assert_eq!(split_jobs_topic(other), None, "{other}");
    }
}

/// A refused (throttled) request gets the standard `rejected` shape with code `RequestThrottled`
/// and its token echoed; topics that are not requests get nothing.
#[test]
fn refused_requests_are_rejected_with_their_token() {
    let throttled = otastream_jobs::JobsError::RequestThrottled("slow down".into());
    let (suffix, payload) = otastream_jobs::device_api::refuse_device_request(
        "$next/get",
        br#"{"clientToken":"t-1"}"#,
        &throttled,
        1_700_000_000_999,
    )
    .expect("a request");
    assert_eq!(suffix, "$next/get/rejected");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&payload).expect("json"),
        json!({"code": "RequestThrottled", "message": "slow down", "clientToken": "t-1",
               "timestamp": 1_700_000_000})
    );
    let (_, untokened) =
        otastream_jobs::device_api::refuse_device_request("get", b"not json", &throttled, 0)
            .expect("a request");
    assert!(!String::from_utf8_lossy(&untokened).contains("clientToken"));
    for not_a_request in ["notify", "notify-next", "get/accepted", "j/update/rejected"] {
        let refused =
            otastream_jobs::device_api::refuse_device_request(not_a_request, b"{}", &throttled, 0);
        assert_eq!(refused, None, "{not_a_request}");
    }
}
