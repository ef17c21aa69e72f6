//! Sans-IO tests of the [`Limits`] a session enforces.

use super::*;
use rumqttc::mqttbytes::v4::{Subscribe, SubscribeFilter};

fn session(limits: Limits, keep_alive: u16, now: Instant) -> Session {
    let mut c = Connect::new("dev-1");
    c.keep_alive = keep_alive;
    let principal = principal_for_connect(&c, &Identity::ClientId).expect("valid");
    Session::accept(principal, limits, &c, None, now, &mut Vec::new())
}

fn subscribe(s: &mut Session, pkid: u16, filters: &[String], now: Instant) -> Vec<Action> {
    let packet = Packet::Subscribe(Subscribe {
        pkid,
        filters: filters
            .iter()
            .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce))
            .collect(),
    });
    let mut out = Vec::new();
    s.handle_packet(packet, now, &mut out);
    out
}

fn suback_codes(out: &[Action]) -> Vec<SubscribeReasonCode> {
    match out.last() {
        Some(Action::Send(Packet::SubAck(ack))) => ack.return_codes.clone(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

const OK: SubscribeReasonCode = SubscribeReasonCode::Success(QoS::AtLeastOnce);
const NO: SubscribeReasonCode = SubscribeReasonCode::Failure;

#[test]
fn subscriptions_past_the_session_limit_are_refused_and_cost_nothing() {
    let now = Instant::now();
    let mut s = session(Limits::default(), 30, now);
    let mut broker_subscribes = 0;
    for i in 0..5_000u16 {
        let out = subscribe(&mut s, i + 1, &[format!("t/{i}")], now);
        broker_subscribes += out
            .iter()
            .filter(|a| matches!(a, Action::BrokerSubscribe(_)))
            .count();
        let expected = if i < 50 { OK } else { NO };
        assert_eq!(suback_codes(&out), [expected], "subscription {i}");
    }
    assert_eq!((broker_subscribes, s.state.subscriptions.len()), (50, 50));
    // Re-subscribing a held filter is not a new subscription; after an unsubscribe there is room.
    assert_eq!(
        suback_codes(&subscribe(&mut s, 1, &["t/7".into()], now)),
        [OK]
    );
    let mut out = Vec::new();
    s.handle_packet(
        Packet::Unsubscribe(rumqttc::mqttbytes::v4::Unsubscribe::new("t/7")),
        now,
        &mut out,
    );
    assert_eq!(
        suback_codes(&subscribe(&mut s, 2, &["u".into()], now)),
        [OK]
    );
}

#[test]
fn filters_past_eight_in_one_subscribe_are_refused() {
    let now = Instant::now();
    let mut s = session(Limits::default(), 30, now);
    let filters: Vec<String> = (0..10).map(|i| format!("f/{i}")).collect();
    let codes = suback_codes(&subscribe(&mut s, 1, &filters, now));
    assert_eq!(codes, [[OK; 8].as_slice(), &[NO; 2]].concat());
}

#[test]
fn ordinary_topics_and_filters_longer_than_256_bytes_are_refused() {
    let now = Instant::now();
    let mut s = session(Limits::default(), 30, now);
    let at_limit = "é".repeat(128); // 256 bytes
    let over = format!("{at_limit}x");
    let codes = suback_codes(&subscribe(
        &mut s,
        1,
        &[at_limit.clone(), over.clone()],
        now,
    ));
    assert_eq!(codes, [OK, NO]);
    let mut out = Vec::new();
    let publish = |topic: &str| Packet::Publish(Publish::new(topic, QoS::AtMostOnce, vec![]));
    s.handle_packet(publish(&at_limit), now, &mut out);
    assert!(
        matches!(&out[..], [Action::BrokerPublish { .. }]),
        "{out:?}"
    );
    out.clear();
    s.handle_packet(publish(&over), now, &mut out);
    assert_eq!(
        out,
        [Action::Close(CloseReason::ProtocolViolation(
            "topic name too long"
        ))]
    );
}

#[test]
fn keep_alive_zero_still_expires_after_1800_seconds() {
    let t0 = Instant::now();
    let s = session(Limits::default(), 0, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(1800)));
    let s = session(Limits::default(), 5, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(45)));
}

#[test]
fn past_the_unwritten_cap_qos0_is_dropped_and_qos1_closes_the_slow_consumer() {
    let now = Instant::now();
    let limits = Limits::default();
    let cap = limits.max_unwritten_bytes as usize;
    let mut s = session(limits, 30, now);
    subscribe(&mut s, 1, &["t".into()], now);
    let mut out = Vec::new();
    let msg = Bytes::from_static(b"m");
    assert!(!s.handle_broker_message("t", msg.clone(), QoS::AtMostOnce, cap, &mut out));
    assert_eq!(out.len(), 1, "at the cap it is still queued");
    out.clear();
    assert!(s.handle_broker_message("t", msg.clone(), QoS::AtMostOnce, cap + 1, &mut out));
    assert!(out.is_empty(), "QoS 0 dropped");
    assert!(s.handle_broker_message("t", msg, QoS::AtLeastOnce, cap + 1, &mut out));
    assert_eq!(out, [Action::Close(CloseReason::SlowConsumer)]);
}
