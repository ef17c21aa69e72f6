//! Harness of the gateway-only socket tests: a [`Gateway`] without a store on 127.0.0.1 port 0,
//! rumqttc clients whose event loop runs in its own task, and raw sockets for bytes no client
//! library sends.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otastream_gateway::{Gateway, GatewayConfig, Metrics, ReservedTopics};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, NetworkOptions, Publish};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long a test waits for any one event before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A gateway serving its plain port; dropped with the test's runtime.
pub struct TestGateway {
    pub gateway: Gateway,
    pub addr: SocketAddr,
}

impl TestGateway {
    /// A gateway with `cfg` and no reserved-topic handlers.
    pub async fn start(cfg: GatewayConfig) -> Self {
        Self::start_with(cfg, ReservedTopics::new()).await
    }

    /// A gateway with `cfg` answering reserved topics with `reserved`.
    pub async fn start_with(cfg: GatewayConfig, reserved: ReservedTopics) -> Self {
        let gateway = Gateway::new(cfg, reserved, Arc::new(Metrics::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let serving = gateway.clone();
        tokio::spawn(async move { serving.serve_tcp(listener, std::future::pending()).await });
        Self { gateway, addr }
    }
}

/// What a client sees.
#[derive(Debug)]
pub enum Seen {
    Publish(Publish),
    Other(Box<Incoming>),
    Error(String),
}

/// A rumqttc client with its event loop in its own task.
pub struct Client {
    pub client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Connects `client_id` to `addr` after `tune` adjusted the options; waits for CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> Self {
        let mut opts = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        tune(&mut opts);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        eventloop.set_network_options(net);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => Seen::Publish(p),
                    Ok(Event::Incoming(other)) => Seen::Other(Box::new(other)),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(e) => {
                        let _ = tx.send(Seen::Error(e.to_string()));
                        return;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(Seen::Other(i))) if matches!(*i, Incoming::ConnAck(_)) => {}
            other => panic!("{client_id:?}: expected CONNACK, got {other:?}"),
        }
        Self { client, rx, task }
    }

    /// The next event.
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("an event in time")
            .expect("event loop alive")
    }

    /// The next PUBLISH, skipping acknowledgements.
    pub async fn next_publish(&mut self) -> Publish {
        loop {
            match self.next().await {
                Seen::Publish(p) => return p,
                Seen::Other(_) => {}
                Seen::Error(e) => panic!("connection failed: {e}"),
            }
        }
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) -> rumqttc::SubAck {
        self.client.subscribe(filter, qos).await.expect("subscribe");
        loop {
            match self.next().await {
                Seen::Other(i) => {
                    if let Incoming::SubAck(ack) = *i {
                        return ack;
                    }
                }
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    }
}

/// Writes `bytes` to a fresh connection and returns everything the gateway sends until it closes
/// the connection (a reset counts as a close).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    match tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Err(_) => panic!("the gateway kept the connection open"),
    }
    answer
}

/// A CONNECT packet with protocol `name`, `level`, connect `flags`, keep-alive 30 s, `client_id`
/// and then `rest` (will, user name, password fields as the flags announce them). For level 5,
/// an empty property block follows the keep-alive.
pub fn raw_connect(name: &str, level: u8, flags: u8, client_id: &str, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, name.as_bytes());
    body.extend_from_slice(&[level, flags, 0, 30]);
    if level == 5 {
        body.push(0);
    }
    put_str(&mut body, client_id.as_bytes());
    body.extend_from_slice(rest);
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

/// Appends a two-byte-length-prefixed MQTT string.
pub fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}
