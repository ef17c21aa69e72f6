//! The device Jobs API through the gateway: a job created in the shared engine reaches a
//! subscribed device as `notify-next`, `$next/get` is answered without a subscription, and the
//! device's update lands in the engine (persisted before the answer).

mod gateway_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_support::{Device, TestServer};
use otastream_jobs::{ExecutionStatus, JobSpec, NoGroups};
use rumqttc::QoS;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_notified_fetches_its_next_job_and_completes_it() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let mut dev = Device::tcp(t.server.mqtt_addr, "dev-j").await?;
    dev.subscribe("$aws/things/dev-j/jobs/notify-next", QoS::AtLeastOnce)
        .await?;

    let jobs = t.server.jobs.clone();
    tokio::task::spawn_blocking(move || {
        let spec = JobSpec {
            job_arn: "arn:aws:iot:us-east-1:123456789012:job/j1".into(),
            job_id: "j1".into(),
            targets: vec!["arn:aws:iot:us-east-1:123456789012:thing/dev-j".into()],
            document: r#"{"op":"update"}"#.into(),
            ..JobSpec::default()
        };
        jobs.apply(|e| Ok(((), e.handle_create_job(spec, &NoGroups, now_ms())?)))
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await??;

    let notify = dev.next_publish().await?;
    assert_eq!(notify.topic, "$aws/things/dev-j/jobs/notify-next");
    let body: serde_json::Value = serde_json::from_slice(&notify.payload)?;
    assert_eq!(body["execution"]["jobId"], "j1", "{body}");

    // No subscription to …/accepted: the answer must reach the requester anyway.
    let next_get = br#"{"clientToken":":dev-j"}"#.to_vec();
    dev.client
        .publish(
            "$aws/things/dev-j/jobs/$next/get",
            QoS::AtMostOnce,
            false,
            next_get,
        )
        .await?;
    let accepted = dev.next_publish().await?;
    assert_eq!(accepted.topic, "$aws/things/dev-j/jobs/$next/get/accepted");
    let body: serde_json::Value = serde_json::from_slice(&accepted.payload)?;
    assert_eq!(
        (&body["clientToken"], &body["execution"]["jobId"]),
        (&":dev-j".into(), &"j1".into()),
        "{body}"
    );

    let update = br#"{"status":"SUCCEEDED","clientToken":"u1"}"#.to_vec();
    dev.client
        .publish(
            "$aws/things/dev-j/jobs/j1/update",
            QoS::AtLeastOnce,
            false,
            update,
        )
        .await?;
    let mut accepted = dev.next_publish().await?;
    if accepted.topic.ends_with("notify-next") {
        // The next job changed (to none): that notification may come first.
        accepted = dev.next_publish().await?;
    }
    assert_eq!(accepted.topic, "$aws/things/dev-j/jobs/j1/update/accepted");
    let status = t
        .server
        .jobs
        .read(|e| e.execution("j1", "dev-j").map(|x| x.status));
    assert_eq!(status, Some(ExecutionStatus::Succeeded));

    // Another thing cannot touch dev-j's jobs: it is disconnected instead.
    let mut other = Device::tcp(t.server.mqtt_addr, "dev-k").await?;
    other
        .client
        .publish(
            "$aws/things/dev-j/jobs/$next/get",
            QoS::AtMostOnce,
            false,
            b"{}".to_vec(),
        )
        .await?;
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(20), other.next()).await??,
        gateway_support::Seen::Error(_)
    ));
    Ok(())
}
