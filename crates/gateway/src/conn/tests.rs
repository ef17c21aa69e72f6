//! Tests of the connection driver's own state: task size and read-buffer handling.

use super::*;

fn shared() -> Arc<Shared> {
    Arc::new(Shared {
        cfg: ConnectionConfig::default(),
        limits: Limits::default(),
        reserved: ReservedTopics::new(),
        broker: EmbeddedBroker::start(Default::default()),
        metrics: Arc::new(Metrics::new()),
        registry: Registry::default(),
        next_connection: AtomicU64::new(0),
    })
}

/// Every connected device holds one connection task; its state is what an idle device costs
/// besides its buffers. The broker futures (~2.7 KB together) are boxed, so they only cost
/// sessions that use the broker: 3,320 bytes before, 1,768 now (rustc 1.95).
#[tokio::test]
async fn an_idle_connection_task_stays_small() {
    let (stream, _peer) = tokio::io::duplex(64);
    let task = run(shared(), stream, Identity::ClientId, "mqtt");
    assert!(size_of_val(&task) <= 2048, "{} bytes", size_of_val(&task));
}

/// The read buffer is small between packets, grows for a packet spanning reads, and is given
/// back once that packet has been consumed.
#[tokio::test]
async fn the_read_buffer_grows_for_large_packets_and_shrinks_when_drained() {
    let (stream, mut peer) = tokio::io::duplex(256 * 1024);
    let (reader, writer) = tokio::io::split(stream);
    let mut conn = Connection::new(shared(), reader, writer);
    let mut wire = BytesMut::new();
    let big = mqttbytes::v4::Publish::new("a/b", QoS::AtMostOnce, vec![7u8; 100_000]);
    Packet::Publish(big)
        .write(&mut wire, 1 << 20)
        .expect("encode");
    Packet::PingReq.write(&mut wire, 16).expect("encode");
    peer.write_all(&wire).await.expect("write");

    match conn.read_packet().await {
        Ok(Packet::Publish(p)) => assert_eq!(p.payload.len(), 100_000),
        other => panic!("expected the large publish, got {other:?}"),
    }
    match conn.read_packet().await {
        Ok(Packet::PingReq) => {}
        other => panic!("expected PINGREQ, got {other:?}"),
    }
    assert!(conn.rbuf.is_empty() && conn.rbuf_grown);
    conn.reserve_read_buffer();
    assert_eq!(conn.rbuf.capacity(), IDLE_READ_BUFFER);
    assert!(!conn.rbuf_grown);
}

/// The write-stall clock starts when replies begin to wait and restarts on progress; a socket
/// that takes nothing leaves it running, and time spent with nothing to write never counts.
#[tokio::test]
async fn the_write_stall_clock_runs_only_while_replies_wait_without_progress() {
    let (stream, _peer) = tokio::io::duplex(16); // the peer never reads
    let (reader, writer) = tokio::io::split(stream);
    let mut conn = Connection::new(shared(), reader, writer);
    let mut scratch = BytesMut::new();
    let mut reply = |conn: &mut Connection<_, _>| {
        conn.pending
            .push_packet(&Packet::PingResp, &mut scratch)
            .expect("encode");
    };
    // Eight 2-byte replies fill the peer's 16-byte window exactly: all out.
    for _ in 0..8 {
        reply(&mut conn);
    }
    conn.write_now().expect("write");
    assert!(conn.drained);
    // An hour with nothing to write; then a reply the full window cannot take.
    conn.write_progress = Instant::now() - Duration::from_secs(3600);
    reply(&mut conn);
    conn.write_now().expect("write");
    assert!(!conn.drained && conn.pending.remaining() == 2);
    let started = conn.write_progress;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the clock starts now"
    );
    // Still no room: the clock keeps running from `started`.
    reply(&mut conn);
    conn.write_now().expect("write");
    assert_eq!(conn.write_progress, started);
}
