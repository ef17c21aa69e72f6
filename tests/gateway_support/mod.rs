//! Shared harness of the gateway end-to-end tests: a real server on 127.0.0.1 port 0, streams
//! created through the store, and rumqttc devices that download like the AWS OTA agent.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use otastream::server::{self, RunningServer, ServerConfig};
use otastream_chunker::request::{self, GetStreamRequest};
use otastream_chunker::{BlockSize, FileId, Format, response};
use otastream_device::download::{Download, Ingest};
use otastream_store::{NewStream, PutMeta, StreamFile};
use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, NetworkOptions, Publish, QoS, SubAck,
    TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;

/// How long a test waits for any one reply before failing.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A server in a temporary data directory.
pub struct TestServer {
    pub server: RunningServer,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tune` adjusted its configuration.
    pub async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut cfg = ServerConfig::ephemeral(dir.path());
        tune(&mut cfg);
        let server = server::start(cfg).await?;
        Ok(Self { server, _dir: dir })
    }

    /// Stores `data` as an object and creates stream `id` with it as file `file_id`.
    pub async fn create_stream(&self, id: &str, file_id: u8, data: Vec<u8>) -> anyhow::Result<()> {
        let store = self.server.store.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if !store.bucket_exists("firmware")? {
                store.create_bucket("firmware")?;
            }
            let key = format!("{id}.bin");
            store.put_object("firmware", &key, &data, PutMeta::default())?;
            let file = StreamFile {
                file_id,
                bucket: "firmware".into(),
                key,
                version_id: None,
            };
            store.create_stream(&NewStream {
                id,
                description: Some("test image".into()),
                role_arn: None,
                files: vec![file],
            })?;
            Ok(())
        })
        .await?
    }
}

/// A deterministic test image.
pub fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + 7 + seed as usize) % 251) as u8)
        .collect()
}

/// What a device sees from the gateway.
#[derive(Debug)]
pub enum Seen {
    Publish(Publish),
    SubAck(SubAck),
    Error(String),
}

/// A rumqttc device whose event loop runs in its own task (never awaiting a publish inside it).
pub struct Device {
    pub client: AsyncClient,
    pub thing: String,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn options(thing: &str, port: u16) -> MqttOptions {
    let mut opts = MqttOptions::new(thing, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(512 * 1024, 512 * 1024);
    opts.set_credentials("?SDK=otastream-tests&Version=1", "");
    opts
}

impl Device {
    /// Connects over plain TCP (client id = thing name) and waits for CONNACK.
    pub async fn tcp(addr: std::net::SocketAddr, thing: &str) -> anyhow::Result<Self> {
        Self::connect(options(thing, addr.port()), thing).await
    }

    /// Connects over plain TCP after `tune` adjusted the client options.
    pub async fn tcp_with(
        addr: std::net::SocketAddr,
        thing: &str,
        tune: impl FnOnce(&mut MqttOptions),
    ) -> anyhow::Result<Self> {
        let mut opts = options(thing, addr.port());
        tune(&mut opts);
        Self::connect(opts, thing).await
    }

    /// Connects with a persistent (clean_session = false) session over plain TCP.
    pub async fn tcp_persistent(addr: std::net::SocketAddr, thing: &str) -> anyhow::Result<Self> {
        Self::tcp_with(addr, thing, |o| {
            o.set_clean_session(false);
        })
        .await
    }

    /// Connects over TLS, trusting `ca_pem`, with `client` = (cert PEM, key PEM) if given.
    pub async fn tls(
        addr: std::net::SocketAddr,
        thing: &str,
        ca_pem: &str,
        client: Option<(&str, &str)>,
    ) -> anyhow::Result<Self> {
        let mut opts = options(thing, addr.port());
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(client_tls(ca_pem, client)?),
        )));
        Self::connect(opts, thing).await
    }

    async fn connect(opts: MqttOptions, thing: &str) -> anyhow::Result<Self> {
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(30);
        eventloop.set_network_options(net);
        wait_connack(&mut eventloop).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::Publish(p))) => Seen::Publish(p),
                    Ok(Event::Incoming(Incoming::SubAck(s))) => Seen::SubAck(s),
                    Ok(_) => continue,
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
        Ok(Self {
            client,
            thing: thing.to_owned(),
            rx,
            task,
        })
    }

    /// The next thing the device sees, or an error after [`REPLY_TIMEOUT`].
    pub async fn next(&mut self) -> anyhow::Result<Seen> {
        tokio::time::timeout(REPLY_TIMEOUT, self.rx.recv())
            .await
            .context("timed out waiting for the gateway")?
            .context("event loop ended")
    }

    /// The next PUBLISH; fails on an error or anything else.
    pub async fn next_publish(&mut self) -> anyhow::Result<Publish> {
        match self.next().await? {
            Seen::Publish(p) => Ok(p),
            other => bail!("expected a PUBLISH, got {other:?}"),
        }
    }

    /// The next PUBLISH, which must carry `payload` on `topic`.
    pub async fn expect(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<Publish> {
        let p = self.next_publish().await?;
        anyhow::ensure!(
            p.topic == topic && p.payload == payload,
            "expected {topic} {:?}, got {} {:?}",
            String::from_utf8_lossy(payload),
            p.topic,
            String::from_utf8_lossy(&p.payload)
        );
        Ok(p)
    }

    /// Subscribes and returns the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<SubAck> {
        self.client.subscribe(filter, qos).await?;
        loop {
            match self.next().await? {
                Seen::SubAck(s) => return Ok(s),
                Seen::Publish(_) => {}
                Seen::Error(e) => bail!("connection failed: {e}"),
            }
        }
    }

    /// Publishes on this thing's `$aws/things/<thing>/streams/<stream>/<op>/<fmt>` topic.
    pub async fn publish_stream(
        &self,
        stream: &str,
        op: &str,
        format: Format,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let topic = format!(
            "$aws/things/{}/streams/{stream}/{op}/{}",
            self.thing,
            format.as_str()
        );
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload)
            .await?;
        Ok(())
    }

    /// Downloads file 0 of `stream` with the device simulator's [`Download`] (whole-file bitmap of
    /// missing blocks, `o = 0`, at most `n` blocks per request, like the AWS agent; without `n`
    /// like rustot). Checks every block and returns the image and the number of requests. No
    /// subscription: replies must reach the requester anyway.
    pub async fn download(
        &mut self,
        stream: &str,
        format: Format,
        size: usize,
        block: u32,
        n: Option<u32>,
    ) -> anyhow::Result<(Vec<u8>, usize)> {
        let block_size = BlockSize::new(block).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut dl = Download::new(size as u64, block_size, 0, true);
        let data_topic = format!(
            "$aws/things/{}/streams/{stream}/data/{}",
            self.thing,
            format.as_str()
        );
        let mut requests = 0;
        while dl.remaining() > 0 {
            requests += 1;
            let mut payload = Vec::new();
            match n {
                Some(n) => dl.encode_request(format, n, &mut payload),
                None => request::encode_get(format, &without_n(&dl), &mut payload),
            }
            self.publish_stream(stream, "get", format, payload).await?;
            let expected = n
                .unwrap_or(u32::MAX)
                .min(131_072 / block)
                .min(dl.remaining());
            for _ in 0..expected {
                let p = self.next_publish().await?;
                anyhow::ensure!(
                    p.topic == data_topic,
                    "reply on {}: {:?}",
                    p.topic,
                    String::from_utf8_lossy(&p.payload)
                );
                let msg = response::decode_data(format, &p.payload)
                    .map_err(|e| anyhow::anyhow!("bad data message: {e}"))?;
                match dl.ingest_message(&msg) {
                    Ingest::Accepted { .. } | Ingest::Complete { .. } => {}
                    other => bail!("block {} not accepted: {other:?}", msg.index),
                }
            }
        }
        Ok((dl.image().context("image kept")?.to_vec(), requests))
    }
}

/// The agent's request for `dl`'s missing blocks, but without `n` (every set bit, capped at
/// 128 KiB), as rustot asks.
fn without_n(dl: &Download) -> GetStreamRequest<'_> {
    GetStreamRequest {
        client_token: Some("rdy"),
        stream_version: None,
        file_id: FileId::from(0),
        block_size: dl.layout().block_size,
        offset: 0,
        count: None,
        bitmap: Some(dl.bitmap().into()),
    }
}

async fn wait_connack(eventloop: &mut EventLoop) -> anyhow::Result<()> {
    loop {
        match tokio::time::timeout(REPLY_TIMEOUT, eventloop.poll())
            .await
            .context("timed out connecting")?
        {
            Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                anyhow::ensure!(
                    ack.code == rumqttc::ConnectReturnCode::Success,
                    "CONNACK {:?}",
                    ack.code
                );
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => bail!("connect failed: {e}"),
        }
    }
}

/// A rustls client configuration (ring provider) trusting `ca_pem`, with an optional client cert.
pub fn client_tls(
    ca_pem: &str,
    client: Option<(&str, &str)>,
) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    Ok(match client {
        Some((cert, key)) => {
            let chain =
                CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?
        }
        None => builder.with_no_client_auth(),
    })
}

/// SHA-256 of `data`, for comparing images.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}
