//! The device Jobs API through the gateway: a job created in the shared engine reaches a
//! subscribed device as `notify-next`, `$next/get` is answered without a subscription, and the
//! device's update lands in the engine (persisted before the answer); a device flooding the
//! Jobs API costs another device none of its requests.

mod gateway_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use gateway_support::{Device, TestServer};
use otastream_jobs::{ExecutionStatus, JobSpec, NoGroups};
use rumqttc::QoS;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Requests the flooding device pipelines (issue 16 measured losses with 400k).
const FLOOD_REQUESTS: usize = 400_000;
/// `$next/get` requests of the quiet device, each awaited before the next.
const QUIET_REQUESTS: usize = 200;

/// Issue 16: one device pipelines 400,000 `jobs/get` over a raw socket (reading whatever it is
/// sent) while another sends 200 QoS 1 `$next/get`, one at a time: every one of them is answered
/// (`accepted`, its own token), none is lost to the flood; and the flooder itself gets an answer
/// to every request, `accepted` or `RequestThrottled` on `get/rejected`, never silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_flooding_jobs_get_costs_another_device_none_of_its_next_gets()
-> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let mut quiet = Device::tcp(t.server.mqtt_addr, "dev-quiet").await?;

    let mut flood = TcpStream::connect(t.server.mqtt_addr).await?;
    let mut frames = BytesMut::new();
    Packet::Connect(Connect::new("dev-flood")).write(&mut frames, 1 << 20)?;
    flood.write_all(&frames.split()).await?;
    let mut connack = [0u8; 4];
    flood.read_exact(&mut connack).await?;
    anyhow::ensure!(connack == [0x20, 2, 0, 0], "CONNACK {connack:?}");
    let get = Publish::new(
        "$aws/things/dev-flood/jobs/get",
        QoS::AtMostOnce,
        b"{}".to_vec(),
    );
    const PER_WRITE: usize = 1000;
    for _ in 0..PER_WRITE {
        Packet::Publish(get.clone()).write(&mut frames, 1 << 20)?;
    }
    let burst = frames.freeze();
    let (mut flood_rx, mut flood_tx) = flood.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..FLOOD_REQUESTS / PER_WRITE {
            if flood_tx.write_all(&burst).await.is_err() {
                break;
            }
        }
        flood_tx
    });
    let reader = tokio::spawn(async move {
        // [accepted, rejected, other]; ends once every request is answered or after 10 s of
        // silence.
        let (mut buf, mut answers) = (BytesMut::with_capacity(256 * 1024), [0usize; 3]);
        while answers[0] + answers[1] < FLOOD_REQUESTS {
            buf.reserve(64 * 1024);
            let read = tokio::time::timeout(Duration::from_secs(10), flood_rx.read_buf(&mut buf));
            if !matches!(read.await, Ok(Ok(1..))) {
                break;
            }
            while let Ok(packet) = Packet::read(&mut buf, 1 << 20) {
                let slot = match packet {
                    Packet::Publish(p) if p.topic == "$aws/things/dev-flood/jobs/get/accepted" => 0,
                    Packet::Publish(p) if p.topic == "$aws/things/dev-flood/jobs/get/rejected" => {
                        let throttled = p.payload.windows(16).any(|w| w == b"RequestThrottled");
                        if throttled { 1 } else { 2 }
                    }
                    _ => 2,
                };
                answers[slot] += 1;
            }
        }
        answers
    });

    let mut answered = 0;
    for n in 0..QUIET_REQUESTS {
        let token = format!("quiet-{n}");
        let payload = format!(r#"{{"clientToken":"{token}"}}"#);
        quiet
            .client
            .publish(
                "$aws/things/dev-quiet/jobs/$next/get",
                QoS::AtLeastOnce,
                false,
                payload.into_bytes(),
            )
            .await?;
        let answer = quiet.next_publish().await?;
        assert_eq!(
            answer.topic,
            "$aws/things/dev-quiet/jobs/$next/get/accepted"
        );
        let body: serde_json::Value = serde_json::from_slice(&answer.payload)?;
        assert_eq!(body["clientToken"], token.as_str(), "{body}");
        answered += 1;
    }
    assert_eq!(answered, QUIET_REQUESTS);
    let flood_tx = writer.await?;
    let [accepted, throttled, other] = reader.await?;
    drop(flood_tx);
    assert_eq!(other, 0, "only get answers");
    assert!(throttled > 0, "the flood was throttled");
    assert_eq!(
        accepted + throttled,
        FLOOD_REQUESTS,
        "{accepted} accepted + {throttled} throttled"
    );
    Ok(())
}
