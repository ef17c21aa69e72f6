//! Sans-IO tests of [`Session`]: a simulated device feeds packets, the test reads the actions.

use super::*;
use rumqttc::mqttbytes::v4::{Subscribe, SubscribeFilter, Unsubscribe};

fn connect(client_id: &str, clean: bool, keep_alive: u16) -> Connect {
    let mut c = Connect::new(client_id);
    c.clean_session = clean;
    c.keep_alive = keep_alive;
    c.set_login("?SDK=C&Version=4.0.0", "");
    c
}

fn start(
    client_id: &str,
    clean: bool,
    stored: Option<SessionState>,
    now: Instant,
) -> (Session, Vec<Action>) {
    let c = connect(client_id, clean, 30);
    let principal = principal_for_connect(&c, &Identity::ClientId).expect("valid client id");
    let mut out = Vec::new();
    let session = Session::accept(principal, Limits::default(), &c, stored, now, &mut out);
    (session, out)
}

fn subscribe(pkid: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        pkid,
        filters: filters
            .iter()
            .map(|(f, q)| SubscribeFilter::new((*f).to_owned(), *q))
            .collect(),
    })
}

fn feed(session: &mut Session, packet: Packet, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    session.handle_packet(packet, now, &mut out);
    out
}

#[test]
fn connect_answers_connack_and_takes_the_client_id_as_thing() {
    let (session, out) = start("dev-1", true, None, Instant::now());
    assert_eq!(session.thing(), Some("dev-1"));
    assert_eq!(
        out,
        vec![Action::Send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false
        )))]
    );
}

fn thing_principal(thing: &str) -> Principal {
    Principal {
        client_id: thing.into(),
        thing: Some(thing.into()),
        authorizer: None,
    }
}

#[test]
fn certificate_identity_wins_over_client_id_and_bad_client_ids_are_refused() {
    let c = connect("any client / id", true, 30);
    assert_eq!(
        principal_for_connect(&c, &Identity::Certificate("dev-9".into())),
        Ok(Principal {
            client_id: "any client / id".into(),
            thing: Some("dev-9".into()),
            authorizer: None,
        })
    );
    let too_long = "é".repeat(129);
    for bad in ["", "$aws", "nul\0char", too_long.as_str()] {
        let c = connect(bad, true, 30);
        for identity in [Identity::ClientId, Identity::Certificate("dev-9".into())] {
            assert_eq!(
                principal_for_connect(&c, &identity),
                Err(ConnectReturnCode::BadClientId),
                "{bad:?}"
            );
        }
    }
}

/// AWS takes any UTF-8 client id up to 128 characters: on the plain port one that is a valid
/// thing name acts for that thing, any other connects an application client for no thing.
#[test]
fn plain_port_client_ids_that_are_not_thing_names_connect_application_clients() {
    let at_limit = "é".repeat(128);
    for id in ["clean retained", "a/b", "dev+1", "#", at_limit.as_str()] {
        let c = connect(id, true, 30);
        let principal = principal_for_connect(&c, &Identity::ClientId).expect(id);
        assert_eq!(principal.thing, None, "{id}");
        assert_eq!(principal.session_key(), id);
    }
    let now = Instant::now();
    let c = connect("clean retained", true, 30);
    let principal = principal_for_connect(&c, &Identity::ClientId).expect("valid");
    let mut out = Vec::new();
    let mut s = Session::accept(principal, Limits::default(), &c, None, now, &mut out);
    assert!(matches!(&out[..], [Action::Send(Packet::ConnAck(_))]));
    let out = feed(
        &mut s,
        subscribe(
            1,
            &[
                ("clean/retained", QoS::AtLeastOnce),
                (
                    "$aws/things/clean retained/jobs/notify-next",
                    QoS::AtMostOnce,
                ),
            ],
        ),
        now,
    );
    assert_eq!(
        out,
        vec![
            Action::BrokerSubscribe("clean/retained".into()),
            Action::Send(Packet::SubAck(SubAck::new(
                1,
                vec![
                    SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    SubscribeReasonCode::Failure
                ]
            ))),
        ]
    );
    // Reserved topics of any thing are forbidden: the publish closes the connection.
    let out = feed(
        &mut s,
        Packet::Publish(Publish::new(
            "$aws/things/clean retained/jobs/get",
            QoS::AtMostOnce,
            b"{}".to_vec(),
        )),
        now,
    );
    assert!(matches!(
        out.last(),
        Some(Action::Close(CloseReason::PolicyViolation(_)))
    ));
}

#[test]
fn subscribe_grants_own_and_ordinary_filters_and_refuses_foreign_ones() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    let out = feed(
        &mut s,
        subscribe(
            7,
            &[
                ("$aws/things/dev-1/streams/s1/data/cbor", QoS::AtMostOnce),
                ("$aws/things/dev-2/streams/s1/data/cbor", QoS::AtMostOnce),
                ("fleet/+/status", QoS::ExactlyOnce),
                ("$SYS/#", QoS::AtMostOnce),
                ("bad/#/filter", QoS::AtMostOnce),
            ],
        ),
        now,
    );
    assert_eq!(
        out,
        vec![
            Action::BrokerSubscribe("fleet/+/status".into()),
            Action::Send(Packet::SubAck(SubAck::new(
                7,
                vec![
                    SubscribeReasonCode::Success(QoS::AtMostOnce),
                    SubscribeReasonCode::Failure,
                    SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    SubscribeReasonCode::Failure,
                    SubscribeReasonCode::Failure,
                ]
            ))),
        ]
    );
    assert!(s.has_broker_subscriptions());
}

#[test]
fn publishes_are_routed_by_policy_and_qos1_is_acknowledged() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    let mut own = Publish::new(
        "$aws/things/dev-1/streams/s1/get/cbor",
        QoS::AtLeastOnce,
        vec![0xa0],
    );
    own.pkid = 3;
    let out = feed(&mut s, Packet::Publish(own.clone()), now);
    assert_eq!(
        out,
        vec![
            Action::Send(Packet::PubAck(PubAck::new(3))),
            Action::Reserved(own)
        ]
    );

    let out = feed(
        &mut s,
        Packet::Publish(Publish::new("fleet/x", QoS::AtMostOnce, b"hi".to_vec())),
        now,
    );
    assert_eq!(
        out,
        vec![Action::BrokerPublish {
            topic: "fleet/x".into(),
            payload: Bytes::from_static(b"hi"),
            qos: QoS::AtMostOnce,
        }]
    );

    let foreign = Publish::new(
        "$aws/things/dev-2/streams/s1/get/cbor",
        QoS::AtMostOnce,
        vec![],
    );
    let out = feed(&mut s, Packet::Publish(foreign), now);
    assert!(
        matches!(&out[..], [Action::Close(CloseReason::PolicyViolation(t))] if t.contains("dev-2"))
    );
    assert!(s.is_closed());
    assert!(
        feed(&mut s, Packet::PingReq, now).is_empty(),
        "a closed session ignores input"
    );
}

#[test]
fn qos2_and_server_packets_from_the_client_close_the_session() {
    let now = Instant::now();
    for packet in [
        Packet::Publish(Publish::new("fleet/x", QoS::ExactlyOnce, vec![1])),
        Packet::PingResp,
        Packet::Connect(Connect::new("dev-1")),
    ] {
        let (mut s, _) = start("dev-1", true, None, now);
        let out = feed(&mut s, packet, now);
        assert!(
            matches!(&out[..], [Action::Close(CloseReason::ProtocolViolation(_))]),
            "{out:?}"
        );
    }
}

#[test]
fn broker_messages_use_the_granted_qos_and_pubacks_clear_inflight() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    feed(
        &mut s,
        subscribe(
            1,
            &[("fleet/#", QoS::AtLeastOnce), ("fleet/a", QoS::AtMostOnce)],
        ),
        now,
    );
    let mut out = Vec::new();
    s.handle_broker_message(
        "fleet/a",
        Bytes::from_static(b"m1"),
        QoS::AtLeastOnce,
        0,
        &mut out,
    );
    let Action::Send(Packet::Publish(p)) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (p.qos, p.pkid, &p.payload[..]),
        (QoS::AtLeastOnce, 1, &b"m1"[..])
    );
    assert_eq!(s.state.inflight.len(), 1);
    feed(&mut s, Packet::PubAck(PubAck::new(1)), now);
    assert!(s.state.inflight.is_empty());

    out.clear();
    s.handle_broker_message("other/topic", Bytes::new(), QoS::AtLeastOnce, 0, &mut out);
    assert!(out.is_empty(), "no matching subscription");
}

/// MQTT 3.1.1 §3.8.4: a message goes out at the lower of its published QoS and the granted one.
#[test]
fn broker_messages_go_out_at_the_lower_of_published_and_granted_qos() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    feed(
        &mut s,
        subscribe(1, &[("q1/#", QoS::AtLeastOnce), ("q0/#", QoS::AtMostOnce)]),
        now,
    );
    for (topic, published, delivered) in [
        ("q1/a", QoS::AtMostOnce, QoS::AtMostOnce),
        ("q1/a", QoS::AtLeastOnce, QoS::AtLeastOnce),
        ("q0/a", QoS::AtLeastOnce, QoS::AtMostOnce),
        ("q0/a", QoS::AtMostOnce, QoS::AtMostOnce),
    ] {
        let mut out = Vec::new();
        s.handle_broker_message(topic, Bytes::new(), published, 0, &mut out);
        let [Action::Send(Packet::Publish(p))] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!(p.qos, delivered, "{topic} published at {published:?}");
    }
}

#[test]
fn inflight_is_bounded_and_overflow_goes_out_at_qos0() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    feed(&mut s, subscribe(1, &[("t", QoS::AtLeastOnce)]), now);
    let mut out = Vec::new();
    for _ in 0..=MAX_INFLIGHT {
        s.handle_broker_message("t", Bytes::new(), QoS::AtLeastOnce, 0, &mut out);
    }
    let qos1 = out
        .iter()
        .filter(|a| matches!(a, Action::Send(Packet::Publish(p)) if p.qos == QoS::AtLeastOnce))
        .count();
    assert_eq!(qos1, MAX_INFLIGHT);
    assert!(
        matches!(out.last(), Some(Action::Send(Packet::Publish(p))) if p.qos == QoS::AtMostOnce)
    );
}

#[test]
fn persistent_sessions_resume_subscriptions_and_resend_unacked_messages() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", false, None, now);
    feed(
        &mut s,
        subscribe(
            1,
            &[
                ("fleet/a", QoS::AtLeastOnce),
                ("$aws/things/dev-1/jobs/notify-next", QoS::AtLeastOnce),
            ],
        ),
        now,
    );
    let mut out = Vec::new();
    s.handle_broker_message(
        "fleet/a",
        Bytes::from_static(b"x"),
        QoS::AtLeastOnce,
        0,
        &mut out,
    );
    feed(&mut s, Packet::Disconnect, now);
    let state = s.into_state().expect("persistent");

    let (mut resumed, out) = start("dev-1", false, Some(state.clone()), now);
    assert_eq!(
        out[0],
        Action::Send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            true
        )))
    );
    assert!(matches!(&out[1], Action::Send(Packet::Publish(p)) if p.dup && p.pkid == 1));
    assert_eq!(
        out.len(),
        2,
        "broker filters live on in the kept link: {out:?}"
    );
    assert!(resumed.has_broker_subscriptions());
    let mut out = Vec::new();
    assert!(resumed.handle_reserved_notification(
        "$aws/things/dev-1/jobs/notify-next",
        Bytes::new(),
        now,
        &mut out
    ));

    let (clean, out) = start("dev-1", true, Some(state), now);
    assert_eq!(
        out,
        vec![Action::Send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false
        )))]
    );
    assert!(clean.into_state().is_none());
}

#[test]
fn unsubscribe_removes_filters_and_answers_unsuback() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    feed(&mut s, subscribe(1, &[("fleet/a", QoS::AtMostOnce)]), now);
    let out = feed(
        &mut s,
        Packet::Unsubscribe(Unsubscribe {
            pkid: 2,
            topics: vec!["fleet/a".into(), "never".into()],
        }),
        now,
    );
    assert_eq!(
        out,
        vec![
            Action::BrokerUnsubscribe("fleet/a".into()),
            Action::Send(Packet::UnsubAck(UnsubAck::new(2)))
        ]
    );
    assert!(!s.has_broker_subscriptions());
}

#[test]
fn keep_alive_expires_after_one_and_a_half_intervals_of_silence() {
    let t0 = Instant::now();
    let (mut s, _) = start("dev-1", true, None, t0);
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(45)));
    let t1 = t0 + Duration::from_secs(40);
    assert_eq!(
        feed(&mut s, Packet::PingReq, t1),
        vec![Action::Send(Packet::PingResp)]
    );
    let mut out = Vec::new();
    s.handle_timeout(t1 + Duration::from_secs(44), &mut out);
    assert!(out.is_empty());
    s.handle_timeout(t1 + Duration::from_secs(45), &mut out);
    assert_eq!(out, vec![Action::Close(CloseReason::KeepAliveExpired)]);
}

#[test]
fn the_last_will_is_published_unless_the_device_disconnects_cleanly() {
    let now = Instant::now();
    let with_will = |topic: &str| {
        let mut c = connect("dev-1", true, 30);
        c.last_will = Some(rumqttc::mqttbytes::v4::LastWill::new(
            topic,
            b"gone".to_vec(),
            QoS::AtMostOnce,
            false,
        ));
        let mut out = Vec::new();
        (
            Session::accept(
                thing_principal("dev-1"),
                Limits::default(),
                &c,
                None,
                now,
                &mut out,
            ),
            out,
        )
    };
    let (mut s, _) = with_will("fleet/dev-1/status");
    let mut out = Vec::new();
    s.close(CloseReason::ConnectionLost, &mut out);
    assert_eq!(
        out,
        vec![
            Action::BrokerPublish {
                topic: "fleet/dev-1/status".into(),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
            },
            Action::Close(CloseReason::ConnectionLost),
        ]
    );

    let (mut s, _) = with_will("fleet/dev-1/status");
    let out = feed(&mut s, Packet::Disconnect, now);
    assert_eq!(out, vec![Action::Close(CloseReason::ClientDisconnect)]);

    let (mut s, _) = with_will("$aws/things/dev-2/x");
    let mut out = Vec::new();
    s.close(CloseReason::KeepAliveExpired, &mut out);
    assert_eq!(
        out,
        vec![Action::Close(CloseReason::KeepAliveExpired)],
        "wills on $ topics are ignored"
    );
}

#[test]
fn replies_reach_the_requester_without_a_subscription() {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    let mut out = Vec::new();
    let topic = "$aws/things/dev-1/jobs/$next/get/accepted";
    assert!(!s.handle_reserved_notification(topic, Bytes::from_static(b"{}"), now, &mut out));
    assert!(out.is_empty(), "notifications need a subscription");
    s.handle_reply(topic, Bytes::from_static(b"{}"), &mut out);
    assert!(
        matches!(&out[..], [Action::Send(Packet::Publish(p))] if p.topic == topic && p.qos == QoS::AtMostOnce)
    );

    feed(
        &mut s,
        subscribe(1, &[("$aws/things/dev-1/jobs/#", QoS::AtLeastOnce)]),
        now,
    );
    out.clear();
    s.handle_reply(topic, Bytes::from_static(b"{}"), &mut out);
    assert!(matches!(&out[..], [Action::Send(Packet::Publish(p))] if p.qos == QoS::AtLeastOnce));
}

fn publish(topic: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload))
}

/// A session of `dev-1` subscribed to its `notify-next`.
fn subscribed_to_notify_next() -> (Session, Instant) {
    let now = Instant::now();
    let (mut s, _) = start("dev-1", true, None, now);
    let filter = "$aws/things/dev-1/jobs/notify-next";
    feed(&mut s, subscribe(1, &[(filter, QoS::AtMostOnce)]), now);
    (s, now)
}

#[test]
fn notify_next_is_withheld_while_a_next_get_waits_for_its_answer() {
    let (mut s, now) = subscribed_to_notify_next();
    let notify = "$aws/things/dev-1/jobs/notify-next";
    let job = Bytes::from_static(br#"{"execution":{"jobId":"j1"}}"#);
    let out = feed(
        &mut s,
        publish(
            "$aws/things/dev-1/jobs/$next/get",
            br#"{"clientToken":":dev-1"}"#,
        ),
        now,
    );
    assert!(matches!(&out[..], [Action::Reserved(p)] if p.topic.ends_with("$next/get")));
    // The job was created while the request was queued: its notify-next comes first ...
    let mut out = Vec::new();
    assert!(!s.handle_reserved_notification(notify, job.clone(), now, &mut out));
    assert!(out.is_empty(), "withheld: {out:?}");
    // ... and the answer, which carries the same job, reaches the device once.
    s.handle_reply(
        "$aws/things/dev-1/jobs/$next/get/accepted",
        job.clone(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    // Answered: the next job change is notified again.
    out.clear();
    assert!(s.handle_reserved_notification(notify, job.clone(), now, &mut out));
    assert!(matches!(&out[..], [Action::Send(Packet::Publish(p))] if p.topic == notify));
    // Other notifications and other requests are not affected.
    feed(&mut s, publish("$aws/things/dev-1/jobs/get", b"{}"), now);
    feed(
        &mut s,
        subscribe(2, &[("$aws/things/dev-1/jobs/notify", QoS::AtMostOnce)]),
        now,
    );
    out.clear();
    assert!(s.handle_reserved_notification(notify, job.clone(), now, &mut out));
    let list = "$aws/things/dev-1/jobs/notify";
    feed(
        &mut s,
        publish("$aws/things/dev-1/jobs/$next/get", b""),
        now,
    );
    assert!(s.handle_reserved_notification(list, job, now, &mut out));
}

#[test]
fn a_next_get_that_is_never_answered_stops_withholding_after_a_while() {
    let (mut s, now) = subscribed_to_notify_next();
    let notify = "$aws/things/dev-1/jobs/notify-next";
    feed(
        &mut s,
        publish("$aws/things/dev-1/jobs/$next/get", b""),
        now,
    );
    let mut out = Vec::new();
    let almost = now + UNANSWERED_AFTER - Duration::from_millis(1);
    assert!(!s.handle_reserved_notification(notify, Bytes::new(), almost, &mut out));
    assert!(s.handle_reserved_notification(notify, Bytes::new(), now + UNANSWERED_AFTER, &mut out));
    assert_eq!(out.len(), 1);
}

mod garbage {
    //! Whatever bytes a device sends, decoding plus the session never panic, and a closed
    //! session says nothing more.
    use super::*;
    use crate::wire::MAX_INCOMING_PACKET;
    use bytes::BytesMut;
    use proptest::prelude::*;

    /// Topics from every policy class: own reserved, foreign reserved, `$SYS`, ordinary, junk.
    fn topic() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("$aws/things/dev-1/streams/s/get/cbor".to_owned()),
            Just("$aws/things/dev-2/jobs/$next/get".to_owned()),
            Just("$SYS/x".to_owned()),
            "[a-z+#/]{0,12}",
        ]
    }

    /// One client packet, encoded.
    fn packet() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..6,
            topic(),
            proptest::collection::vec(any::<u8>(), 0..40),
            0u8..3,
            1u16..5,
        )
            .prop_map(|(kind, topic, payload, qos, pkid)| {
                let qos = rumqttc::mqttbytes::qos(qos).unwrap_or(QoS::AtMostOnce);
                let packet = match kind {
                    0 => {
                        let mut p = Publish::new(topic, qos, payload);
                        p.pkid = if qos == QoS::AtMostOnce { 0 } else { pkid };
                        Packet::Publish(p)
                    }
                    1 => subscribe(pkid, &[(topic.as_str(), qos)]),
                    2 => Packet::Unsubscribe(Unsubscribe {
                        pkid,
                        topics: vec![topic],
                    }),
                    3 => Packet::PubAck(PubAck::new(pkid)),
                    4 => Packet::PingReq,
                    _ => Packet::Disconnect,
                };
                let mut buf = BytesMut::new();
                // Junk topics may not encode; they are simply left out.
                let _ = packet.write(&mut buf, MAX_INCOMING_PACKET);
                buf.to_vec()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn packet_streams_with_flipped_bytes_never_panic(
            packets in proptest::collection::vec(packet(), 0..12),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        ) {
            let mut bytes: Vec<u8> = packets.concat();
            for (at, value) in flips {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = value;
                }
            }
            let now = Instant::now();
            let c = connect("dev-1", false, 5);
            let mut out = Vec::new();
            let mut session = Session::accept(thing_principal("dev-1"), Limits::default(), &c, None, now, &mut out);
            let mut buf = BytesMut::from(&bytes[..]);
            // Decode until the bytes run out or are malformed, as the driver does.
            while let Ok(packet) = Packet::read(&mut buf, MAX_INCOMING_PACKET) {
                session.handle_packet(packet, now, &mut out);
                session.handle_broker_message("t/x", Bytes::from_static(b"m"), QoS::AtLeastOnce, 0, &mut out);
            }
            session.handle_timeout(now + Duration::from_secs(60), &mut out);
            let closes = out.iter().filter(|a| matches!(a, Action::Close(_))).count();
            prop_assert_eq!(closes, 1, "closed exactly once (at the latest by the keep-alive)");
            prop_assert!(matches!(out.last(), Some(Action::Close(_))), "nothing after the close");
        }
    }
}
