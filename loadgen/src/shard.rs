//! Fleets bigger than one process's open files: the devices are spread over shard processes.
//!
//! Every device holds a socket, and a process may open only so many files (20,000 here, a hard
//! limit even for root in this container). Past that, [`launch`] starts `--processes` (or as
//! many as the limit needs) copies of loadgen with the hidden `--shard-worker` flag, each with a
//! contiguous range of device indexes, so thing names, seeds and OTA targets are those of one
//! big fleet. The parent keeps the run: set-up, the start barrier, progress, the timeline, the
//! server sampling and the report. A shard only runs its devices and reports them.
//!
//! Wire between them: the parent writes one [`ShardJob`] as a JSON line on the shard's stdin,
//! later the line `go` (the start signal). The shard writes [`ShardEvent`] JSON lines on its
//! stdout: arrivals at the barrier, [`StatsDelta`]s every [`REPORT_EVERY`], and `done`. A shard
//! whose stdin closes (the parent died) exits at once; devices a shard never accounted for (it
//! crashed) count as failed, so a report still adds up.
//!
//! Source addresses: rumqttc connects without binding one, so every connection comes from
//! 127.0.0.1. The 28,232 ephemeral ports of Linux's default range allow that many connections
//! to one server port, more than a server process limited to 20,000 files can hold.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

use crate::config::Config;
use crate::fleet::{self, Fleet, Target};
use crate::stats::{FleetStats, Reported, StatsDelta};
use crate::{setup, sys};

/// Open files a process keeps for everything but its devices' sockets.
pub const RESERVED_FILES: u64 = 1024;
/// How often a shard reports its devices.
pub const REPORT_EVERY: Duration = Duration::from_millis(100);
/// How long past the deadline a shard may take to report its end.
const GRACE: Duration = Duration::from_secs(10);
/// Why devices of a shard that vanished failed.
pub const LOST: &str = "loadgen process lost";

/// What a shard runs (one JSON line on its stdin).
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardJob {
    /// The whole run's configuration.
    pub config: Config,
    /// The target, without the image.
    pub target: Target,
    /// Whether blocks are compared with the test image (the shard makes its own copy).
    pub expected: bool,
    /// First device index.
    pub first: usize,
    /// Devices in this shard.
    pub count: usize,
    /// This shard's share of `--rate` (0: unmetered).
    pub rate: u32,
    /// This shard's share of `--connect-rate`.
    pub connect_rate: u32,
    /// Milliseconds left until the run's deadline.
    pub time_left_ms: u64,
}

/// What a shard tells the parent (JSON lines on its stdout).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardEvent {
    /// This many more devices connected or gave up connecting.
    Arrived(u64),
    /// What changed in the shard's counters and histograms.
    Stats(StatsDelta),
    /// Every device of the shard ended and was reported.
    Done,
}

/// Processes the run's devices are spread over: `--processes`, or as many as the open-files
/// limit needs.
pub fn processes(cfg: &Config) -> usize {
    let wanted = if cfg.processes > 0 {
        usize::from(cfg.processes)
    } else {
        let per_process = sys::nofile_hard_limit()
            .saturating_sub(RESERVED_FILES)
            .max(1);
        cfg.devices
            .div_ceil(usize::try_from(per_process).unwrap_or(usize::MAX))
    };
    wanted.clamp(1, cfg.devices.max(1))
}

/// Share `i` of `total` split into `parts` (the first ones take the remainder).
fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

/// Shard `i`'s part of `--rate`: a metered run stays metered in every shard (0 would mean
/// unmetered), so each gets at least 1 request per second.
fn rate_share(rate: u32, parts: usize, i: usize) -> u32 {
    match rate {
        0 => 0,
        rate => u32::try_from(share(u64::from(rate), parts, i).max(1)).unwrap_or(u32::MAX),
    }
}

/// Starts `processes` shard processes for the devices of `cfg`, one driver task each in
/// `workers`; each driver ends when its shard's devices have all been accounted for in
/// `fleet.stats`.
pub fn launch(
    cfg: &Config,
    target: &Target,
    processes: usize,
    fleet: &Fleet,
    workers: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let exe = match &cfg.shard_exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("finding the loadgen executable")?,
    };
    let mut first = 0;
    for i in 0..processes {
        let count = share(cfg.devices as u64, processes, i) as usize;
        let job = ShardJob {
            config: cfg.clone(),
            target: target.clone(),
            expected: target.expected.is_some(),
            first,
            count,
            rate: rate_share(cfg.rate, processes, i),
            connect_rate: share(u64::from(cfg.connect_rate), processes, i).max(1) as u32,
            time_left_ms: fleet
                .deadline
                .saturating_duration_since(TokioInstant::now())
                .as_millis() as u64,
        };
        first += count;
        let mut child = tokio::process::Command::new(&exe)
            .arg("--shard-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting shard process {}", exe.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            anyhow::bail!("shard process without pipes");
        };
        let driver = Driver {
            count: count as u64,
            stats: Arc::clone(&fleet.stats),
            arrived: Arc::clone(&fleet.arrived),
            go: fleet.go.clone(),
            deadline: fleet.deadline,
        };
        let mut job_line = serde_json::to_vec(&job).context("writing the shard job")?;
        job_line.push(b'\n');
        workers.spawn(driver.run(child, stdin, stdout, job_line));
    }
    Ok(())
}

/// The parent's side of one shard.
struct Driver {
    count: u64,
    stats: Arc<FleetStats>,
    arrived: Arc<Semaphore>,
    go: watch::Receiver<Option<Instant>>,
    deadline: TokioInstant,
}

impl Driver {
    async fn run(
        mut self,
        child: Child,
        mut stdin: ChildStdin,
        stdout: ChildStdout,
        job_line: Vec<u8>,
    ) {
        let (mut arrived, mut ended) = (0u64, 0i64);
        let mut lines = BufReader::new(stdout).lines();
        let mut go_sent = stdin.write_all(&job_line).await.is_err();
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let event = match line {
                        Ok(Some(line)) => serde_json::from_str::<ShardEvent>(&line),
                        _ => break,
                    };
                    match event {
                        Ok(ShardEvent::Arrived(n)) => {
                            arrived += n;
                            self.arrived.add_permits(n as usize);
                        }
                        Ok(ShardEvent::Stats(delta)) => {
                            ended += delta.devices_ended();
                            self.stats.apply(&delta);
                        }
                        Ok(ShardEvent::Done) => break,
                        Err(e) => {
                            eprintln!("loadgen: a shard process sent a bad line: {e}");
                            break;
                        }
                    }
                }
                started = async { self.go.wait_for(Option::is_some).await.is_ok() }, if !go_sent => {
                    go_sent = true;
                    if !started || stdin.write_all(b"go\n").await.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep_until(self.deadline + GRACE) => break,
            }
        }
        drop(child); // killed if still running
        let lost = self.count.saturating_sub(u64::try_from(ended).unwrap_or(0));
        for _ in 0..lost {
            self.stats.record_failure(LOST);
        }
        self.arrived
            .add_permits(self.count.saturating_sub(arrived) as usize);
    }
}

/// `--shard-worker`: runs the job read from stdin and reports on stdout until its devices end.
pub async fn serve() -> anyhow::Result<()> {
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    let line = input.next_line().await?.context("no shard job on stdin")?;
    let job: ShardJob = serde_json::from_str(&line).context("reading the shard job")?;
    let mut cfg = job.config;
    cfg.quiet = true;
    sys::raise_nofile_limit(job.count as u64 + RESERVED_FILES);
    let mut target = job.target;
    if job.expected {
        target.expected = Some(setup::test_image(cfg.image_size));
    }
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let fleet = Fleet {
        plan: Arc::new(fleet::fleet_plan(&cfg, &target, job.rate)?),
        stats: Arc::new(FleetStats::default()),
        arrived: Arc::new(Semaphore::new(0)),
        go: go_rx,
        deadline: TokioInstant::now() + Duration::from_millis(job.time_left_ms),
    };
    let pacer = fleet.plan.pacer.clone();
    // The start signal, then nothing: end of input means the parent is gone.
    tokio::spawn(async move {
        if let Ok(Some(line)) = input.next_line().await
            && line == "go"
        {
            if let Some(p) = &pacer
                && let Err(e) = p.start()
            {
                eprintln!("shard: starting the pacer: {e}");
            }
            let _ = go_tx.send(Some(Instant::now()));
            while let Ok(Some(_)) = input.next_line().await {}
        }
        std::process::exit(3);
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let reporter = tokio::spawn(report(
        Arc::clone(&fleet.stats),
        Arc::clone(&fleet.arrived),
        stop_rx,
    ));
    let mut workers = JoinSet::new();
    let range = job.first..job.first + job.count;
    let spawned = fleet
        .spawn_devices(&cfg, range, job.connect_rate, &mut workers)
        .await;
    for _ in spawned..job.count {
        fleet.stats.record_failure("time limit");
    }
    fleet.arrived.add_permits(job.count - spawned);
    while workers.join_next().await.is_some() {}
    let _ = stop_tx.send(true);
    reporter.await.context("shard reporter")?
}

/// Writes arrivals and stats deltas every [`REPORT_EVERY`], and a last one and `done` at stop.
async fn report(
    stats: Arc<FleetStats>,
    arrived: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut out = tokio::io::stdout();
    let mut reported = Reported::default();
    let mut arrivals_reported = 0;
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let mut lines = Vec::new();
        let arrivals = arrived.available_permits() as u64;
        if arrivals > arrivals_reported {
            push_line(
                &mut lines,
                &ShardEvent::Arrived(arrivals - arrivals_reported),
            )?;
            arrivals_reported = arrivals;
        }
        let delta = stats.take_delta(&mut reported);
        if !delta.is_empty() {
            push_line(&mut lines, &ShardEvent::Stats(delta))?;
        }
        if last {
            push_line(&mut lines, &ShardEvent::Done)?;
        }
        out.write_all(&lines).await?;
        out.flush().await?;
        if last {
            return Ok(());
        }
    }
}

fn push_line(out: &mut Vec<u8>, event: &ShardEvent) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for (total, parts) in [(10u64, 3usize), (3, 3), (19_000, 4), (7, 1)] {
            let shares: Vec<u64> = (0..parts).map(|i| share(total, parts, i)).collect();
            assert_eq!(shares.iter().sum::<u64>(), total);
            let (min, max) = (shares.iter().min(), shares.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{shares:?}");
        }
    }

    #[test]
    fn every_shard_of_a_metered_run_is_metered() {
        assert_eq!(
            (0..3).map(|i| rate_share(2, 3, i)).collect::<Vec<_>>(),
            [1, 1, 1]
        );
        assert_eq!(
            (0..2).map(|i| rate_share(0, 2, i)).collect::<Vec<_>>(),
            [0, 0]
        );
        assert_eq!(
            (0..4).map(|i| rate_share(10_001, 4, i)).sum::<u32>(),
            10_001
        );
    }

    #[test]
    fn the_process_count_follows_the_flag_or_the_open_files_limit() {
        let mut cfg = Config::parse_from(["loadgen", "--devices", "10", "--processes", "4"]);
        assert_eq!(processes(&cfg), 4);
        cfg.processes = 50;
        assert_eq!(processes(&cfg), 10, "never more processes than devices");
        cfg.processes = 0;
        let per_process = sys::nofile_hard_limit() - RESERVED_FILES;
        cfg.devices = per_process as usize;
        assert_eq!(processes(&cfg), 1);
        cfg.devices += 1;
        assert_eq!(processes(&cfg), 2);
    }
}
