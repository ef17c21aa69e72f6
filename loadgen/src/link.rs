//! One device's connection: MQTT 3.1.1 ([`MqttLink`], plain TCP or mTLS) to a server or a
//! broker, or the raw framed TCP of the ceiling baseline. Either way the worker sends requests on
//! a topic and receives messages on the data or rejected topic; the link hides the difference.
//!
//! Raw framing (both directions): `u32` big-endian length of what follows, `u16` big-endian topic
//! length, the topic, the payload. That is within a few bytes of an MQTT PUBLISH of the same
//! message, without the protocol.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, Bytes, BytesMut};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::mqtt_link::MqttLink;

/// Largest message a device accepts (a 128 KiB block in JSON plus headers fits).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Where and how devices connect.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Endpoint {
    /// MQTT over plain TCP; the client id is the thing name.
    Mqtt(SocketAddr),
    /// MQTT over TLS with a client certificate per device.
    Mqtts(SocketAddr, TlsFiles),
    /// The raw framed TCP of the baseline responder.
    Raw(SocketAddr),
}

/// PEM files of an mTLS connection; `{thing}` in `cert`/`key` becomes the thing name.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    /// CA the server certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate path (template).
    pub cert: String,
    /// Client key path (template).
    pub key: String,
}

/// What kind of message arrived, by the last-but-one topic level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `…/data/<fmt>`: a block.
    Data,
    /// `…/rejected/<fmt>`: an error answer.
    Rejected,
    /// Anything else (ignored).
    Other,
}

impl Kind {
    /// Classifies a stream reply topic.
    pub fn of_topic(topic: &str) -> Self {
        let mut levels = topic.rsplit('/');
        match (levels.next(), levels.next()) {
            (Some(_fmt), Some("data")) => Self::Data,
            (Some(_fmt), Some("rejected")) => Self::Rejected,
            _ => Self::Other,
        }
    }
}

/// An open connection of one device.
pub enum Link {
    /// An MQTT session.
    Mqtt(Box<MqttLink>),
    /// A raw framed TCP stream.
    Raw {
        /// The socket.
        stream: TcpStream,
        /// Bytes read but not yet framed.
        buf: BytesMut,
    },
}

/// Connection settings shared by every device.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Time one connect (TCP, TLS, CONNACK) may take.
    pub connect_timeout: Duration,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
}

impl Link {
    /// Connects `thing` from `source` (when given) and, for MQTT, subscribes to `subscribe`
    /// (QoS 0) and waits for SUBACK.
    pub async fn connect(
        endpoint: &Endpoint,
        source: Option<IpAddr>,
        thing: &str,
        subscribe: &str,
        opts: &LinkOptions,
    ) -> anyhow::Result<Self> {
        let (addr, tls) = match endpoint {
            Endpoint::Raw(addr) => {
                let stream = tcp_connect(*addr, source, opts.connect_timeout).await?;
                return Ok(Self::Raw {
                    stream,
                    buf: BytesMut::with_capacity(16 * 1024),
                });
            }
            Endpoint::Mqtt(addr) => (*addr, None),
            Endpoint::Mqtts(addr, files) => (*addr, Some(client_tls(files, thing)?)),
        };
        let link = MqttLink::connect(addr, source, thing, subscribe, opts, tls).await?;
        Ok(Self::Mqtt(Box::new(link)))
    }

    /// Sends one request without waiting for the network.
    pub async fn send(&mut self, topic: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Self::Mqtt(link) => link.publish(topic, payload).await,
            Self::Raw { stream, .. } => {
                let mut frame = Vec::with_capacity(6 + topic.len() + payload.len());
                write_frame(&mut frame, topic, &[&payload]);
                stream.write_all(&frame).await.context("raw send")
            }
        }
    }

    /// The next stream message (cancel-safe, so it can sit in a `select!` with a timer: both
    /// links keep partial reads in their buffer).
    pub async fn recv(&mut self) -> anyhow::Result<(Kind, Bytes)> {
        match self {
            Self::Mqtt(link) => {
                let (topic, payload) = link.recv().await?;
                Ok((Kind::of_topic(&topic), payload))
            }
            Self::Raw { stream, buf } => loop {
                if let Some((topic, payload)) = parse_frame(buf)? {
                    return Ok((Kind::of_topic(&topic), payload));
                }
                if stream.read_buf(buf).await? == 0 {
                    bail!("connection closed by the responder");
                }
            },
        }
    }

    /// Keeps an idle connection alive (sends pings on MQTT) until `until`.
    pub async fn idle_until(&mut self, until: tokio::time::Instant) -> anyhow::Result<()> {
        if let Self::Mqtt(link) = self {
            return link.idle_until(until).await;
        }
        loop {
            match tokio::time::timeout_at(until, self.recv()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Opens an MQTT session with TCP_NODELAY: CONNECT until an accepting CONNACK, then SUBSCRIBE
/// `filter` (QoS 0) until its SUBACK, refusals being errors. `capacity` sizes rumqttc's request
/// channel.
pub async fn mqtt_session(
    opts: MqttOptions,
    capacity: usize,
    connect_timeout: Duration,
    filter: &str,
) -> anyhow::Result<(AsyncClient, EventLoop)> {
    let (client, mut eventloop) = AsyncClient::new(opts, capacity);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    net.set_connection_timeout(connect_timeout.as_secs().max(1));
    eventloop.set_network_options(net);
    loop {
        if let Event::Incoming(Packet::ConnAck(ack)) = eventloop.poll().await? {
            if ack.code != rumqttc::ConnectReturnCode::Success {
                bail!("CONNACK refused: {:?}", ack.code);
            }
            break;
        }
    }
    client
        .try_subscribe(filter, QoS::AtMostOnce)
        .context("MQTT subscribe queue full")?;
    loop {
        if let Event::Incoming(Packet::SubAck(ack)) = eventloop.poll().await? {
            let refused = ack
                .return_codes
                .iter()
                .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
            if refused {
                bail!("SUBACK refused {filter}");
            }
            return Ok((client, eventloop));
        }
    }
}

/// Opens a TCP connection to `addr` with TCP_NODELAY, from `source` when given (port chosen by
/// the kernel), within `timeout`.
pub async fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding source address {ip}"))?;
    }
    tokio::time::timeout(timeout, socket.connect(addr))
        .await
        .context("connect timed out")?
        .with_context(|| format!("connecting to {addr}"))
}

/// A rustls client configuration (ring provider) trusting `files.ca`, with the device's
/// certificate and key.
pub fn client_tls(files: &TlsFiles, thing: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca)
        .with_context(|| format!("reading {}", files.ca.display()))?
    {
        roots.add(cert?)?;
    }
    let cert_path = files.cert.replace("{thing}", thing);
    let key_path = files.key.replace("{thing}", thing);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {cert_path}"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key =
        PrivateKeyDer::from_pem_file(&key_path).with_context(|| format!("reading {key_path}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
}

/// Appends one raw frame carrying `topic` and the concatenation of `parts`.
pub fn write_frame(out: &mut Vec<u8>, topic: &str, parts: &[&[u8]]) {
    let body = 2 + topic.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// Takes one complete raw frame off the front of `buf`, if there is one.
pub fn parse_frame(buf: &mut BytesMut) -> anyhow::Result<Option<(String, Bytes)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let body = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(2..=MAX_MESSAGE).contains(&body) {
        bail!("raw frame of {body} bytes");
    }
    if buf.len() < 4 + body {
        buf.reserve(4 + body - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut frame = buf.split_to(body).freeze();
    let topic_len = usize::from(frame.get_u16());
    if topic_len > frame.len() {
        bail!("raw frame topic of {topic_len} bytes in a {body}-byte frame");
    }
    let topic = String::from_utf8(frame.split_to(topic_len).to_vec())
        .context("raw frame topic is not UTF-8")?;
    Ok(Some((topic, frame)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_more_bytes() {
        let mut out = Vec::new();
        write_frame(&mut out, "a/b/data/cbor", &[b"he", b"llo"]);
        write_frame(&mut out, "x", &[]);
        let mut buf = BytesMut::from(&out[..5]);
        assert_eq!(parse_frame(&mut buf).unwrap(), None);
        buf.extend_from_slice(&out[5..]);
        let (t, p) = parse_frame(&mut buf).unwrap().unwrap();
        assert_eq!((t.as_str(), &p[..]), ("a/b/data/cbor", &b"hello"[..]));
        let (t, p) = parse_frame(&mut buf).unwrap().unwrap();
        assert_eq!((t.as_str(), p.len()), ("x", 0));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_or_inconsistent_frames_are_errors() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(parse_frame(&mut buf).is_err());
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 0, 9, b'a'][..]);
        assert!(parse_frame(&mut buf).is_err());
    }

    #[test]
    fn kinds_follow_the_topic() {
        assert_eq!(
            Kind::of_topic("$aws/things/t/streams/s/data/cbor"),
            Kind::Data
        );
        assert_eq!(
            Kind::of_topic("$aws/things/t/streams/s/rejected/json"),
            Kind::Rejected
        );
        assert_eq!(Kind::of_topic("$aws/things/t/jobs/notify"), Kind::Other);
    }

    #[tokio::test]
    async fn a_bound_connection_comes_from_its_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for source in ["127.0.0.3", "127.0.0.1"] {
            let ip: IpAddr = source.parse().unwrap();
            let _client = tcp_connect(addr, Some(ip), Duration::from_secs(5))
                .await
                .unwrap();
            let (_server, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), ip);
        }
    }
}
