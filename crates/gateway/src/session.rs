//! The sans-IO MQTT 3.1.1 session: decoded packets and `now` in, [`Action`]s out.
//!
//! Calling order for a driver:
//! 1. read the first packet; it must be CONNECT. Call [`principal_for_connect`] to learn who it is,
//!    look up a stored [`SessionState`] under its [`Principal::session_key`], then
//!    [`Session::accept`], which answers with CONNACK
//!    (and re-sends unacknowledged QoS 1 messages of a resumed session).
//! 2. for every further packet call [`Session::handle_packet`]; for every message the embedded broker
//!    forwards call [`Session::handle_broker_message`].
//! 3. sleep until [`Session::poll_timeout`] and call [`Session::handle_timeout`] then (keep-alive).
//! 4. after an [`Action::Close`], call [`Session::into_state`] to keep a persistent session.
//!
//! The session never touches sockets, the broker or the clock; it only decides.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
    UnsubAck,
};
use rumqttc::mqttbytes::{QoS, matches};

use crate::authorize::{Authorization, Authorizer};
use crate::policy::{self, Route};

pub mod connect_check;
mod limits;
mod next_get;
pub use limits::Limits;
pub use next_get::{MAX_PENDING, PendingNextGets, UNANSWERED_AFTER};

/// Most QoS 1 messages sent to a device and not yet acknowledged; more go out at QoS 0.
pub const MAX_INFLIGHT: usize = 100;

/// How the transport identified the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// TLS client certificate that is not registered (signed by the dev CA): the thing name is the
    /// certificate's CN; topics follow the fixed rule of [`policy`].
    Certificate(String),
    /// A registered TLS client certificate: acts for `thing`, and every CONNECT, PUBLISH,
    /// SUBSCRIBE and delivery must also be allowed by its attached policies.
    Registered {
        /// The thing the session is keyed by.
        thing: String,
        /// What the certificate is granted.
        authorization: Arc<Authorization>,
    },
    /// Plain TCP (development): the MQTT client id is the thing name when it is a valid one;
    /// any other client id connects an application client that acts for no thing.
    ClientId,
}

/// Who a connection is, as decided at CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The MQTT client id.
    pub client_id: String,
    /// The thing the connection acts for: the certificate's CN on TLS; on the plain port the
    /// client id when it is a valid thing name, else None: an unauthenticated application client
    /// that may use ordinary topics only (no `$aws/things/...` topic at all).
    pub thing: Option<String>,
    /// The policy decisions of a registered certificate (None: only the fixed rule applies).
    pub authorizer: Option<Authorizer>,
}

impl Principal {
    /// The key under which the registry tracks the session (takeover, persistent state): the thing
    /// name, or for an application client its client id. Such a client id is never a valid thing
    /// name, so the two kinds never collide.
    pub fn session_key(&self) -> &str {
        self.thing.as_deref().unwrap_or(&self.client_id)
    }
}

/// What the driver must do after feeding the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this packet to the device.
    Send(Packet),
    /// A PUBLISH on the session's own `$aws/things/<thing>/...` topic, to be answered in-process.
    Reserved(Publish),
    /// Publish on an ordinary topic through the embedded broker.
    BrokerPublish {
        /// Topic name (never `$`-prefixed).
        topic: String,
        /// Message payload.
        payload: Bytes,
        /// The QoS it was published with: subscribers get at most this (MQTT 3.1.1 §3.8.4).
        qos: QoS,
    },
    /// Subscribe the session's broker link to an ordinary filter.
    BrokerSubscribe(String),
    /// Unsubscribe the session's broker link from an ordinary filter.
    BrokerUnsubscribe(String),
    /// Close the connection; no further packets are processed.
    Close(CloseReason),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The device sent DISCONNECT.
    #[error("client disconnected")]
    ClientDisconnect,
    /// No packet within 1.5 × keep-alive.
    #[error("keep-alive expired")]
    KeepAliveExpired,
    /// The device broke the MQTT protocol.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// The device published on a topic its policy forbids.
    #[error("topic not allowed: {0}")]
    PolicyViolation(String),
    /// The transport failed or the peer went away without DISCONNECT.
    #[error("connection lost")]
    ConnectionLost,
    /// Another connection authenticated as the same thing.
    #[error("taken over by a newer connection")]
    TakenOver,
    /// A QoS 1 message found more than `Limits::max_unwritten_bytes` waiting for the device.
    #[error("slow consumer: too many unwritten bytes")]
    SlowConsumer,
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subscription {
    filter: String,
    qos: QoS,
    route: Route,
}

/// The part of a session that outlives its connection when `clean_session` is false.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    subscriptions: Vec<Subscription>,
    inflight: BTreeMap<u16, Publish>,
    last_pkid: u16,
}

impl SessionState {
    /// The ordinary-topic (broker) filters of this state.
    pub fn broker_filters(&self) -> impl Iterator<Item = &str> {
        self.subscriptions
            .iter()
            .filter(|s| s.route == Route::Broker)
            .map(|s| s.filter.as_str())
    }
}

/// Finds who a CONNECT (already through [`connect_check::check_connect`]) authenticates as, or
/// the CONNACK code that refuses it.
pub fn principal_for_connect(
    connect: &Connect,
    identity: &Identity,
) -> Result<Principal, ConnectReturnCode> {
    if !valid_client_id(&connect.client_id) {
        return Err(ConnectReturnCode::BadClientId);
    }
    let (thing, authorizer) = match identity {
        Identity::Certificate(cn) => (Some(cn.clone()), None),
        Identity::Registered {
            thing,
            authorization,
        } => {
            let authorizer = Authorizer::for_client(Arc::clone(authorization), &connect.client_id);
            if !authorizer.may_connect() {
                return Err(ConnectReturnCode::NotAuthorized);
            }
            (Some(thing.clone()), Some(authorizer))
        }
        Identity::ClientId => (
            valid_thing_name(&connect.client_id).then(|| connect.client_id.clone()),
            None,
        ),
    };
    Ok(Principal {
        client_id: connect.client_id.clone(),
        thing,
        authorizer,
    })
}

/// AWS IoT client ids: 1–128 characters of UTF-8 (spaces and `/` included), not starting with
/// `$`, and without U+0000 (MQTT-1.5.3-2). An empty client id is refused, as the server assigns
/// none.
pub fn valid_client_id(id: &str) -> bool {
    !id.starts_with('$') && !id.contains('\0') && (1..=128).contains(&id.chars().count())
}

pub use otastream_chunker::topic::valid_thing_name;

/// One device's MQTT session.
#[derive(Debug)]
pub struct Session {
    principal: Principal,
    limits: Limits,
    clean_session: bool,
    keep_alive: Duration,
    last_activity: Instant,
    state: SessionState,
    /// Last will on an ordinary topic (topic, message, QoS): published through the broker unless
    /// the device sends DISCONNECT. Wills on `$` topics are ignored.
    will: Option<(String, Bytes, QoS)>,
    closed: bool,
    /// This connection's `$next/get` requests still waiting for their answer.
    next_gets: PendingNextGets,
}

impl Session {
    /// Accepts a CONNECT for `principal` (from [`principal_for_connect`]), resuming `stored` unless the
    /// device asked for a clean session. Pushes the CONNACK and any re-sent QoS 1 messages to `out`.
    /// A resumed session's broker subscriptions live on in the broker link kept with its state, so
    /// they are not subscribed again.
    pub fn accept(
        principal: Principal,
        limits: Limits,
        connect: &Connect,
        stored: Option<SessionState>,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Self {
        let resumed = if connect.clean_session { None } else { stored };
        let session_present = resumed.is_some();
        let state = resumed.unwrap_or_default();
        let keep_alive = limits.keep_alive(connect.keep_alive);
        out.push(Action::Send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            session_present,
        ))));
        for publish in state.inflight.values() {
            let mut again = publish.clone();
            again.dup = true;
            out.push(Action::Send(Packet::Publish(again)));
        }
        let will = connect
            .last_will
            .as_ref()
            .filter(|w| {
                policy::classify_topic(principal.thing.as_deref(), &w.topic) == Ok(Route::Broker)
                    && principal
                        .authorizer
                        .as_ref()
                        .is_none_or(|a| a.may_publish(&w.topic, w.retain))
            })
            .map(|w| {
                (
                    w.topic.clone(),
                    w.message.clone(),
                    min_qos(w.qos, QoS::AtLeastOnce),
                )
            });
        Self {
            principal,
            limits,
            clean_session: connect.clean_session,
            keep_alive,
            last_activity: now,
            state,
            will,
            closed: false,
            next_gets: PendingNextGets::default(),
        }
    }

    /// The thing this session acts for (None: an application client).
    pub fn thing(&self) -> Option<&str> {
        self.principal.thing.as_deref()
    }

    /// Who this session is.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the device asked for a clean session.
    pub fn clean_session(&self) -> bool {
        self.clean_session
    }

    /// Whether the session has any ordinary-topic subscription (and so needs a broker link).
    pub fn has_broker_subscriptions(&self) -> bool {
        self.state.broker_filters().next().is_some()
    }

    /// Handles one packet received from the device.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.last_activity = now;
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish, now, out),
            Packet::PubAck(ack) => {
                self.state.inflight.remove(&ack.pkid);
            }
            Packet::Subscribe(subscribe) => {
                let most = self.limits.max_filters_per_subscribe as usize;
                let return_codes = subscribe
                    .filters
                    .into_iter()
                    .enumerate()
                    .map(|(i, f)| {
                        if i < most {
                            self.subscribe(f.path, f.qos, out)
                        } else {
                            SubscribeReasonCode::Failure
                        }
                    })
                    .collect();
                out.push(Action::Send(Packet::SubAck(SubAck::new(
                    subscribe.pkid,
                    return_codes,
                ))));
            }
            Packet::Unsubscribe(unsubscribe) => {
                for filter in unsubscribe.topics {
                    self.unsubscribe(&filter, out);
                }
                out.push(Action::Send(Packet::UnsubAck(UnsubAck::new(
                    unsubscribe.pkid,
                ))));
            }
            Packet::PingReq => out.push(Action::Send(Packet::PingResp)),
            Packet::Disconnect => self.close(CloseReason::ClientDisconnect, out),
            Packet::Connect(_) => self.close(CloseReason::ProtocolViolation("second CONNECT"), out),
            Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => {
                self.close(
                    CloseReason::ProtocolViolation("QoS 2 is not supported"),
                    out,
                );
            }
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                self.close(
                    CloseReason::ProtocolViolation("server-only packet from client"),
                    out,
                );
            }
        }
    }

    fn handle_publish(&mut self, publish: Publish, now: Instant, out: &mut Vec<Action>) {
        let route = match policy::classify_topic(self.thing(), &publish.topic) {
            Ok(route) => route,
            Err(policy::PolicyError::Malformed) => {
                return self.close(CloseReason::ProtocolViolation("malformed topic name"), out);
            }
            Err(policy::PolicyError::Forbidden) => {
                return self.close(CloseReason::PolicyViolation(publish.topic), out);
            }
        };
        if let Some(authorizer) = &self.principal.authorizer
            && !authorizer.may_publish(&publish.topic, publish.retain)
        {
            // AWS closes the connection of a client that publishes where its policy says no.
            return self.close(CloseReason::PolicyViolation(publish.topic), out);
        }
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => out.push(Action::Send(Packet::PubAck(PubAck::new(publish.pkid)))),
            QoS::ExactlyOnce => {
                return self.close(
                    CloseReason::ProtocolViolation("QoS 2 is not supported"),
                    out,
                );
            }
        }
        if route == Route::Broker && publish.topic.len() > self.limits.max_topic_bytes as usize {
            return self.close(CloseReason::ProtocolViolation("topic name too long"), out);
        }
        match route {
            Route::Reserved => {
                if self.own_reserved_suffix(&publish.topic) == Some(PendingNextGets::REQUEST) {
                    self.next_gets.sent(now);
                }
                out.push(Action::Reserved(publish));
            }
            Route::Broker => out.push(Action::BrokerPublish {
                topic: publish.topic,
                payload: publish.payload,
                qos: publish.qos,
            }),
        }
    }

    fn subscribe(
        &mut self,
        filter: String,
        qos: QoS,
        out: &mut Vec<Action>,
    ) -> SubscribeReasonCode {
        let Ok(route) = policy::classify_filter(self.thing(), &filter) else {
            return SubscribeReasonCode::Failure;
        };
        if let Some(authorizer) = &self.principal.authorizer
            && !authorizer.may_subscribe(&filter)
        {
            return SubscribeReasonCode::Failure;
        }
        if route == Route::Broker && filter.len() > self.limits.max_topic_bytes as usize {
            return SubscribeReasonCode::Failure;
        }
        // AWS IoT grants at most QoS 1.
        let qos = if qos == QoS::AtMostOnce {
            qos
        } else {
            QoS::AtLeastOnce
        };
        let subs = &mut self.state.subscriptions;
        let full = subs.len() >= self.limits.max_subscriptions as usize;
        match subs.iter_mut().find(|s| s.filter == filter) {
            Some(existing) => existing.qos = qos,
            None if full => {
                return SubscribeReasonCode::Failure;
            }
            None => {
                if route == Route::Broker {
                    out.push(Action::BrokerSubscribe(filter.clone()));
                }
                subs.push(Subscription { filter, qos, route });
            }
        }
        SubscribeReasonCode::Success(qos)
    }

    fn unsubscribe(&mut self, filter: &str, out: &mut Vec<Action>) {
        let subs = &mut self.state.subscriptions;
        if let Some(pos) = subs.iter().position(|s| s.filter == filter) {
            let removed = subs.remove(pos);
            if removed.route == Route::Broker {
                out.push(Action::BrokerUnsubscribe(removed.filter));
            }
        }
    }

    /// Delivers a message the embedded broker forwarded to this session's link, published with
    /// `published` QoS: at the lower of that and the highest QoS among the matching subscriptions
    /// (MQTT 3.1.1 §3.8.4; dropped if none matches any more). `unwritten` is how many bytes wait
    /// for the device now: past [`Limits::max_unwritten_bytes`] a QoS 0 message is dropped and a
    /// QoS 1 message closes the session ([`CloseReason::SlowConsumer`]). Returns whether the
    /// message was held back for that reason.
    pub fn handle_broker_message(
        &mut self,
        topic: &str,
        payload: Bytes,
        published: QoS,
        unwritten: usize,
        out: &mut Vec<Action>,
    ) -> bool {
        let Some(granted) = self.granted_qos(Route::Broker, topic) else {
            return false;
        };
        let qos = min_qos(granted, published);
        if unwritten > self.limits.max_unwritten_bytes as usize {
            if qos == QoS::AtLeastOnce {
                self.close(CloseReason::SlowConsumer, out);
            }
            return true;
        }
        self.deliver(topic, payload, qos, out);
        false
    }

    /// Delivers an in-process message on one of this thing's reserved topics (for example a jobs
    /// `notify-next`) if the device subscribed to it. Returns whether it was delivered. A
    /// `notify-next` is withheld while one of the device's `$next/get` requests is unanswered:
    /// the answer carries the same job (see [`PendingNextGets`]).
    pub fn handle_reserved_notification(
        &mut self,
        topic: &str,
        payload: Bytes,
        now: Instant,
        out: &mut Vec<Action>,
    ) -> bool {
        if self.own_reserved_suffix(topic) == Some("jobs/notify-next")
            && self.next_gets.withhold_notify_next(now)
        {
            return false;
        }
        let qos = self.granted_qos(Route::Reserved, topic);
        if let Some(qos) = qos {
            self.deliver(topic, payload, qos, out);
        }
        qos.is_some()
    }

    /// Delivers the answer to one of this device's own reserved-topic requests (for example a jobs
    /// `$next/get/accepted`), subscribed or not, as AWS does: at the granted QoS if the device
    /// subscribed, else at QoS 0.
    pub fn handle_reply(&mut self, topic: &str, payload: Bytes, out: &mut Vec<Action>) {
        if let Some(answer) = self.own_reserved_suffix(topic)
            && answer
                .strip_prefix(PendingNextGets::REQUEST)
                .is_some_and(|r| r == "/accepted" || r == "/rejected")
        {
            self.next_gets.answered();
        }
        let qos = self
            .granted_qos(Route::Reserved, topic)
            .unwrap_or(QoS::AtMostOnce);
        self.deliver(topic, payload, qos, out);
    }

    /// The part of `topic` after this session's own `$aws/things/<thing>/` (None for an
    /// application client).
    fn own_reserved_suffix<'t>(&self, topic: &'t str) -> Option<&'t str> {
        policy::own_reserved_suffix(self.thing()?, topic)
    }

    /// The highest QoS among this session's `route` subscriptions that match `topic`.
    fn granted_qos(&self, route: Route, topic: &str) -> Option<QoS> {
        let matching = |filter: &str| match route {
            Route::Broker => matches(topic, filter),
            Route::Reserved => policy::filter_matches(filter, topic),
        };
        self.state
            .subscriptions
            .iter()
            .filter(|s| s.route == route && matching(&s.filter))
            .map(|s| s.qos)
            .max_by_key(|q| *q as u8)
    }

    fn deliver(&mut self, topic: &str, payload: Bytes, qos: QoS, out: &mut Vec<Action>) {
        if self.closed
            || self
                .principal
                .authorizer
                .as_ref()
                .is_some_and(|a| !a.may_receive(topic))
        {
            return;
        }
        let mut publish = Publish::from_bytes(topic, QoS::AtMostOnce, payload);
        if qos == QoS::AtLeastOnce && self.state.inflight.len() < MAX_INFLIGHT {
            publish.qos = QoS::AtLeastOnce;
            publish.pkid = self.next_pkid();
            self.state.inflight.insert(publish.pkid, publish.clone());
        }
        out.push(Action::Send(Packet::Publish(publish)));
    }

    fn next_pkid(&mut self) -> u16 {
        loop {
            self.state.last_pkid = self.state.last_pkid.checked_add(1).unwrap_or(1);
            if !self.state.inflight.contains_key(&self.state.last_pkid) {
                return self.state.last_pkid;
            }
        }
    }

    /// When the keep-alive expires if no packet arrives before. Always set: a keep-alive of 0 is
    /// taken as [`Limits::max_keep_alive_secs`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.last_activity + self.keep_alive + self.keep_alive / 2)
    }

    /// Closes the session if its keep-alive has expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.close(CloseReason::KeepAliveExpired, out);
        }
    }

    /// Ends the session (also used by the driver when the transport fails). Publishes the last
    /// will first unless the device said DISCONNECT.
    pub fn close(&mut self, reason: CloseReason, out: &mut Vec<Action>) {
        if self.closed {
            return;
        }
        self.closed = true;
        if reason != CloseReason::ClientDisconnect
            && let Some((topic, payload, qos)) = self.will.take()
        {
            out.push(Action::BrokerPublish {
                topic,
                payload,
                qos,
            });
        }
        out.push(Action::Close(reason));
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The state to keep for a later reconnect, or None for a clean session.
    pub fn into_state(self) -> Option<SessionState> {
        (!self.clean_session).then_some(self.state)
    }
}

/// The lower of two QoS levels.
fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) { a } else { b }
}

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
