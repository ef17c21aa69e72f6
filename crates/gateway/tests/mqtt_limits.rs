//! Adversarial tests of the per-session limits over real sockets: memory that no client can
//! exhaust. Each prints the RSS growth it measured (`--nocapture`); the README states the bounds.

mod support;

use std::time::Duration;

use otastream_gateway::GatewayConfig;
use rumqttc::QoS;
use support::{Client, TestGateway, put_str, raw_connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// This process's resident set size in bytes (the gateway runs in it).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

/// A raw client that connects as `client_id`, subscribes to `filter` at `qos` and returns the
/// socket; the caller decides whether it ever reads again.
async fn raw_subscriber(gw: &TestGateway, client_id: &str, filter: &str, qos: u8) -> TcpStream {
    let mut socket = TcpStream::connect(gw.addr).await.expect("connect");
    socket
        .write_all(&raw_connect("MQTT", 4, 0x02, client_id, &[]))
        .await
        .expect("connect");
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).await.expect("connack");
    assert_eq!(connack, [0x20, 2, 0, 0]);
    socket
        .write_all(&raw_subscribe(1, filter, qos))
        .await
        .expect("subscribe");
    let mut suback = [0u8; 5];
    socket.read_exact(&mut suback).await.expect("suback");
    assert_eq!(suback, [0x90, 3, 0, 1, qos]);
    socket
}

/// A SUBSCRIBE for one filter (short enough for a one-byte remaining length).
fn raw_subscribe(pkid: u16, filter: &str, qos: u8) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    put_str(&mut body, filter.as_bytes());
    body.push(qos);
    let mut packet = vec![0x82, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

/// Prints how much RSS grew since `before` (`what` says during what) and fails past `bound_mib`.
fn assert_rss_growth(before: u64, bound_mib: u64, what: &str) {
    let grown = rss().saturating_sub(before);
    let mib = grown as f64 / (1024.0 * 1024.0);
    println!("RSS growth {what}: {mib:.1} MiB");
    assert!(grown < bound_mib << 20, "RSS grew by {mib:.1} MiB {what}");
}

/// The tests measure this process's RSS, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_cannot_grow_the_server_with_a_flooding_publisher() {
    let _serial = SERIAL.lock().await;
    let gw = TestGateway::start(GatewayConfig::default()).await;
    // Never read after the SUBACK: one at QoS 0 (its messages are dropped past the cap), one at
    // QoS 1 (disconnected as a slow consumer).
    let _stuck0 = raw_subscriber(&gw, "stuck-qos0", "flood/#", 0).await;
    let mut stuck1 = raw_subscriber(&gw, "stuck-qos1", "flood/#", 1).await;
    let mut reader = Client::connect(gw.addr, "reader", |o| {
        o.set_max_packet_size(1 << 20, 1 << 20);
    })
    .await;
    reader.subscribe("flood/#", QoS::AtMostOnce).await;
    let publisher = Client::connect(gw.addr, "publisher", |o| {
        o.set_max_packet_size(1 << 20, 1 << 20);
    })
    .await;
    let before = rss();

    // 2,000 × 64 KiB = 125 MiB through the broker, each message to all three subscribers,
    // while the reading subscriber drains its messages (so the test's own client buffers stay
    // small and RSS growth is the server's).
    const MESSAGES: u32 = 2_000;
    let flood = tokio::spawn(async move {
        let payload = bytes::Bytes::from(vec![0x5a; 64 * 1024]);
        for i in 0..MESSAGES {
            let qos = if i % 2 == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            publisher
                .client
                .publish_bytes(format!("flood/{}", i % 4), qos, false, payload.clone())
                .await
                .expect("publish");
        }
        publisher
            .client
            .publish("flood/done", QoS::AtLeastOnce, false, "done")
            .await
            .expect("publish");
        publisher
    });
    // A subscriber that reads is served meanwhile, up to the last message. (The router's commit
    // log is bounded, so it may skip messages for a reader that falls two segments behind.)
    let mut received = 0;
    while reader.next_publish().await.topic != "flood/done" {
        received += 1;
    }
    let _publisher = flood.await.expect("publisher");
    println!("the reading subscriber got {received} of {MESSAGES} flood messages");
    assert!(received > 0);
    assert_rss_growth(
        before,
        32,
        &format!("with a never-reading subscriber and {MESSAGES} x 64 KiB published"),
    );

    // The QoS 1 slow consumer was disconnected: draining its socket ends in EOF (or a reset).
    let mut sink = vec![0u8; 1 << 16];
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stuck1.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the QoS 1 slow consumer is still connected");
    let metrics = gw.gateway.metrics().render();
    assert!(
        !metrics.contains("otastream_gateway_broker_messages_dropped_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_subscribes_get_fifty_subscriptions() {
    let _serial = SERIAL.lock().await;
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let mut socket = TcpStream::connect(gw.addr).await.expect("connect");
    socket
        .write_all(&raw_connect("MQTT", 4, 0x02, "subscriber", &[]))
        .await
        .expect("connect");
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).await.expect("connack");
    let before = rss();
    const SUBSCRIBES: u16 = 5_000;
    let mut packets = Vec::new();
    for i in 0..SUBSCRIBES {
        packets.extend(raw_subscribe(i + 1, &format!("filters/{i}/+/x"), 1));
    }
    let (mut rd, mut wr) = socket.into_split();
    let writer = tokio::spawn(async move { wr.write_all(&packets).await.map(|()| wr) });
    let mut subacks = vec![0u8; usize::from(SUBSCRIBES) * 5];
    tokio::time::timeout(Duration::from_secs(60), rd.read_exact(&mut subacks))
        .await
        .expect("every SUBACK in time")
        .expect("read");
    let _wr = writer.await.expect("join").expect("write");
    let granted = subacks.chunks(5).filter(|ack| ack[4] == 1).count();
    let refused = subacks.chunks(5).filter(|ack| ack[4] == 0x80).count();
    assert_eq!((granted, refused), (50, 4_950));
    assert_rss_growth(
        before,
        16,
        &format!("after {SUBSCRIBES} SUBSCRIBEs on one connection"),
    );
}
