//! What the workers of one fleet share: live counters (atomics, read by the progress bars and the
//! sampler), the per-block latency histograms and the device completion times.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::download::DownloadStats;

/// Latencies are recorded in microseconds, up to this (one hour).
const MAX_MICROS: u64 = 3_600_000_000;

/// A histogram of microseconds with 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3)
        .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"))
}

/// Counters and histograms of a running fleet.
#[derive(Debug)]
pub struct FleetStats {
    /// Devices with an open connection.
    pub connected: AtomicU64,
    /// Devices that started downloading and have not finished.
    pub downloading: AtomicU64,
    /// Devices that downloaded the whole image (or, in idle mode, held on to the end).
    pub done: AtomicU64,
    /// Devices that gave up (connect error, rejection, bad block, time limit).
    pub failed: AtomicU64,
    /// Reboots performed (`--reboot`).
    pub reboots: AtomicU64,
    /// Replies dropped on purpose (`--loss`).
    pub dropped: AtomicU64,
    /// `--mode ota`: downloads the agents abandoned and restarted from block 0 because a job
    /// message arrived mid-download (0 when the server answers in arrival order).
    pub restarts: AtomicU64,
    /// `--mode ota`: jobs requests the agents sent (`$next/get`, updates).
    pub job_requests: AtomicU64,
    /// Sum of every device's [`DownloadStats`].
    pub requests: AtomicU64,
    /// See [`DownloadStats::retries`].
    pub retries: AtomicU64,
    /// See [`DownloadStats::blocks`].
    pub blocks: AtomicU64,
    /// See [`DownloadStats::bytes`].
    pub bytes: AtomicU64,
    /// See [`DownloadStats::duplicate_blocks`].
    pub duplicate_blocks: AtomicU64,
    /// See [`DownloadStats::server_duplicates`].
    pub server_duplicates: AtomicU64,
    latency: Mutex<Latency>,
    completion: Mutex<Histogram<u64>>,
    failures: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug)]
struct Latency {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

impl Default for FleetStats {
    fn default() -> Self {
        Self {
            connected: AtomicU64::new(0),
            downloading: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            reboots: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            job_requests: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            duplicate_blocks: AtomicU64::new(0),
            server_duplicates: AtomicU64::new(0),
            latency: Mutex::new(Latency {
                total: micros_histogram(),
                interval: micros_histogram(),
            }),
            completion: Mutex::new(micros_histogram()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Reads an atomic counter.
pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(MAX_MICROS)
        .clamp(1, MAX_MICROS)
}

impl FleetStats {
    /// Adds what a download did between two snapshots of its counters.
    pub fn add_progress(&self, before: &DownloadStats, after: &DownloadStats) {
        add(&self.requests, after.requests - before.requests);
        add(&self.retries, after.retries - before.retries);
        add(&self.blocks, after.blocks - before.blocks);
        add(&self.bytes, after.bytes - before.bytes);
        add(
            &self.duplicate_blocks,
            after.duplicate_blocks - before.duplicate_blocks,
        );
        add(
            &self.server_duplicates,
            after.server_duplicates - before.server_duplicates,
        );
    }

    /// Adds replies dropped and reboots done (`--loss`, `--reboot`).
    pub fn add_faults(&self, dropped: u64, reboots: u64) {
        add(&self.dropped, dropped);
        add(&self.reboots, reboots);
    }

    /// Adds an OTA agent's download restarts and jobs requests (`--mode ota`).
    pub fn add_agent(&self, restarts: u64, job_requests: u64) {
        add(&self.restarts, restarts);
        add(&self.job_requests, job_requests);
    }

    /// Records the request→block latency of one new block.
    pub fn record_latency(&self, latency: Duration) {
        let us = micros(latency);
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        l.total.saturating_record(us);
        l.interval.saturating_record(us);
    }

    /// Records one device's time from the start signal to its last block.
    pub fn record_completion(&self, took: Duration) {
        self.completion
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .saturating_record(micros(took));
    }

    /// Counts one failed device under `reason`.
    pub fn record_failure(&self, reason: &str) {
        add(&self.failed, 1);
        *self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    /// The latencies since the last call (for the timeline), and resets that interval.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut l = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = micros_histogram();
        std::mem::replace(&mut l.interval, fresh)
    }

    /// Every latency recorded so far.
    pub fn latency(&self) -> Histogram<u64> {
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .total
            .clone()
    }

    /// Every completion time recorded so far.
    pub fn completion(&self) -> Histogram<u64> {
        self.completion
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Failed devices by reason.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_adds_deltas_and_the_interval_resets() {
        let s = FleetStats::default();
        let a = DownloadStats::default();
        let b = DownloadStats {
            requests: 3,
            blocks: 2,
            bytes: 8192,
            ..a
        };
        s.add_progress(&a, &b);
        s.add_progress(&b, &b);
        assert_eq!(
            (load(&s.requests), load(&s.blocks), load(&s.bytes)),
            (3, 2, 8192)
        );
        s.record_latency(Duration::from_micros(250));
        s.record_latency(Duration::ZERO);
        assert_eq!(s.take_interval().len(), 2);
        assert_eq!(s.take_interval().len(), 0);
        assert_eq!(s.latency().len(), 2);
        s.record_failure("timeout");
        s.record_failure("timeout");
        assert_eq!(s.failures()["timeout"], 2);
        assert_eq!(load(&s.failed), 2);
        s.add_agent(1, 3);
        s.add_agent(0, 2);
        assert_eq!((load(&s.restarts), load(&s.job_requests)), (1, 5));
    }
}
