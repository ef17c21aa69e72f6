//! Running a fleet against one target, and a whole run (the server, then each baseline).
//!
//! One run of [`run`]: devices are spawned at `--connect-rate`; each connects and subscribes,
//! then waits; once every device has connected (or failed to), the start signal goes out and the
//! transfer is timed from there, so throughput is not diluted by the ramp. A monitor task drives
//! the progress bars, samples the server from `/proc` and records one timeline point per
//! second. Everything is bounded by `--duration-limit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use crate::baseline::{self, MosquittoResponder, Responder};
use crate::config::{Baseline, Config, Mode, Protocol};
use crate::download::DownloadPlan;
use crate::link::{Endpoint, LinkOptions, TlsFiles};
use crate::ota::{self, OtaPlan};
use crate::pacer::Pacer;
use crate::progress::{self, Progress};
use crate::range::HttpSource;
use crate::report::{Percentiles, Report};
use crate::setup::{self, ControlPlane};
use crate::shard;
use crate::stats::{FleetStats, load};
use crate::sys::ProcSampler;
use crate::worker::{self, Device, FleetPlan};

/// One thing to measure.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// Name in the report (`otastream`, `tcp`, `mosquitto`).
    pub name: String,
    /// Where devices connect.
    pub endpoint: Endpoint,
    /// Stream id the devices download.
    pub stream: String,
    /// Local process to sample for RSS and CPU.
    pub pid: Option<u32>,
    /// The image, when known (blocks are then compared byte for byte). A shard process makes
    /// its own copy ([`setup::test_image`]) instead of receiving it.
    #[serde(skip)]
    pub expected: Option<Bytes>,
    /// `--protocol http`: where the blocks are fetched instead of over MQTT.
    pub http: Option<HttpSource>,
    /// `--mode ota`: the devices run OTA jobs prepared for them.
    pub ota: Option<OtaPlan>,
}

/// The whole run of a [`Config`]: set up the stream, measure the main target, then each
/// baseline; one report per target, main target first.
pub async fn run_all(cfg: &Config) -> anyhow::Result<Vec<Report>> {
    cfg.validate()?;
    let image = setup::test_image(cfg.image_size);
    let mut reports = Vec::new();
    if let Some(endpoint) = main_endpoint(cfg) {
        let (stream, expected) = match &cfg.stream {
            Some(s) => (s.clone(), None),
            None => (unique_stream_id(), Some(image.clone())),
        };
        if cfg.stream.is_none() && cfg.mode == Mode::Stream {
            create_stream(cfg, &stream, image.clone()).await?;
        }
        let ota = match (cfg.mode, cfg.http) {
            (Mode::Ota, Some(http)) => {
                let things: Vec<String> = (0..cfg.devices)
                    .map(|i| Device::new(&cfg.thing_prefix, i, cfg.seed).thing)
                    .collect();
                let cp = control_plane(cfg, http);
                Some(ota::prepare(&cp, &stream, image.clone(), &things).await?)
            }
            _ => None,
        };
        let target = Target {
            name: "otastream".into(),
            endpoint,
            pid: cfg.server_pid,
            expected,
            stream: stream.clone(),
            http: match (cfg.protocol, cfg.http) {
                (Protocol::Http, Some(addr)) => Some(HttpSource {
                    control_plane: control_plane(cfg, addr),
                    path: format!("/{}/{stream}.bin", setup::BUCKET),
                }),
                _ => None,
            },
            ota,
        };
        reports.push(run(cfg, &target).await?);
    }
    for b in &cfg.baseline {
        let responder = Responder::new(image.clone());
        let mut target = Target {
            name: String::new(),
            endpoint: Endpoint::Raw(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            stream: "loadgen-baseline".into(),
            pid: None,
            expected: Some(image.clone()),
            http: None,
            ota: None,
        };
        let report = match b {
            Baseline::Tcp => {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                target.name = "tcp".into();
                target.endpoint = Endpoint::Raw(listener.local_addr()?);
                // Not sampled: the responder shares this process with the devices.
                let server = baseline::serve_raw(listener, responder);
                let r = run(cfg, &target).await;
                server.abort();
                r?
            }
            Baseline::Mosquitto => {
                let broker = cfg.broker.context("--baseline mosquitto needs --broker")?;
                let _responder = MosquittoResponder::start(broker, responder).await?;
                target.name = "mosquitto".into();
                target.endpoint = Endpoint::Mqtt(broker);
                target.pid = cfg.broker_pid;
                run(cfg, &target).await?
            }
        };
        reports.push(report);
    }
    Ok(reports)
}

/// Creates `stream` through the control plane (`--http`) or the data directory (`--data-dir`).
async fn create_stream(cfg: &Config, stream: &str, image: Bytes) -> anyhow::Result<()> {
    if let Some(addr) = cfg.http {
        return control_plane(cfg, addr).create_stream(stream, image).await;
    }
    let dir = cfg
        .data_dir
        .as_deref()
        .context("creating a stream needs --http or --data-dir")?;
    setup::create_stream_in_store(dir, stream, image).await
}

fn control_plane(cfg: &Config, addr: std::net::SocketAddr) -> ControlPlane {
    ControlPlane {
        addr,
        access_key_id: cfg.access_key_id.clone(),
        secret_access_key: cfg.secret_access_key.clone(),
        region: cfg.region.clone(),
    }
}

fn main_endpoint(cfg: &Config) -> Option<Endpoint> {
    if let Some(addr) = cfg.mqtts {
        let files = TlsFiles {
            ca: cfg.ca.clone()?,
            cert: cfg.cert.clone()?,
            key: cfg.key.clone()?,
        };
        return Some(Endpoint::Mqtts(addr, files));
    }
    cfg.mqtt.map(Endpoint::Mqtt)
}

/// `loadgen-<pid>-<unix seconds>-<n>`: unique per run, well under the agent's 44 characters.
fn unique_stream_id() -> String {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("loadgen-{}-{secs}-{n}", std::process::id())
}

/// What every device of `cfg` against `target` shares; `rate` is this process's `--rate`.
pub fn fleet_plan(cfg: &Config, target: &Target, rate: u32) -> anyhow::Result<FleetPlan> {
    let mut download = DownloadPlan::new(cfg.image_size, cfg.block_size()?, cfg.format());
    download.blocks_per_request = cfg.blocks_per_request;
    download.retry_after = cfg.retry_after();
    download.pace = Duration::from_millis(cfg.pace_ms);
    download.expected = target.expected.clone();
    Ok(FleetPlan {
        endpoint: target.endpoint.clone(),
        link: LinkOptions {
            connect_timeout: Duration::from_secs(cfg.connect_timeout),
            keep_alive: Duration::from_secs(60),
        },
        mode: cfg.mode,
        stream: target.stream.clone(),
        download,
        loss: cfg.loss / 100.0,
        reboot: cfg.reboot / 100.0,
        seed: cfg.seed,
        hold: Duration::from_secs(cfg.hold),
        http: target.http.clone(),
        ota: target.ota.clone(),
        pacer: (rate > 0).then(|| Arc::new(Pacer::new(rate))),
        source_addresses: cfg.source_addresses,
    })
}

/// What the devices of one process share while they run.
pub struct Fleet {
    /// The plan.
    pub plan: Arc<FleetPlan>,
    /// Where they count.
    pub stats: Arc<FleetStats>,
    /// One permit per device that connected or gave up connecting.
    pub arrived: Arc<Semaphore>,
    /// The start signal.
    pub go: watch::Receiver<Option<Instant>>,
    /// The end of the run.
    pub deadline: TokioInstant,
}

impl Fleet {
    /// Spawns devices `indexes` (global, so thing names match across processes) at
    /// `connect_rate` per second until the deadline; returns how many were spawned.
    pub async fn spawn_devices(
        &self,
        cfg: &Config,
        indexes: std::ops::Range<usize>,
        connect_rate: u32,
        workers: &mut JoinSet<()>,
    ) -> usize {
        let connect_rate = connect_rate.max(1);
        let per_tick = (connect_rate / 100).max(1) as usize;
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(
            per_tick as f64 / f64::from(connect_rate),
        ));
        let mut next = indexes.start;
        while next < indexes.end && TokioInstant::now() < self.deadline {
            ticks.tick().await;
            for _ in 0..per_tick.min(indexes.end - next) {
                workers.spawn(worker::run(
                    Arc::clone(&self.plan),
                    Device::new(&cfg.thing_prefix, next, cfg.seed),
                    Arc::clone(&self.stats),
                    Arc::clone(&self.arrived),
                    self.go.clone(),
                    self.deadline,
                ));
                next += 1;
            }
        }
        next - indexes.start
    }
}

/// Runs the configured fleet against one target and reports on it.
pub async fn run(cfg: &Config, target: &Target) -> anyhow::Result<Report> {
    let processes = shard::processes(cfg);
    // Spread over processes, the shards meter themselves; this one only watches.
    let rate = if processes > 1 { 0 } else { cfg.rate };
    let plan = Arc::new(fleet_plan(cfg, target, rate)?);
    let devices = cfg.devices;
    let stats = Arc::new(FleetStats::default());
    let sampler = target.pid.map(ProcSampler::new);
    let sample = || sampler.as_ref().and_then(ProcSampler::sample);
    let at_start = sample();
    let rss_start = at_start.map(|s| s.rss_bytes);
    let deadline = TokioInstant::now() + Duration::from_secs(cfg.duration_limit);
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let (stop_tx, stop_rx) = watch::channel(false);
    let arrived = Arc::new(Semaphore::new(0));
    let monitor = tokio::spawn(progress::monitor(
        Arc::clone(&stats),
        Progress::new(devices as u64, cfg.quiet, &target.name),
        sampler.clone(),
        go_rx.clone(),
        stop_rx,
    ));

    let t0 = Instant::now();
    let mut workers = JoinSet::new();
    let fleet = Fleet {
        plan: Arc::clone(&plan),
        stats: Arc::clone(&stats),
        arrived: Arc::clone(&arrived),
        go: go_rx,
        deadline,
    };
    let spawned = if processes > 1 {
        shard::launch(cfg, target, processes, &fleet, &mut workers)?;
        devices
    } else {
        fleet
            .spawn_devices(cfg, 0..devices, cfg.connect_rate, &mut workers)
            .await
    };
    let all = u32::try_from(spawned).unwrap_or(u32::MAX);
    let everyone = tokio::time::timeout_at(deadline, arrived.acquire_many(all)).await;
    drop(everyone);
    let connect_s = t0.elapsed().as_secs_f64();
    let at_connect = sample();
    // OTA agents start as soon as they are spawned: their run is timed from the first spawn.
    let go = if plan.ota.is_some() {
        t0
    } else {
        Instant::now()
    };
    if let Some(pacer) = &plan.pacer {
        pacer.start().context("starting the --rate pacer")?;
    }
    let _ = go_tx.send(Some(go));
    while workers.join_next().await.is_some() {}
    let elapsed = go.elapsed().as_secs_f64().max(1e-9);
    let at_end = sample();
    let _ = stop_tx.send(true);
    let (timeline, rss_max) = monitor.await.unwrap_or_default();

    let (blocks, bytes) = (load(&stats.blocks), load(&stats.bytes));
    let rss_connected = at_connect.map(|s| s.rss_bytes);
    Ok(Report {
        target: target.name.clone(),
        mode: Some(cfg.mode),
        format: cfg.format().as_str().into(),
        image_size: cfg.image_size,
        block_size: cfg.block_size,
        blocks_per_request: cfg.blocks_per_request,
        offered_rate: (cfg.rate > 0).then_some(cfg.rate),
        processes,
        devices: devices as u64,
        completed: load(&stats.done),
        failed: load(&stats.failed) + (devices - spawned) as u64,
        failures: stats.failures(),
        blocks,
        bytes,
        connect_s,
        elapsed_s: elapsed,
        blocks_per_s: blocks as f64 / elapsed,
        mbytes_per_s: bytes as f64 / elapsed / 1e6,
        latency_ms: Percentiles::of_micros(&stats.latency(), 1e3),
        device_completion_s: Percentiles::of_micros(&stats.completion(), 1e6),
        requests: load(&stats.requests),
        retries: load(&stats.retries),
        duplicate_blocks: load(&stats.duplicate_blocks),
        server_duplicate_answers: load(&stats.server_duplicates),
        dropped_replies: load(&stats.dropped),
        reboots: load(&stats.reboots),
        restarts: load(&stats.restarts),
        job_requests: load(&stats.job_requests),
        server_rss_bytes: rss_max.or(rss_connected),
        server_rss_start_bytes: rss_start,
        server_rss_connected_bytes: rss_connected,
        server_rss_per_device_bytes: rss_start
            .zip(rss_connected)
            .map(|(a, b)| (b as f64 - a as f64) / devices as f64),
        server_cpu_s: if plan.ota.is_some() {
            at_start
        } else {
            at_connect
        }
        .zip(at_end)
        .map(|(a, b)| b.cpu_s - a.cpu_s),
        timeline,
    })
}
