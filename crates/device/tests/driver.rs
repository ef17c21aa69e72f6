//! The async driver over real loopback sockets: a minimal MQTT endpoint written with
//! `rumqttc::mqttbytes` (CONNECT, SUBSCRIBE, PUBLISH, PINGREQ) serving the shared Jobs and
//! streams services, and an axum S3 face answering Range requests with 206.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use bytes::BytesMut;
use otastream_device::{
    AppVersion, DeviceConfig, FinalStatus, RunOptions, StreamTarget, run_device_with,
};
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, QoS, SubAck, SubscribeReasonCode,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{JobService, STREAM, Signer, THING, test_image};

/// What the endpoint saw and serves.
struct Endpoint {
    image: Vec<u8>,
    jobs: Mutex<JobService>,
    /// (client id, username) of every CONNECT.
    connects: Mutex<Vec<(String, Option<String>)>>,
    /// HTTP ranges served.
    ranges: Mutex<Vec<String>>,
    /// How long the endpoint waits before answering a stream `get`.
    stream_reply_delay: Duration,
}

async fn start_mqtt(endpoint: Arc<Endpoint>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, endpoint.clone()));
        }
    });
    addr
}

async fn connection(mut stream: impl AsyncRead + AsyncWrite + Unpin, ep: Arc<Endpoint>) {
    let mut input = BytesMut::new();
    loop {
        let packet = match Packet::read(&mut input, 1 << 20) {
            Ok(p) => p,
            Err(rumqttc::Error::InsufficientBytes(_)) => match stream.read_buf(&mut input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            Err(_) => return,
        };
        let mut out = BytesMut::new();
        let mut send = |p: Packet| {
            p.write(&mut out, 1 << 20).unwrap();
        };
        match packet {
            Packet::Connect(c) => {
                let user = c.login.as_ref().map(|l| l.username.clone());
                ep.connects
                    .lock()
                    .unwrap()
                    .push((c.client_id.clone(), user));
                send(Packet::ConnAck(ConnAck::new(
                    ConnectReturnCode::Success,
                    false,
                )));
            }
            Packet::Subscribe(s) => {
                let codes = s
                    .filters
                    .iter()
                    .map(|f| SubscribeReasonCode::Success(f.qos))
                    .collect();
                send(Packet::SubAck(SubAck::new(s.pkid, codes)));
            }
            Packet::Publish(p) => {
                if p.topic.ends_with("/get/cbor") && !ep.stream_reply_delay.is_zero() {
                    tokio::time::sleep(ep.stream_reply_delay).await;
                }
                if p.qos == QoS::AtLeastOnce {
                    send(Packet::PubAck(PubAck::new(p.pkid)));
                }
                for (topic, payload) in route(&ep, &p.topic, &p.payload) {
                    send(Packet::Publish(Publish::new(
                        topic,
                        QoS::AtMostOnce,
                        payload,
                    )));
                }
            }
            Packet::PingReq => send(Packet::PingResp),
            Packet::Disconnect => return,
            _ => {}
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn route(ep: &Endpoint, topic: &str, payload: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut jobs = ep.jobs.lock().unwrap();
    if topic.ends_with("/jobs/$next/get") {
        vec![jobs.answer_next_get(payload)]
    } else if topic.ends_with("/update") {
        jobs.record_update(payload);
        Vec::new()
    } else if topic.ends_with("/get/cbor") {
        let (data_topic, messages) = support::answer_get_stream(&ep.image, topic, payload);
        messages
            .into_iter()
            .map(|(_, m)| (data_topic.clone(), m))
            .collect()
    } else {
        Vec::new()
    }
}

/// An S3-like GET that honours a single `Range: bytes=a-b` with 206.
async fn start_s3(ep: Arc<Endpoint>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/bucket/fw.bin",
        axum::routing::get(move |headers: HeaderMap| {
            let ep = ep.clone();
            async move {
                let range = headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                ep.ranges.lock().unwrap().push(range.clone());
                let (a, b) = range
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split_once('-'))
                    .unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                (StatusCode::PARTIAL_CONTENT, ep.image[a..=b].to_vec())
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn endpoint(image: Vec<u8>, document: Option<serde_json::Value>) -> Arc<Endpoint> {
    Arc::new(Endpoint {
        image,
        jobs: Mutex::new(JobService::new(document)),
        connects: Mutex::new(Vec::new()),
        ranges: Mutex::new(Vec::new()),
        stream_reply_delay: Duration::ZERO,
    })
}

/// Runs a firmware device trusting `signer` against `addr`; it must end SUCCEEDED on 0.0.2.
async fn run_firmware_device(addr: SocketAddr, signer: &Signer) -> otastream_device::DeviceReport {
    let mut cfg = DeviceConfig::new(THING);
    cfg.code_signing_cert_pem = Some(signer.cert_pem.clone());
    let report = run_device_with(cfg, addr, None, options()).await;
    assert!(report.final_status_acked);
    assert_eq!(
        report.status,
        FinalStatus::Succeeded {
            version: AppVersion::new(0, 0, 2)
        }
    );
    report
}

fn options() -> RunOptions {
    RunOptions {
        deadline: Duration::from_secs(60),
        ..RunOptions::default()
    }
}

/// Stream mode (no jobs): download file 0 of the test stream, `file_size` bytes.
fn stream_options(file_size: usize) -> RunOptions {
    RunOptions {
        stream: Some(StreamTarget {
            stream: STREAM.to_owned(),
            file_id: 0,
            file_size: file_size as u64,
        }),
        ..options()
    }
}

/// A whole firmware job over MQTT: connect as the thing with the metrics username, download,
/// verify, self test, and the final SUCCEEDED reaches the server before the driver returns.
#[tokio::test]
async fn mqtt_job_over_real_sockets() {
    let signer = Signer::new();
    let image = test_image(50_000);
    let doc = support::mqtt_document(image.len(), &signer.sign_b64(&image));
    let ep = endpoint(image, Some(doc));
    let addr = start_mqtt(ep.clone()).await;
    let report = run_firmware_device(addr, &signer).await;
    let blocks = 50_000usize.div_ceil(4096);
    assert_eq!(report.stats.blocks, blocks as u64);
    assert_eq!(report.block_latency_us.len(), blocks);
    assert_eq!(
        report.stats.duplicates + report.stats.restarts + report.stats.retries,
        0
    );
    assert_eq!(report.sha256, Some(Sha256::digest(&ep.image).into()));
    assert!(
        ep.jobs
            .lock()
            .unwrap()
            .last_update()
            .contains(r#""status":"SUCCEEDED""#)
    );
    let connects = ep.connects.lock().unwrap();
    assert_eq!(
        connects[0],
        (THING.to_owned(), Some("?SDK=otastream-device".to_owned()))
    );
}

/// Stream mode (no jobs), 8 blocks per request, 20 % of data messages dropped by the seeded
/// fault and recovered by a short request timer.
#[tokio::test]
async fn stream_download_with_loss() {
    let image = test_image(200_000);
    let ep = endpoint(image.clone(), None);
    let addr = start_mqtt(ep.clone()).await;
    let mut cfg = DeviceConfig::new(THING).fast(8);
    cfg.use_jobs = false;
    cfg.request_wait_ms = 50;
    cfg.faults.drop_data_percent = 20.0;
    cfg.faults.seed = 7;
    let opts = stream_options(image.len());
    let report = run_device_with(cfg, addr, None, opts).await;
    assert_eq!(report.status, FinalStatus::Downloaded);
    assert_eq!(report.sha256, Some(Sha256::digest(&image).into()));
    assert_eq!(report.stats.blocks, 49);
    assert!(
        report.stats.dropped > 0 && report.stats.retries > 0,
        "{:?}",
        report.stats
    );
}

/// Block latency runs from the `get` that asked for a block to the block's arrival: with every
/// answer held back 20 ms, no sample may be shorter (at n = 1 the next request goes out in the
/// same step as the block arrives, which must not restart the clock first).
#[tokio::test]
async fn block_latency_spans_request_to_arrival() {
    const DELAY: Duration = Duration::from_millis(20);
    let image = test_image(30_000);
    let ep = Arc::new(Endpoint {
        stream_reply_delay: DELAY,
        ..Arc::into_inner(endpoint(image.clone(), None)).unwrap()
    });
    let addr = start_mqtt(ep.clone()).await;
    let mut cfg = DeviceConfig::new(THING);
    cfg.use_jobs = false;
    let opts = stream_options(image.len());
    let report = run_device_with(cfg, addr, None, opts).await;
    assert_eq!(report.status, FinalStatus::Downloaded);
    assert_eq!(report.stats.retries, 0, "{:?}", report.stats);
    let blocks = image.len().div_ceil(4096);
    assert_eq!(report.block_latency_us.len(), blocks);
    let floor = DELAY.as_micros() as u32;
    assert!(
        report.block_latency_us.iter().all(|&us| us >= floor),
        "every sample covers the {DELAY:?} the endpoint held the answer: {:?}",
        report.block_latency_us
    );
}

/// A firmware job over HTTP: the driver fetches each block with a Range request from the S3 face.
#[tokio::test]
async fn http_job_over_real_sockets() {
    let signer = Signer::new();
    let image = test_image(10_000);
    let sig = signer.sign_b64(&image);
    let ep = endpoint(image, None);
    let s3 = start_s3(ep.clone()).await;
    let url = format!("http://{s3}/bucket/fw.bin?X-Amz-Expires=1800");
    ep.jobs.lock().unwrap().document = Some(support::http_document(ep.image.len(), &url, &sig));
    let addr = start_mqtt(ep.clone()).await;
    run_firmware_device(addr, &signer).await;
    assert_eq!(
        *ep.ranges.lock().unwrap(),
        ["bytes=0-4095", "bytes=4096-8191", "bytes=8192-9999"]
    );
}

/// A CA, a server certificate for 127.0.0.1 and a device certificate with CN = thing, all rcgen.
struct Pki {
    ca_pem: String,
    server: (String, String),
    device: (String, String),
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, cn: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(vec!["127.0.0.1".to_owned()], "otastream-test"),
        device: leaf(Vec::new(), THING),
    }
}

/// The MQTT endpoint behind TLS 1.2/1.3 that requires a client certificate from the CA.
async fn start_mqtts(ep: Arc<Endpoint>, pki: &Pki) -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, ep) = (acceptor.clone(), ep.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    connection(tls, ep).await;
                }
            });
        }
    });
    addr
}

/// The same firmware job over mutual TLS: the driver installs the ring provider itself and
/// presents the device certificate.
#[tokio::test]
async fn mqtt_job_over_mutual_tls() {
    let signer = Signer::new();
    let image = test_image(20_000);
    let doc = support::mqtt_document(image.len(), &signer.sign_b64(&image));
    let ep = endpoint(image, Some(doc));
    let pki = pki();
    let addr = start_mqtts(ep.clone(), &pki).await;
    let mut cfg = DeviceConfig::new(THING);
    cfg.code_signing_cert_pem = Some(signer.cert_pem.clone());
    let tls = rumqttc::TlsConfiguration::Simple {
        ca: pki.ca_pem.clone().into_bytes(),
        alpn: None,
        client_auth: Some((
            pki.device.0.clone().into_bytes(),
            pki.device.1.clone().into_bytes(),
        )),
    };
    let report = run_device_with(cfg, addr, Some(tls), options()).await;
    assert_eq!(
        report.status,
        FinalStatus::Succeeded {
            version: AppVersion::new(0, 0, 2)
        }
    );
    assert!(ep.jobs.lock().unwrap().last_update().contains("SUCCEEDED"));
}
