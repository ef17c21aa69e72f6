//! End-to-end tests of the device gateway: a real server on 127.0.0.1 port 0 and rumqttc devices.

mod gateway_support;

use std::time::Duration;

use gateway_support::{Device, Seen, TestServer, image, sha256};
use otastream_chunker::Format;
use rumqttc::{LastWill, QoS, SubscribeReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1 << 20;

/// (format, n, expected requests) for a 1 MiB image in 4 KiB blocks (256 blocks).
const DOWNLOADS: [(Format, Option<u32>, usize); 6] = [
    (Format::Cbor, Some(1), 256),
    (Format::Cbor, Some(32), 8),
    (Format::Cbor, None, 8),
    (Format::Json, Some(1), 256),
    (Format::Json, Some(32), 8),
    (Format::Json, None, 8),
];

/// Downloads the 1 MiB `stream` in every [`DOWNLOADS`] way and checks image and request count.
async fn download_every_way(dev: &mut Device, stream: &str, data: &[u8]) -> anyhow::Result<()> {
    for (format, n, requests) in DOWNLOADS {
        let (got, made) = dev.download(stream, format, MIB, 4096, n).await?;
        assert_eq!(sha256(&got), sha256(data), "{format:?} n={n:?}");
        assert_eq!(made, requests, "{format:?} n={n:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_download_a_1mib_image_over_tcp() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let data = image(MIB, 1);
    t.create_stream("fw-tcp", 0, data.clone()).await?;
    let mut dev = Device::tcp(t.server.mqtt_addr, "dev-tcp").await?;
    download_every_way(&mut dev, "fw-tcp", &data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_download_a_1mib_image_over_mutual_tls() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let data = image(MIB, 2);
    t.create_stream("fw-tls", 0, data.clone()).await?;
    let (cert, key) = t.server.pki.issue_device_cert("dev-tls")?;
    // The client id is deliberately different: over TLS the certificate CN names the thing.
    let mut dev = Device::tls(
        t.server.mqtts_addr,
        "client-id-ignored",
        &t.server.pki.ca_cert_pem,
        Some((&cert, &key)),
    )
    .await?;
    dev.thing = "dev-tls".into();
    download_every_way(&mut dev, "fw-tls", &data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_without_a_valid_client_certificate_fail_tls() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let ca = &t.server.pki.ca_cert_pem;
    let no_cert = Device::tls(t.server.mqtts_addr, "dev-a", ca, None).await;
    assert!(no_cert.is_err(), "connected without a client certificate");

    let other_dir = tempfile::tempdir()?;
    let other_ca = otastream_pki::DevPki::load_or_create(other_dir.path())?;
    let (cert, key) = other_ca.issue_device_cert("dev-a")?;
    let foreign = Device::tls(t.server.mqtts_addr, "dev-a", ca, Some((&cert, &key))).await;
    assert!(
        foreign.is_err(),
        "connected with a certificate from another CA"
    );

    let (cert, key) = t.server.pki.issue_device_cert("dev-a")?;
    Device::tls(t.server.mqtts_addr, "dev-a", ca, Some((&cert, &key))).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_use_another_things_topics() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    t.create_stream("fw", 0, image(10_000, 3)).await?;
    let mut a = Device::tcp(t.server.mqtt_addr, "thing-a").await?;
    let suback = a
        .subscribe("$aws/things/thing-b/streams/fw/data/cbor", QoS::AtMostOnce)
        .await?;
    assert_eq!(suback.return_codes, vec![SubscribeReasonCode::Failure]);
    let suback = a
        .subscribe("$aws/things/+/streams/fw/data/cbor", QoS::AtMostOnce)
        .await?;
    assert_eq!(suback.return_codes, vec![SubscribeReasonCode::Failure]);
    let suback = a.subscribe("#", QoS::AtMostOnce).await?;
    assert_eq!(
        suback.return_codes,
        vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]
    );

    // thing-b downloads; thing-a (subscribed to `#`) must see none of it.
    let mut b = Device::tcp(t.server.mqtt_addr, "thing-b").await?;
    b.download("fw", Format::Cbor, 10_000, 1024, Some(4))
        .await?;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), a.next())
            .await
            .is_err(),
        "thing-a saw thing-b's traffic"
    );

    // Publishing on another thing's reserved topic disconnects the publisher.
    a.client
        .publish(
            "$aws/things/thing-b/streams/fw/get/json",
            QoS::AtMostOnce,
            false,
            b"{}".to_vec(),
        )
        .await?;
    assert!(
        matches!(a.next().await?, Seen::Error(_)),
        "thing-a was not disconnected"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reject_code_reaches_the_requesting_device() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    t.create_stream("fw", 0, image(10_000, 4)).await?;
    let mut dev = Device::tcp(t.server.mqtt_addr, "dev-r").await?;
    let long_token = "t".repeat(65);
    let big_bitmap = format!("0x{}", "ff".repeat(12_288));
    let cases: Vec<(&str, Format, Vec<u8>, &str)> = vec![
        (
            "missing",
            Format::Json,
            br#"{"f":0,"l":1024}"#.to_vec(),
            "ResourceNotFound",
        ),
        (
            "fw",
            Format::Json,
            br#"{"f":9,"l":1024}"#.to_vec(),
            "ResourceNotFound",
        ),
        (
            "fw",
            Format::Json,
            br#"{"s":2,"f":0,"l":1024}"#.to_vec(),
            "VersionMismatch",
        ),
        (
            "fw",
            Format::Json,
            br#"{"f":0,"l":255}"#.to_vec(),
            "BlockSizeOutOfBounds",
        ),
        (
            "fw",
            Format::Json,
            br#"{"f":0,"l":1024,"o":10}"#.to_vec(),
            "OffsetOutOfBounds",
        ),
        (
            "fw",
            Format::Json,
            br#"{"f":0,"l":1024,"n":98305}"#.to_vec(),
            "BlockCountLimitExceeded",
        ),
        (
            "fw",
            Format::Json,
            format!(r#"{{"f":0,"l":1024,"b":"{big_bitmap}"}}"#).into_bytes(),
            "BlockBitmapLimitExceeded",
        ),
        ("fw", Format::Cbor, vec![0xa1, 0x61], "InvalidCbor"),
        ("fw", Format::Json, b"{\"f\":".to_vec(), "InvalidJson"),
        (
            "fw",
            Format::Json,
            format!(r#"{{"c":"{long_token}","f":0,"l":1024}}"#).into_bytes(),
            "InvalidRequest",
        ),
    ];
    for (stream, format, payload, code) in cases {
        dev.publish_stream(stream, "get", format, payload).await?;
        let reply = dev.next_publish().await?;
        assert_eq!(
            reply.topic,
            format!(
                "$aws/things/dev-r/streams/{stream}/rejected/{}",
                format.as_str()
            )
        );
        let text = String::from_utf8_lossy(&reply.payload);
        assert!(text.contains(code), "expected {code}, got {text:.200}");
    }
    // A good request after all those still works: exactly one answer each, nothing left over.
    let (got, _) = dev.download("fw", Format::Cbor, 10_000, 1024, None).await?;
    assert_eq!(got, image(10_000, 4));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_exchange_ordinary_messages_through_the_broker() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let mut a = Device::tcp(t.server.mqtt_addr, "dev-a").await?;
    let mut b = Device::tcp(t.server.mqtt_addr, "dev-b").await?;
    let ack = b.subscribe("fleet/+/status", QoS::AtLeastOnce).await?;
    assert_eq!(
        ack.return_codes,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    a.client
        .publish(
            "fleet/dev-a/status",
            QoS::AtLeastOnce,
            false,
            b"online".to_vec(),
        )
        .await?;
    let got = b.expect("fleet/dev-a/status", b"online").await?;
    assert_eq!(got.qos, QoS::AtLeastOnce);
    // And back the other way at QoS 0.
    a.subscribe("fleet/dev-a/cmd", QoS::AtMostOnce).await?;
    b.client
        .publish(
            "fleet/dev-a/cmd",
            QoS::AtMostOnce,
            false,
            b"reboot".to_vec(),
        )
        .await?;
    a.expect("fleet/dev-a/cmd", b"reboot").await?;

    // A device that vanishes without DISCONNECT has its last will published.
    let will = LastWill::new(
        "fleet/dev-c/status",
        b"offline".to_vec(),
        QoS::AtMostOnce,
        false,
    );
    let c = Device::tcp_with(t.server.mqtt_addr, "dev-c", |o| {
        o.set_last_will(will);
    })
    .await?;
    drop(c);
    b.expect("fleet/dev-c/status", b"offline").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_gets_what_was_published_while_it_was_away() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    let mut sub = Device::tcp_persistent(t.server.mqtt_addr, "dev-p").await?;
    sub.subscribe("news/#", QoS::AtLeastOnce).await?;
    sub.client.disconnect().await?;
    assert!(matches!(sub.next().await?, Seen::Error(_)));
    drop(sub);
    wait_until(|| t.server.gateway.connected_things() == 0).await?;

    let publisher = Device::tcp(t.server.mqtt_addr, "dev-q").await?;
    // The offline session's broker link stays subscribed and holds the message for it.
    publisher
        .client
        .publish("news/today", QoS::AtLeastOnce, false, b"hello".to_vec())
        .await?;

    let mut back = Device::tcp_persistent(t.server.mqtt_addr, "dev-p").await?;
    back.expect("news/today", b"hello").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_packet_disconnects_only_its_sender() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    t.create_stream("fw", 0, image(50_000, 5)).await?;
    let mut good = Device::tcp(t.server.mqtt_addr, "dev-good").await?;
    let mut raw = TcpStream::connect(t.server.mqtt_addr).await?;
    // CONNECT for "dev-bad", then a packet of the reserved type 15.
    raw.write_all(&raw_connect("dev-bad")).await?;
    let mut connack = [0u8; 4];
    raw.read_exact(&mut connack).await?;
    assert_eq!(connack, [0x20, 2, 0, 0]);
    raw.write_all(&[0xf0, 0x00]).await?;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut rest)).await?;
    assert!(
        closed.is_ok() && rest.is_empty(),
        "the bad client was not simply closed"
    );

    let (got, _) = good
        .download("fw", Format::Cbor, 50_000, 4096, Some(32))
        .await?;
    assert_eq!(got, image(50_000, 5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_only_slows_itself() -> anyhow::Result<()> {
    let t = TestServer::start_with(|cfg| {
        cfg.gateway.connection.write_stall_timeout = Duration::from_secs(2)
    })
    .await?;
    t.create_stream("fw", 0, image(MIB, 7)).await?;
    // A raw client asks for 300 × 128 KiB and never reads a byte of it.
    let mut stuck = TcpStream::connect(t.server.mqtt_addr).await?;
    stuck.write_all(&raw_connect("dev-stuck")).await?;
    let mut connack = [0u8; 4];
    stuck.read_exact(&mut connack).await?;
    let topic = b"$aws/things/dev-stuck/streams/fw/get/json";
    let body = br#"{"f":0,"l":4096,"n":32}"#;
    let mut publish = vec![
        0x30,
        (2 + topic.len() + body.len()) as u8,
        0,
        topic.len() as u8,
    ];
    publish.extend_from_slice(topic);
    publish.extend_from_slice(body);
    for _ in 0..300 {
        stuck.write_all(&publish).await?;
    }

    // Everyone else is served at full speed meanwhile.
    let mut good = Device::tcp(t.server.mqtt_addr, "dev-fine").await?;
    let (got, _) = good
        .download("fw", Format::Cbor, MIB, 4096, Some(32))
        .await?;
    assert_eq!(sha256(&got), sha256(&image(MIB, 7)));

    // The stuck device is disconnected once its queue stayed full for the stall timeout.
    wait_until(|| t.server.gateway.connected_things() == 1).await?;
    let mut drained = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(20), stuck.read_to_end(&mut drained)).await?;
    // EOF, or a reset when requests it sent were still unread on the server: closed either way.
    if let Err(e) = closed {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    assert!(
        drained.len() < 300 * 131_072,
        "the stuck device got everything it asked for"
    );
    Ok(())
}

/// An MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) for `client_id`.
fn raw_connect(client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let mut p = vec![
        0x10,
        (12 + id.len()) as u8,
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        4,
        2,
        0,
        30,
        0,
        id.len() as u8,
    ];
    p.extend_from_slice(id);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_connections_blocks_bytes_and_rejects() -> anyhow::Result<()> {
    let t = TestServer::start().await?;
    t.create_stream("fw", 0, image(20_000, 6)).await?;
    let mut dev = Device::tcp(t.server.mqtt_addr, "dev-m").await?;
    dev.download("fw", Format::Cbor, 20_000, 4096, None).await?;
    dev.publish_stream("nope", "get", Format::Json, br#"{"f":0,"l":1024}"#.to_vec())
        .await?;
    dev.next_publish().await?;

    let mut http = TcpStream::connect(t.server.http_addr).await?;
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    http.read_to_string(&mut body).await?;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    for line in [
        "otastream_gateway_connections_total{listener=\"mqtt\"} 1",
        "otastream_gateway_blocks_served_total 5",
        "otastream_gateway_bytes_served_total 20000",
        "otastream_gateway_stream_requests_total 2",
        "otastream_gateway_stream_rejects_total{code=\"ResourceNotFound\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in\n{body}"
        );
    }
    Ok(())
}

async fn wait_until(mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    // Up to 20 s: generous for a loaded CI machine; the condition usually holds within 3 s.
    for _ in 0..800 {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    anyhow::bail!("condition not reached")
}
