use otastream_jobs::Action;
use serde_json::json;

use crate::support::{Harness, notify_count, notify_next, notify_next_count, reply, spec};

/// QUEUED→IN_PROGRESS and statusDetails changes keep the next job's identity: no notify-next,
/// no notify (PROTOCOL §2.8 rule 3).
#[test]
fn no_notify_next_for_detail_changes() {
    let mut h = Harness::new();
    let actions = h.create(spec("j", &["dev"]));
    assert_eq!(notify_next(&actions, "dev").len(), 1);
    assert_eq!(notify_count(&actions), 1);
    for payload in [
        r#"{"status":"IN_PROGRESS"}"#,
        r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/9"}}"#,
        r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"2/9"},"stepTimeoutInMinutes":5}"#,
    ] {
        let actions = h.device("dev", "j/update", payload);
        assert_eq!(notify_next_count(&actions), 0, "{payload}");
        assert_eq!(notify_count(&actions), 0, "{payload}");
    }
    let actions = h.device("dev", "start-next", "{}");
    assert_eq!(notify_next_count(&actions) + notify_count(&actions), 0);
}

/// A second job for a busy device changes its pending list (notify) but not its next job (no
/// notify-next); when the first finishes, notify-next carries the second with its document.
#[test]
fn notify_next_on_identity_change_only() {
    let mut h = Harness::new();
    h.create(spec("first", &["dev"]));
    h.device("dev", "first/update", r#"{"status":"IN_PROGRESS"}"#);
    h.now += 1000;
    let actions = h.create(spec("second", &["dev", "idle"]));
    assert!(notify_next(&actions, "dev").is_empty());
    assert_eq!(notify_next(&actions, "idle").len(), 1);
    let notify: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify { thing, payload } if thing == "dev" => {
                Some(serde_json::from_slice::<serde_json::Value>(payload).expect("json"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(notify.len(), 1);
    assert_eq!(notify[0]["jobs"]["IN_PROGRESS"][0]["jobId"], "first");
    assert_eq!(notify[0]["jobs"]["QUEUED"][0]["jobId"], "second");
    let actions = h.device("dev", "first/update", r#"{"status":"SUCCEEDED"}"#);
    let next = notify_next(&actions, "dev");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["execution"]["jobId"], "second");
    assert_eq!(next[0]["execution"]["status"], "QUEUED");
    assert!(next[0]["execution"]["jobDocument"]["afr_ota"].is_object());
    // Persist before publish: every Save precedes every publish.
    let first_publish = actions
        .iter()
        .position(|a| a.topic().is_some())
        .expect("publishes");
    assert!(actions[first_publish..].iter().all(|a| a.topic().is_some()));
}

/// The notify payload lists pending jobs keyed by status; an empty list is `{"jobs":{}}`.
#[test]
fn notify_payload_shape() {
    let mut h = Harness::new();
    h.create(spec("j", &["dev"]));
    let actions = h.device("dev", "j/update", r#"{"status":"REJECTED"}"#);
    let payload = actions
        .iter()
        .find_map(|a| match a {
            Action::Notify { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .expect("notify");
    assert_eq!(
        String::from_utf8(payload).expect("utf-8"),
        format!(r#"{{"jobs":{{}},"timestamp":{}}}"#, h.now / 1000)
    );
    let (_, body) = reply(&h.device("dev", "$next/get", ""));
    assert_eq!(body, json!({"timestamp": h.now / 1000}));
}
