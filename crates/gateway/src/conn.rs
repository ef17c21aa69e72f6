//! The tokio driver of one device connection: one task reads bytes, feeds the sans-IO
//! [`Session`], carries out its [`Action`]s and writes the reply frames (vectored writes of
//! headers and borrowed image slices) as the socket takes them.
//!
//! Backpressure: once [`FLUSH_THRESHOLD`] bytes of replies wait for the socket, the connection
//! stops reading and parsing requests until they are written, so a device that does not read its
//! replies only stops itself (after `write_stall_timeout` without progress it is disconnected).
//! A malformed packet, a policy violation or an expired keep-alive closes this connection alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{ConnAck, Connect, Packet};
use rumqttc::mqttbytes::{self, Error as MqttError, QoS};
use rumqttc::v5::mqttbytes::v5::{ConnAck as V5ConnAck, ConnectReturnCode as V5ConnectReturnCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::broker::{BrokerError, BrokerLink, EmbeddedBroker};
use crate::metrics::Metrics;
use crate::registry::{Control, Registry, StoredSession};
use crate::reserved::ReservedTopics;
use crate::session::connect_check::{Refusal, RefusalAnswer, Version, check_connect};
use crate::session::{self, Action, CloseReason, Identity, Limits, Session};
use crate::wire::{MAX_INCOMING_PACKET, Outbound};
use write::write_step;

/// Replies waiting for the socket beyond which no more requests are read or parsed until they
/// are written: at most this much plus one request's answer (≤ 128 KiB of blocks, a third more
/// as JSON) is held per connection.
const FLUSH_THRESHOLD: usize = 64 * 1024;

/// Read-buffer capacity while a connection waits between packets: an idle device costs this
/// much, not a full read chunk. Requests, SUBSCRIBE and PINGREQ fit in one read.
const IDLE_READ_BUFFER: usize = 512;

/// What a read reserves once a packet spans reads: the buffer grows (doubling) for large packets
/// and is given back when it drains.
const READ_CHUNK: usize = 4096;

/// Tunables of the connection driver.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionConfig {
    /// Time allowed for the TLS handshake plus CONNECT.
    pub connect_timeout: Duration,
    /// How long replies may wait for the socket without any of them being written before the
    /// device is disconnected.
    pub write_stall_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(60),
        }
    }
}

/// State shared by every connection of one gateway.
pub(crate) struct Shared {
    pub(crate) cfg: ConnectionConfig,
    pub(crate) limits: Limits,
    pub(crate) reserved: ReservedTopics,
    pub(crate) broker: EmbeddedBroker,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) registry: Registry,
    pub(crate) next_connection: AtomicU64,
}

/// Why a connection ended (for logs and metrics).
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("{0}")]
    Session(CloseReason),
    #[error("connection closed by peer")]
    Eof,
    #[error("malformed packet: {0}")]
    Malformed(MqttError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("CONNECT refused: {0}")]
    Refused(&'static str),
    #[error("timed out")]
    Timeout,
    #[error("device stopped reading")]
    WriteStalled,
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
}

impl End {
    fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            Self::Malformed(_)
                | Self::Refused(_)
                | Self::WriteStalled
                | Self::Session(
                    CloseReason::KeepAliveExpired
                        | CloseReason::SlowConsumer
                        | CloseReason::ProtocolViolation(_)
                        | CloseReason::PolicyViolation(_)
                )
        )
    }
}

/// Runs one connection to completion. `listener` names the port for metrics.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    stream: S,
    identity: Identity,
    listener: &'static str,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut conn = Connection::new(Arc::clone(&shared), reader, writer);
    let end = conn.serve(identity, listener).await;
    match &end {
        End::Session(CloseReason::ClientDisconnect) | End::Eof => {
            tracing::debug!("connection ended: {end}")
        }
        _ => tracing::info!("connection ended: {end}"),
    }
    if end.is_misbehaviour() {
        shared.metrics.protocol_disconnect();
    }
    // Deliver what was answered before the end; a device that does not read gets no more time.
    if !matches!(end, End::WriteStalled | End::Io(_)) {
        let _ = conn.write_all_pending().await;
    }
    let _ = tokio::time::timeout(shared.cfg.write_stall_timeout, conn.writer.shutdown()).await;
}

struct Connection<R, W> {
    shared: Arc<Shared>,
    reader: R,
    writer: W,
    /// Bytes read and not yet parsed; see [`Connection::reserve_read_buffer`].
    rbuf: BytesMut,
    /// Whether `rbuf` grew past [`IDLE_READ_BUFFER`] for a packet spanning reads.
    rbuf_grown: bool,
    /// Replies not yet written to the socket.
    pending: Outbound,
    /// Whether bytes were written since the last flush (TLS may still hold some).
    unflushed: bool,
    /// Whether every reply so far is written and flushed.
    drained: bool,
    /// Start of the write-stall clock: when replies began waiting, or last made progress.
    write_progress: Instant,
    scratch: BytesMut,
    link: Option<BrokerLink>,
    actions: Vec<Action>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Connection<R, W> {
    fn new(shared: Arc<Shared>, reader: R, writer: W) -> Self {
        Self {
            shared,
            reader,
            writer,
            rbuf: BytesMut::new(),
            rbuf_grown: false,
            pending: Outbound::new(),
            unflushed: false,
            drained: true,
            write_progress: Instant::now(),
            scratch: BytesMut::new(),
            link: None,
            actions: Vec::new(),
        }
    }

    async fn serve(&mut self, identity: Identity, listener: &'static str) -> End {
        let connect_timeout = self.shared.cfg.connect_timeout;
        let connect = match tokio::time::timeout(connect_timeout, self.read_connect()).await {
            Err(_) => return End::Timeout,
            Ok(Err(end)) => return end,
            Ok(Ok(connect)) => connect,
        };
        let principal = match session::principal_for_connect(&connect, &identity) {
            Ok(principal) => principal,
            Err(code) => {
                return self
                    .refuse(Refusal {
                        answer: RefusalAnswer::V4(code),
                        why: "client id refused",
                    })
                    .await;
            }
        };
        let id = self.shared.next_connection.fetch_add(1, Ordering::Relaxed);
        let (control_tx, mut control) = mpsc::channel(64);
        let (stored, expired) =
            self.shared
                .registry
                .attach(principal.session_key(), id, control_tx, Instant::now());
        release(expired).await;
        let (state, link) = match stored {
            Some(StoredSession { state, link }) => (Some(state), link),
            None => (None, None),
        };
        if connect.clean_session {
            if let Some(old) = link {
                close_link(old).await;
            }
        } else {
            self.link = link;
        }
        let mut session = Session::accept(
            principal,
            self.shared.limits,
            &connect,
            state,
            Instant::now(),
            &mut self.actions,
        );
        self.shared.metrics.connection_opened(listener);
        let end = self.session_loop(&mut session, &mut control).await;
        if !session.is_closed() {
            // The transport ended the session: publish the last will, if any.
            session.close(CloseReason::ConnectionLost, &mut self.actions);
            let _ = self.apply(&mut session).await;
        }
        self.shared.metrics.connection_closed();

        let key = session.principal().session_key().to_owned();
        let kept = session.into_state().map(|state| StoredSession {
            state,
            link: self.link.take(),
        });
        release(self.shared.registry.detach(&key, id, kept, Instant::now())).await;
        if let Some(link) = self.link.take() {
            close_link(link).await;
        }
        end
    }

    async fn session_loop(
        &mut self,
        session: &mut Session,
        control: &mut mpsc::Receiver<Box<Control>>,
    ) -> End {
        loop {
            if let Err(end) = self.apply(session).await {
                return end;
            }
            loop {
                match self.parse_packet() {
                    Ok(Some(packet)) => {
                        session.handle_packet(packet, Instant::now(), &mut self.actions)
                    }
                    Ok(None) => break,
                    Err(end) => return end,
                }
                if let Err(end) = self.apply(session).await {
                    return end;
                }
                // A device pipelining requests waits here while its replies fill the threshold.
                if self.pending.remaining() >= FLUSH_THRESHOLD
                    && let Err(end) = self.write_all_pending().await
                {
                    return end;
                }
            }
            if let Err(end) = self.write_now() {
                return end;
            }
            let deadline = session.poll_timeout();
            let writing = !self.pending.is_empty() || self.unflushed;
            let stall_at =
                writing.then(|| self.write_progress + self.shared.cfg.write_stall_timeout);
            self.reserve_read_buffer();
            tokio::select! {
                read = self.reader.read_buf(&mut self.rbuf) => match read {
                    Ok(0) => return End::Eof,
                    Ok(_) => {}
                    Err(e) => return End::Io(e),
                },
                step = write_step(&mut self.writer, &mut self.pending), if writing => match step {
                    Ok(flushed) => self.wrote(flushed),
                    Err(e) => return End::Io(e),
                },
                () = sleep_until(stall_at) => return End::WriteStalled,
                message = next_broker_message(&mut self.link) => match message {
                    Ok((topic, payload, qos)) => {
                        let unwritten = self.pending.remaining();
                        if session.handle_broker_message(&topic, payload, qos, unwritten, &mut self.actions) {
                            self.shared.metrics.broker_message_dropped();
                        }
                    }
                    Err(e) => return End::Broker(e),
                },
                ctl = control.recv() => match ctl.map(|c| *c) {
                    Some(Control::Notify { topic, payload }) => {
                        session.handle_reserved_notification(&topic, payload, Instant::now(), &mut self.actions);
                    }
                    Some(Control::Reply { topic, payload }) => {
                        session.handle_reply(&topic, payload, &mut self.actions);
                    }
                    Some(Control::TakenOver) | None => session.close(CloseReason::TakenOver, &mut self.actions),
                },
                () = sleep_until(deadline) => session.handle_timeout(Instant::now(), &mut self.actions),
            }
        }
    }

    /// Carries out the session's pending actions; replies accumulate in `self.pending`.
    async fn apply(&mut self, session: &mut Session) -> Result<(), End> {
        let mut actions = std::mem::take(&mut self.actions);
        let mut result = Ok(());
        for action in actions.drain(..) {
            match action {
                Action::Send(packet) => {
                    self.pending
                        .push_packet(&packet, &mut self.scratch)
                        .map_err(End::Malformed)?;
                }
                Action::Reserved(publish) => {
                    // The session routes only its own thing's topics here.
                    let Some(thing) = session.thing() else {
                        continue;
                    };
                    let claimed = self.shared.reserved.dispatch(
                        thing,
                        &publish,
                        &mut self.scratch,
                        &mut self.pending,
                    );
                    if !claimed {
                        tracing::debug!(topic = %publish.topic, "reserved topic not handled (no handler claims it)");
                    }
                }
                Action::BrokerPublish {
                    topic,
                    payload,
                    qos,
                } => self.link().await?.publish(topic, payload, qos).await?,
                Action::BrokerSubscribe(filter) => self.link().await?.subscribe(&filter)?,
                Action::BrokerUnsubscribe(filter) => {
                    if let Some(link) = &mut self.link {
                        link.unsubscribe(&filter)?;
                    }
                }
                Action::Close(reason) => {
                    result = Err(End::Session(reason));
                    break;
                }
            }
        }
        // On a close, what was answered before it stays pending: `run` delivers it.
        self.actions = actions;
        result
    }

    /// The session's broker link, created on first use.
    async fn link(&mut self) -> Result<&mut BrokerLink, End> {
        if self.link.is_none() {
            self.link = Some(self.shared.broker.link().await?);
        }
        Ok(self.link.as_mut().expect("invariant: link was just set"))
    }

    /// Makes room for the next read: [`IDLE_READ_BUFFER`] between packets (a buffer grown by a
    /// large packet is released once drained), [`READ_CHUNK`] more while a packet is incomplete.
    fn reserve_read_buffer(&mut self) {
        if !self.rbuf.is_empty() {
            self.rbuf.reserve(READ_CHUNK);
            self.rbuf_grown = true;
            return;
        }
        if std::mem::take(&mut self.rbuf_grown) {
            // `capacity()` only counts what is left after the consumed packets, so whether the
            // allocation grew is tracked instead.
            self.rbuf = BytesMut::new();
        }
        self.rbuf.reserve(IDLE_READ_BUFFER);
    }

    /// The next complete packet already in the read buffer, if any.
    fn parse_packet(&mut self) -> Result<Option<Packet>, End> {
        match Packet::read(&mut self.rbuf, MAX_INCOMING_PACKET) {
            Ok(packet) => Ok(Some(packet)),
            Err(MqttError::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(End::Malformed(e)),
        }
    }

    /// Reads the first packet, which must be a CONNECT passing [`check_connect`].
    async fn read_connect(&mut self) -> Result<Connect, End> {
        loop {
            match mqttbytes::check(self.rbuf.iter(), MAX_INCOMING_PACKET) {
                Ok(header) => {
                    let frame = &self.rbuf[..header.frame_length()];
                    return match check_connect(frame) {
                        Ok(Version::V4) => match self.parse_packet()? {
                            Some(Packet::Connect(connect)) => Ok(connect),
                            _ => Err(End::Refused("first packet was not CONNECT")),
                        },
                        Ok(Version::V5) => Err(self
                            .refuse(Refusal {
                                answer: RefusalAnswer::V5(
                                    V5ConnectReturnCode::UnsupportedProtocolVersion,
                                ),
                                why: "MQTT 5 is not spoken yet",
                            })
                            .await),
                        Err(refusal) => Err(self.refuse(refusal).await),
                    };
                }
                // A first byte that is not CONNECT is refused without waiting for the rest.
                Err(MqttError::InsufficientBytes(_))
                    if self.rbuf.first().is_none_or(|b| *b == 0x10) => {}
                Err(MqttError::InsufficientBytes(_)) => {
                    return Err(End::Refused("first packet was not CONNECT"));
                }
                Err(e) => return Err(End::Malformed(e)),
            }
            self.reserve_read_buffer();
            if self.reader.read_buf(&mut self.rbuf).await? == 0 {
                return Err(End::Eof);
            }
        }
    }

    /// Tells the client why its CONNECT is refused (best effort: the connection is closed right
    /// after either way).
    async fn refuse(&mut self, refusal: Refusal) -> End {
        match refusal.answer {
            RefusalAnswer::Close => {}
            RefusalAnswer::V4(code) => {
                let answer = Packet::ConnAck(ConnAck::new(code, false));
                let _ = self.pending.push_packet(&answer, &mut self.scratch);
            }
            RefusalAnswer::V5(code) => {
                let answer = V5ConnAck {
                    session_present: false,
                    code,
                    properties: None,
                };
                if answer.write(&mut self.scratch).is_ok() {
                    self.pending.push(self.scratch.split().freeze());
                }
            }
        }
        let _ = self.write_all_pending().await;
        End::Refused(refusal.why)
    }

    /// Reads until one complete packet is buffered.
    #[cfg(test)]
    async fn read_packet(&mut self) -> Result<Packet, End> {
        loop {
            if let Some(packet) = self.parse_packet()? {
                return Ok(packet);
            }
            self.reserve_read_buffer();
            if self.reader.read_buf(&mut self.rbuf).await? == 0 {
                return Err(End::Eof);
            }
        }
    }
}

/// Closes the broker links of sessions the registry let go of.
async fn release(sessions: Vec<StoredSession>) {
    for link in sessions.into_iter().filter_map(|s| s.link) {
        close_link(link).await;
    }
}

/// Closes one broker link. Boxed: the router's send future is ~700 bytes, and inline it would
/// sit in the state of every connection task, also the many that never use the broker.
async fn close_link(link: BrokerLink) {
    Box::pin(link.close()).await;
}

async fn next_broker_message(
    link: &mut Option<BrokerLink>,
) -> Result<(String, Bytes, QoS), BrokerError> {
    match link {
        // Boxed: the link's receive future is ~2 KB, and inline it would sit in the state of
        // every connection task, also the many that never use the broker.
        Some(link) => Box::pin(link.next()).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

mod write;

#[cfg(test)]
mod tests;
