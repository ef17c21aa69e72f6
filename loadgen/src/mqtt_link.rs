//! A device's MQTT 3.1.1 client: rumqttc's packet codec (`rumqttc::mqttbytes`) over a socket
//! the device owns.
//!
//! rumqttc's `AsyncClient`/`EventLoop` pair cannot bind a source address, so a fleet could only
//! ever connect from 127.0.0.1 (28,232 ephemeral ports towards one server port). It also passes
//! every request through a channel to the event loop and re-arms its timers on each poll, work
//! the devices' shared cores then do not spend on the server. Here a device writes its PUBLISH
//! straight to the socket and parses what it reads in place; the connection is bound to the
//! device's `127.0.0.x` source address when the fleet spreads over several
//! (`--source-addresses`, [`crate::link::tcp_connect`]). The packets are rumqttc's: CONNECT
//! with a clean session and the thing name as client id, SUBSCRIBE at QoS 0, PUBLISH at QoS 0,
//! PINGREQ.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish, Subscribe};
use rumqttc::mqttbytes::{self, QoS};
use rumqttc::{ConnectReturnCode, SubscribeReasonCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::link::{LinkOptions, MAX_MESSAGE, tcp_connect};

/// Read buffer kept free before each read (a 4 KiB block and its header fit).
const READ_CHUNK: usize = 8 * 1024;

/// A byte stream: plain TCP or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open, subscribed MQTT session.
pub struct MqttLink {
    io: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    keep_alive: Duration,
}

impl MqttLink {
    /// Connects `thing` to `addr` (over TLS when `tls` is given), then subscribes to
    /// `subscribe`; a refused CONNACK or SUBACK is an error.
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        thing: &str,
        subscribe: &str,
        opts: &LinkOptions,
        tls: Option<rustls::ClientConfig>,
    ) -> anyhow::Result<Self> {
        tokio::time::timeout(opts.connect_timeout, async {
            let tcp = tcp_connect(addr, source, opts.connect_timeout).await?;
            let io: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(cfg) => {
                    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
                    let name = rustls::pki_types::ServerName::from(addr.ip());
                    Box::new(
                        connector
                            .connect(name, tcp)
                            .await
                            .context("TLS handshake")?,
                    )
                }
            };
            let mut link = Self {
                io,
                rbuf: BytesMut::with_capacity(READ_CHUNK),
                wbuf: BytesMut::with_capacity(256),
                keep_alive: opts.keep_alive,
            };
            link.open(thing, subscribe).await?;
            Ok(link)
        })
        .await
        .context("MQTT connect timed out")?
    }

    async fn open(&mut self, thing: &str, filter: &str) -> anyhow::Result<()> {
        let mut connect = Connect::new(thing);
        connect.keep_alive = u16::try_from(self.keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.set_login("?SDK=otastream-loadgen&Version=0.1", "");
        self.write(Packet::Connect(connect)).await?;
        match self.read_packet().await? {
            Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => {}
            Packet::ConnAck(ack) => bail!("CONNACK refused: {:?}", ack.code),
            other => bail!("expected CONNACK, got {other:?}"),
        }
        let mut subscribe = Subscribe::new(filter, QoS::AtMostOnce);
        subscribe.pkid = 1;
        self.write(Packet::Subscribe(subscribe)).await?;
        loop {
            match self.read_packet().await? {
                Packet::SubAck(ack) if ack.pkid == 1 => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        bail!("SUBACK refused {filter}");
                    }
                    return Ok(());
                }
                // A message may already be on its way (a retained one, say); not ours yet.
                Packet::Publish(_) => {}
                other => bail!("expected SUBACK, got {other:?}"),
            }
        }
    }

    /// Sends `payload` to `topic` at QoS 0.
    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let publish = Publish::from_bytes(topic, QoS::AtMostOnce, Bytes::from(payload));
        self.write(Packet::Publish(publish)).await
    }

    /// The next PUBLISH's topic and payload; other packets (PINGRESP) are skipped.
    /// Cancel-safe: bytes read stay in the buffer.
    pub async fn recv(&mut self) -> anyhow::Result<(String, Bytes)> {
        loop {
            if let Packet::Publish(p) = self.read_packet().await? {
                return Ok((p.topic, p.payload));
            }
        }
    }

    /// Stays connected until `until`: pings every half keep-alive, drops what arrives.
    pub async fn idle_until(&mut self, until: Instant) -> anyhow::Result<()> {
        loop {
            let ping_at = (Instant::now() + self.keep_alive / 2).min(until);
            match tokio::time::timeout_at(ping_at, self.read_packet()).await {
                Ok(packet) => drop(packet?),
                Err(_) if ping_at >= until => return Ok(()),
                Err(_) => self.write(Packet::PingReq).await?,
            }
        }
    }

    async fn write(&mut self, packet: Packet) -> anyhow::Result<()> {
        self.wbuf.clear();
        packet
            .write(&mut self.wbuf, MAX_MESSAGE)
            .map_err(|e| anyhow::anyhow!("encoding {packet:?}: {e:?}"))?;
        self.io.write_all(&self.wbuf).await.context("MQTT send")
    }

    async fn read_packet(&mut self) -> anyhow::Result<Packet> {
        loop {
            match Packet::read(&mut self.rbuf, MAX_MESSAGE) {
                Ok(packet) => return Ok(packet),
                Err(mqttbytes::Error::InsufficientBytes(more)) => {
                    self.rbuf.reserve(more.max(READ_CHUNK));
                }
                Err(e) => bail!("malformed MQTT packet from the server: {e:?}"),
            }
            if self.io.read_buf(&mut self.rbuf).await? == 0 {
                bail!("connection closed by the server");
            }
        }
    }
}
