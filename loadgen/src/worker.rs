//! One simulated device as a tokio task: connect, wait for the fleet's start signal, then either
//! download the stream (dropping a share of the replies and rebooting once if told to) or stay
//! connected and idle. Every step is reflected live in the shared [`FleetStats`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;

use crate::config::Mode;
use crate::download::{Download, DownloadError, DownloadPlan, Received};
use crate::link::{Endpoint, Kind, Link, LinkOptions};
use crate::ota::{self, OtaPlan};
use crate::pacer::Pacer;
use crate::range::{self, HttpSource};
use crate::setup::HttpConn;
use crate::stats::FleetStats;

/// What every device of a fleet shares.
#[derive(Clone, Debug)]
pub struct FleetPlan {
    /// Where devices connect.
    pub endpoint: Endpoint,
    /// Connect settings.
    pub link: LinkOptions,
    /// Download or idle.
    pub mode: Mode,
    /// The stream every device downloads.
    pub stream: String,
    /// How each device downloads.
    pub download: DownloadPlan,
    /// Fraction (0–1) of data messages a device drops.
    pub loss: f64,
    /// Fraction (0–1) of devices that reboot once mid-download.
    pub reboot: f64,
    /// Seed of the loss and reboot choices.
    pub seed: u64,
    /// Idle mode: how long to stay connected after the start signal.
    pub hold: std::time::Duration,
    /// `--protocol http`: blocks come as S3 range GETs from here instead of over MQTT.
    pub http: Option<HttpSource>,
    /// `--mode ota`: what the simulated agents need.
    pub ota: Option<OtaPlan>,
    /// `--rate`: the fleet-wide request meter every download request waits on.
    pub pacer: Option<Arc<Pacer>>,
    /// `--source-addresses`: how many 127.0.0.x addresses the devices connect from.
    pub source_addresses: u8,
}

impl FleetPlan {
    /// The address device `index` connects from: none to bind (the kernel picks 127.0.0.1)
    /// with one source address, else 127.0.0.1 up to 127.0.0.N in turn.
    pub fn source_address(&self, index: usize) -> Option<IpAddr> {
        let n = usize::from(self.source_addresses);
        (n > 1).then(|| IpAddr::from([127, 0, 0, 1 + (index % n) as u8]))
    }
}

/// Why a device gave up; [`Failure::category`] is the report's key.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// It could not connect (or subscribe).
    #[error("connect: {0:#}")]
    Connect(anyhow::Error),
    /// The connection broke mid-download.
    #[error("connection lost: {0:#}")]
    Link(anyhow::Error),
    /// The download itself failed (rejection, bad block).
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// `--duration-limit` ended first.
    #[error("time limit reached")]
    TimeLimit,
    /// The OTA job of the device did not succeed (the reason).
    #[error("OTA job: {0}")]
    Job(&'static str),
}

impl Failure {
    /// A short, low-cardinality reason for the report.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Link(_) => "connection lost",
            Self::Download(DownloadError::Rejected(_)) => "rejected",
            Self::Download(_) => "bad block",
            Self::TimeLimit => "time limit",
            Self::Job(why) => why,
        }
    }
}

/// One device's identity and its own fault choices.
#[derive(Debug)]
pub struct Device {
    /// Thing name (and MQTT client id).
    pub thing: String,
    /// Index in the whole fleet.
    pub index: usize,
    /// Per-device random source for `--loss` and `--reboot`.
    pub rng: fastrand::Rng,
}

impl Device {
    /// Device `index` of a fleet of `prefix`-named things, seeded from `seed`.
    pub fn new(prefix: &str, index: usize, seed: u64) -> Self {
        Self {
            thing: format!("{prefix}-{index:05}"),
            index,
            rng: fastrand::Rng::with_seed(
                seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
        }
    }
}

/// Runs one device to its end and accounts for it in `stats`: connect (counted as arrived in
/// `arrived` either way), wait for `go`, then the mode's work, all bounded by `deadline`.
pub async fn run(
    plan: Arc<FleetPlan>,
    mut device: Device,
    stats: Arc<FleetStats>,
    arrived: Arc<tokio::sync::Semaphore>,
    mut go: watch::Receiver<Option<Instant>>,
    deadline: TokioInstant,
) {
    if let Some(ota) = &plan.ota {
        // The agent connects by itself and starts at once: no barrier, timed from its spawn.
        arrived.add_permits(1);
        stats.downloading.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let left = deadline.saturating_duration_since(TokioInstant::now());
        let r = ota::run_device(&plan, ota, &mut device, &stats, left).await;
        stats.downloading.fetch_sub(1, Ordering::Relaxed);
        return finish(&stats, r, start);
    }
    let fmt = plan.download.format.as_str();
    let base = format!("$aws/things/{}/streams/{}", device.thing, plan.stream);
    let data_topic = format!("{base}/data/{fmt}");
    let connected = tokio::time::timeout_at(deadline, async {
        match &plan.http {
            Some(src) => {
                let source = plan.source_address(device.index);
                src.control_plane.connect_from(source).await.map(Conn::Http)
            }
            None => Link::connect(
                &plan.endpoint,
                plan.source_address(device.index),
                &device.thing,
                &data_topic,
                &plan.link,
            )
            .await
            .map(Conn::Mqtt),
        }
    })
    .await;
    arrived.add_permits(1);
    let conn = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return stats.record_failure(Failure::Connect(e).category()),
        Err(_) => return stats.record_failure(Failure::TimeLimit.category()),
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let started = tokio::select! {
        s = go.wait_for(Option::is_some) => s.ok().and_then(|s| *s),
        _ = tokio::time::sleep_until(deadline) => None,
    };
    let result = match (started, plan.mode, conn) {
        (None, _, _) => Err(Failure::TimeLimit),
        (Some(start), Mode::Idle, conn) => {
            let until = TokioInstant::from_std(start + plan.hold).min(deadline);
            match conn {
                Conn::Mqtt(mut link) => link.idle_until(until).await.map_err(Failure::Link),
                // An idle keep-alive HTTP connection just stays open.
                Conn::Http(_conn) => {
                    tokio::time::sleep_until(until).await;
                    Ok(())
                }
            }
        }
        (Some(_), Mode::Stream, conn) => {
            stats.downloading.fetch_add(1, Ordering::Relaxed);
            let r = match conn {
                Conn::Http(conn) => {
                    range::download(&plan, &mut device, &stats, conn, deadline).await
                }
                Conn::Mqtt(link) => {
                    let topics = Topics {
                        get: format!("{base}/get/{fmt}"),
                        data: data_topic,
                    };
                    download(&plan, &mut device, &stats, link, &topics, deadline).await
                }
            };
            stats.downloading.fetch_sub(1, Ordering::Relaxed);
            r
        }
        (Some(_), Mode::Ota, _) => Err(Failure::Job("bad device config")),
    };
    stats.connected.fetch_sub(1, Ordering::Relaxed);
    finish(&stats, result, started.unwrap_or_else(Instant::now));
}

/// Accounts for a device's end: done (with its completion time from `start`) or failed.
fn finish(stats: &FleetStats, result: Result<(), Failure>, start: Instant) {
    match result {
        Ok(()) => {
            stats.record_completion(start.elapsed());
            stats.done.fetch_add(1, Ordering::Relaxed);
        }
        Err(f) => stats.record_failure(f.category()),
    }
}

/// A device's open connection, by data path.
enum Conn {
    Mqtt(Link),
    Http(HttpConn),
}

struct Topics {
    get: String,
    data: String,
}

async fn download(
    plan: &FleetPlan,
    device: &mut Device,
    stats: &FleetStats,
    mut link: Link,
    topics: &Topics,
    deadline: TokioInstant,
) -> Result<(), Failure> {
    let mut dl = Download::new(plan.download.clone());
    let total = dl.remaining();
    // A rebooting device restarts once, after a random share of its blocks.
    let mut reboot_at =
        (total > 1 && device.rng.f64() < plan.reboot).then(|| device.rng.u32(1..total));
    let mut seen = dl.stats();
    // Part-load runs: spread the devices' first requests over one pace interval, so the fleet
    // asks at a steady rate instead of in synchronised bursts.
    let pace = plan.download.pace.as_micros() as u64;
    if pace > 0 {
        tokio::time::sleep(std::time::Duration::from_micros(device.rng.u64(0..pace))).await;
    }
    loop {
        if let Some(pacer) = &plan.pacer
            && dl.request_due(Instant::now())
        {
            pacer.wait().await;
        }
        if let Some(req) = dl.poll_request(Instant::now()) {
            link.send(&topics.get, req).await.map_err(Failure::Link)?;
        }
        stats.add_progress(&seen, &dl.stats());
        seen = dl.stats();
        if dl.is_complete() {
            return Ok(());
        }
        if reboot_at.is_some_and(|at| dl.remaining() <= at) {
            reboot_at = None;
            stats.reboots.fetch_add(1, Ordering::Relaxed);
            dl.restart();
            // Power cut: the old connection goes away before the device comes back.
            drop(link);
            stats.connected.fetch_sub(1, Ordering::Relaxed);
            let relinked = tokio::time::timeout_at(
                deadline,
                Link::connect(
                    &plan.endpoint,
                    plan.source_address(device.index),
                    &device.thing,
                    &topics.data,
                    &plan.link,
                ),
            )
            .await;
            // Counted back either way: `run` takes the device off once at its end.
            stats.connected.fetch_add(1, Ordering::Relaxed);
            link = relinked
                .map_err(|_| Failure::TimeLimit)?
                .map_err(Failure::Connect)?;
            continue;
        }
        let wake = dl
            .poll_timeout()
            .map_or(deadline, TokioInstant::from_std)
            .min(deadline);
        tokio::select! {
            msg = link.recv() => {
                let (kind, payload) = msg.map_err(Failure::Link)?;
                match kind {
                    Kind::Data if plan.loss > 0.0 && device.rng.f64() < plan.loss => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Kind::Data => {
                        if let Received::New { latency: Some(l) } =
                            dl.handle_data(&payload, Instant::now())?
                        {
                            stats.record_latency(l);
                        }
                    }
                    Kind::Rejected => return Err(dl.handle_rejected(&payload).into()),
                    Kind::Other => {}
                }
            }
            _ = tokio::time::sleep_until(wake) => {
                if TokioInstant::now() >= deadline {
                    stats.add_progress(&seen, &dl.stats());
                    return Err(Failure::TimeLimit);
                }
            }
        }
    }
}
