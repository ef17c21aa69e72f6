//! The async driver (feature `mqtt`): one simulated device on a real connection. It connects with
//! rumqttc (client id = thing name, username `?SDK=otastream-device`, no password, TCP_NODELAY),
//! feeds the [`Agent`] its packets, timers and HTTP answers, puts the agent's outputs on the wire
//! without ever awaiting a publish inside the poll loop, and stops at the job's end or a deadline.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, MqttOptions, NetworkOptions, Packet, TlsConfiguration, Transport};
use tokio::time::sleep_until;

use crate::agent::Agent;
use crate::config::DeviceConfig;
use crate::http::{HttpError, RangeClient};
use crate::output::{AgentStats, Event, PublishKind, QoS, Transmit};
use crate::status::{AppVersion, FailReason};

/// The MQTT username every device sends (AWS clients send `?SDK=…` metrics usernames).
pub const USERNAME: &str = "?SDK=otastream-device";

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinalStatus {
    /// The job ended SUCCEEDED; the device runs `version`.
    Succeeded {
        /// Running version at the end.
        version: AppVersion,
    },
    /// The job (or stream download) ended FAILED.
    Failed {
        /// The reason as published.
        reason: FailReason,
    },
    /// The activated image got no self-test document in time and was rolled back.
    SelfTestTimedOut,
    /// A plain stream download completed (stream mode).
    Downloaded,
    /// The deadline passed first.
    DeadlineReached,
    /// The agent could not be built (bad code-signing certificate).
    BadConfig(String),
}

/// A stream to download without jobs (load tests' stream mode).
#[derive(Clone, Debug)]
pub struct StreamTarget {
    /// Stream id.
    pub stream: String,
    /// File id inside the stream.
    pub file_id: u8,
    /// File size in bytes.
    pub file_size: u64,
}

/// Limits and mode of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Give up after this long.
    pub deadline: Duration,
    /// Download this stream instead of waiting for a job.
    pub stream: Option<StreamTarget>,
    /// Record at most this many per-block latency samples.
    pub max_latency_samples: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            stream: None,
            max_latency_samples: 1 << 16,
        }
    }
}

/// What one device did.
#[derive(Clone, Debug)]
pub struct DeviceReport {
    /// Thing name.
    pub thing_name: String,
    /// How the run ended.
    pub status: FinalStatus,
    /// The agent's counters (blocks, duplicates, requests, retries, restarts, bytes, …).
    pub stats: AgentStats,
    /// Microseconds from the request that asked for a block to its arrival, per new block.
    pub block_latency_us: Vec<u32>,
    /// Wall time from start to the terminal event (or the deadline).
    pub elapsed: Duration,
    /// Wall time until the first CONNACK (`None` if never connected).
    pub connected_after: Option<Duration>,
    /// MQTT connection errors seen (reconnects).
    pub connection_errors: u32,
    /// Every event except per-block ones, in order.
    pub events: Vec<Event>,
    /// SHA-256 of the last completed download.
    pub sha256: Option<[u8; 32]>,
    /// Whether the server acknowledged (PUBACK) every QoS 1 publish, the final job status among
    /// them, within 5 s of the end.
    pub final_status_acked: bool,
}

/// [`run_device_with`] with the default [`RunOptions`] (jobs mode, 120 s deadline).
pub async fn run_device(
    cfg: DeviceConfig,
    mqtt_addr: SocketAddr,
    tls: Option<TlsConfiguration>,
) -> DeviceReport {
    run_device_with(cfg, mqtt_addr, tls, RunOptions::default()).await
}

type HttpFuture =
    Pin<Box<dyn Future<Output = (RangeClient, Result<(u16, Bytes), HttpError>)> + Send>>;

/// Runs one device against `mqtt_addr` (TLS when `tls` is given; pass
/// `TlsConfiguration::Rustls` built with the ring provider) until its job ends, its stream
/// download ends, or the deadline passes.
pub async fn run_device_with(
    cfg: DeviceConfig,
    mqtt_addr: SocketAddr,
    tls: Option<TlsConfiguration>,
    opts: RunOptions,
) -> DeviceReport {
    let start = Instant::now();
    let thing_name = cfg.thing_name.clone();
    let http_target = cfg.http.clone();
    let mut report = DeviceReport {
        thing_name: thing_name.clone(),
        status: FinalStatus::DeadlineReached,
        stats: AgentStats::default(),
        block_latency_us: Vec::new(),
        elapsed: Duration::ZERO,
        connected_after: None,
        connection_errors: 0,
        events: Vec::new(),
        sha256: None,
        final_status_acked: false,
    };
    let mut agent = match Agent::new(cfg) {
        Ok(a) => a,
        Err(e) => {
            report.status = FinalStatus::BadConfig(e.to_string());
            return report;
        }
    };
    let mut mqtt = MqttOptions::new(&thing_name, mqtt_addr.ip().to_string(), mqtt_addr.port());
    mqtt.set_keep_alive(Duration::from_secs(60));
    mqtt.set_credentials(USERNAME, "");
    mqtt.set_max_packet_size(256 * 1024, 256 * 1024);
    if let Some(tls) = tls {
        // rumqttc is built without a crypto provider: make ring the process default (a no-op
        // when the application already installed one).
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        mqtt.set_transport(Transport::tls_with_config(tls));
    }
    let (client, mut eventloop) = AsyncClient::new(mqtt, 1024);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    net.set_connection_timeout(30);
    eventloop.set_network_options(net);

    let now_ms = || start.elapsed().as_millis() as u64;
    let deadline = tokio::time::Instant::from_std(start + opts.deadline);
    let mut http = Some(RangeClient::new(http_target.clone()));
    let mut pending_http: Option<HttpFuture> = None;
    let mut requested_at = start;
    let mut stream_started = false;
    // QoS 1 publishes not yet acknowledged (the final status must land before we return).
    let mut unacked: usize = 0;

    'run: loop {
        let timer = agent.poll_timeout().map_or(deadline, |ms| {
            tokio::time::Instant::from_std(start + Duration::from_millis(ms))
        });
        tokio::select! {
            polled = eventloop.poll() => match polled {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    report.connected_after.get_or_insert(start.elapsed());
                    agent.handle_connected(now_ms());
                    if let (Some(target), false) = (&opts.stream, stream_started) {
                        stream_started = true;
                        agent.start_stream_download(now_ms(), &target.stream, target.file_id, target.file_size);
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    agent.handle_publish(now_ms(), &p.topic, &p.payload);
                }
                Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => unacked = unacked.saturating_sub(1),
                Ok(_) => {}
                Err(_) => {
                    report.connection_errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            (client_back, result) = async { pending_http.as_mut().expect("guarded by the branch condition").await }, if pending_http.is_some() => {
                pending_http = None;
                http = Some(client_back);
                match result {
                    Ok((status, body)) => agent.handle_http_response(now_ms(), status, &body),
                    // No answer at all: the request timer will ask again.
                    Err(_) => agent.handle_http_response(now_ms(), 0, &[]),
                }
            }
            () = sleep_until(timer), if timer < deadline => agent.handle_timeout(now_ms()),
            () = sleep_until(deadline) => break 'run,
        }
        // Blocks that arrived in this step answer the request sent before it: take their latency
        // before the transmits below (the next request among them) restart the clock.
        let (arrived, asked_at) = (Instant::now(), requested_at);
        while let Some(t) = agent.poll_transmit() {
            match t {
                Transmit::Subscribe { topic, qos } => {
                    let _queued = client.try_subscribe(topic, mqtt_qos(qos));
                }
                Transmit::Publish {
                    topic,
                    payload,
                    qos,
                    kind,
                } => {
                    if kind == PublishKind::StreamRequest {
                        requested_at = Instant::now();
                    }
                    if client
                        .try_publish(topic, mqtt_qos(qos), false, payload)
                        .is_ok()
                        && qos == QoS::AtLeastOnce
                    {
                        unacked += 1;
                    }
                }
                Transmit::HttpGet {
                    url,
                    range_start,
                    range_end,
                } => {
                    requested_at = Instant::now();
                    let mut c = http
                        .take()
                        .unwrap_or_else(|| RangeClient::new(http_target.clone()));
                    pending_http = Some(Box::pin(async move {
                        let r = c.get(&url, range_start, range_end).await;
                        (c, r)
                    }));
                }
            }
        }
        while let Some(event) = agent.poll_event() {
            let terminal = match &event {
                Event::BlockAccepted { .. } => {
                    if report.block_latency_us.len() < opts.max_latency_samples {
                        let us = arrived.saturating_duration_since(asked_at).as_micros();
                        report
                            .block_latency_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    None
                }
                Event::DownloadComplete { sha256 } => {
                    report.sha256 = Some(*sha256);
                    opts.stream.as_ref().map(|_| FinalStatus::Downloaded)
                }
                Event::Succeeded { version, .. } => {
                    Some(FinalStatus::Succeeded { version: *version })
                }
                Event::Failed { reason, .. } => Some(FinalStatus::Failed { reason: *reason }),
                Event::SelfTestTimedOut => Some(FinalStatus::SelfTestTimedOut),
                _ => None,
            };
            if !matches!(
                event,
                Event::BlockAccepted { .. } | Event::DuplicateBlock { .. }
            ) {
                report.events.push(event);
            }
            if let Some(status) = terminal {
                report.status = status;
                report.elapsed = start.elapsed();
                report.final_status_acked =
                    flush_and_disconnect(&client, &mut eventloop, unacked).await;
                break 'run;
            }
        }
    }
    report.stats = agent.stats().clone();
    if report.status == FinalStatus::DeadlineReached {
        report.elapsed = start.elapsed();
    }
    report
}

/// Waits (at most 5 s) until the server acknowledged the `unacked` QoS 1 publishes — the final
/// job status among them — then disconnects. Returns whether everything was acknowledged.
async fn flush_and_disconnect(
    client: &AsyncClient,
    eventloop: &mut rumqttc::EventLoop,
    mut unacked: usize,
) -> bool {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut disconnecting = false;
    loop {
        if unacked == 0 && !disconnecting {
            disconnecting = true;
            let _queued = client.try_disconnect();
        }
        tokio::select! {
            polled = eventloop.poll() => match polled {
                Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => unacked = unacked.saturating_sub(1),
                Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => {
                    return unacked == 0;
                }
                Ok(_) => {}
            },
            () = sleep_until(give_up) => return unacked == 0,
        }
    }
}

fn mqtt_qos(q: QoS) -> rumqttc::QoS {
    match q {
        QoS::AtMostOnce => rumqttc::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
    }
}
