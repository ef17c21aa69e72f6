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
    latency: Mutex<Recorded>,
    completion: Mutex<Recorded>,
    failures: Mutex<BTreeMap<String, u64>>,
}

/// How many counters [`FleetStats::counters`] lists.
const COUNTERS: usize = 14;
/// Positions of `done` and `failed` in [`FleetStats::counters`].
const DONE: usize = 2;
const FAILED: usize = 3;

/// What changed in a [`FleetStats`] since the last [`FleetStats::take_delta`]: how a shard
/// process reports its devices to the parent, which adds it to its own with
/// [`FleetStats::apply`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsDelta {
    /// Counter changes, in a fixed order of the [`FleetStats`] counters (gauges such as
    /// `connected` go down).
    pub counters: Vec<i64>,
    /// New latencies as (microseconds, count) per histogram bucket.
    pub latency: Vec<(u64, u64)>,
    /// New completion times, likewise.
    pub completion: Vec<(u64, u64)>,
    /// New failures by reason.
    pub failures: BTreeMap<String, u64>,
}

impl StatsDelta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.counters.iter().all(|c| *c == 0)
            && self.latency.is_empty()
            && self.completion.is_empty()
            && self.failures.is_empty()
    }

    /// Devices that ended (done or failed) in this delta.
    pub fn devices_ended(&self) -> i64 {
        let at = |i: usize| self.counters.get(i).copied().unwrap_or(0);
        at(DONE) + at(FAILED)
    }
}

/// What the last [`FleetStats::take_delta`] had already reported.
#[derive(Debug, Default)]
pub struct Reported {
    counters: [u64; COUNTERS],
    failures: BTreeMap<String, u64>,
}

/// One measure: everything recorded, and what was recorded since [`Recorded::take_interval`].
#[derive(Debug)]
struct Recorded {
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
            latency: Mutex::new(Recorded::default()),
            completion: Mutex::new(Recorded::default()),
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

impl Default for Recorded {
    fn default() -> Self {
        Self {
            total: micros_histogram(),
            interval: micros_histogram(),
        }
    }
}

impl Recorded {
    fn record_n(&mut self, micros: u64, count: u64) {
        self.total.saturating_record_n(micros, count);
        self.interval.saturating_record_n(micros, count);
    }

    fn take_interval(&mut self) -> Histogram<u64> {
        std::mem::replace(&mut self.interval, micros_histogram())
    }
}

/// A histogram as (value, count) per recorded bucket; recording them again lands in the same
/// buckets.
fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        lock(&self.latency).record_n(micros(latency), 1);
    }

    /// Records one device's time from the start signal to its last block.
    pub fn record_completion(&self, took: Duration) {
        lock(&self.completion).record_n(micros(took), 1);
    }

    /// Counts one failed device under `reason`.
    pub fn record_failure(&self, reason: &str) {
        add(&self.failed, 1);
        *lock(&self.failures).entry(reason.to_owned()).or_default() += 1;
    }

    /// The latencies since the last call (for the timeline), and resets that interval.
    pub fn take_interval(&self) -> Histogram<u64> {
        lock(&self.latency).take_interval()
    }

    /// Every latency recorded so far.
    pub fn latency(&self) -> Histogram<u64> {
        lock(&self.latency).total.clone()
    }

    /// Every completion time recorded so far.
    pub fn completion(&self) -> Histogram<u64> {
        lock(&self.completion).total.clone()
    }

    /// Every counter, in the fixed order of [`StatsDelta::counters`].
    fn counters(&self) -> [&AtomicU64; COUNTERS] {
        [
            &self.connected,
            &self.downloading,
            &self.done,
            &self.failed,
            &self.reboots,
            &self.dropped,
            &self.restarts,
            &self.job_requests,
            &self.requests,
            &self.retries,
            &self.blocks,
            &self.bytes,
            &self.duplicate_blocks,
            &self.server_duplicates,
        ]
    }

    /// What changed since `reported`, which then covers it. It takes the latency and
    /// completion intervals, so a fleet reporting this way has no timeline of its own.
    pub fn take_delta(&self, reported: &mut Reported) -> StatsDelta {
        let now = self.counters().map(load);
        let counters = now
            .iter()
            .zip(&reported.counters)
            .map(|(n, r)| n.wrapping_sub(*r) as i64)
            .collect();
        reported.counters = now;
        let failures_now = self.failures();
        let failures = failures_now
            .iter()
            .filter_map(|(reason, n)| {
                let new = n - reported.failures.get(reason).copied().unwrap_or(0);
                (new > 0).then(|| (reason.clone(), new))
            })
            .collect();
        reported.failures = failures_now;
        StatsDelta {
            counters,
            latency: buckets(&lock(&self.latency).take_interval()),
            completion: buckets(&lock(&self.completion).take_interval()),
            failures,
        }
    }

    /// Adds another fleet's delta to these counters and histograms.
    pub fn apply(&self, delta: &StatsDelta) {
        for (counter, change) in self.counters().into_iter().zip(&delta.counters) {
            counter.fetch_add(*change as u64, Ordering::Relaxed);
        }
        for (measure, buckets) in [
            (&self.latency, &delta.latency),
            (&self.completion, &delta.completion),
        ] {
            let mut m = lock(measure);
            for &(micros, count) in buckets {
                m.record_n(micros, count);
            }
        }
        let mut failures = lock(&self.failures);
        for (reason, n) in &delta.failures {
            *failures.entry(reason.clone()).or_default() += n;
        }
    }

    /// Failed devices by reason.
    pub fn failures(&self) -> BTreeMap<String, u64> {
        lock(&self.failures).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_carry_one_fleet_into_another_exactly_once() {
        let (shard, parent) = (FleetStats::default(), FleetStats::default());
        let mut reported = Reported::default();
        shard.connected.fetch_add(3, Ordering::Relaxed);
        shard.blocks.fetch_add(10, Ordering::Relaxed);
        for us in [90, 250, 250, 70_000] {
            shard.record_latency(Duration::from_micros(us));
        }
        shard.record_completion(Duration::from_millis(1500));
        shard.record_failure("rejected");
        parent.apply(&shard.take_delta(&mut reported));
        // Later: a device disconnects and finishes, another fails the same way.
        shard.connected.fetch_sub(1, Ordering::Relaxed);
        shard.done.fetch_add(1, Ordering::Relaxed);
        shard.record_failure("rejected");
        shard.record_latency(Duration::from_micros(250));
        let second = shard.take_delta(&mut reported);
        assert_eq!(second.devices_ended(), 2);
        assert_eq!(second.failures["rejected"], 1);
        parent.apply(&second);
        parent.apply(&shard.take_delta(&mut reported)); // nothing new
        assert_eq!(load(&parent.connected), 2);
        assert_eq!((load(&parent.blocks), load(&parent.done)), (10, 1));
        assert_eq!(load(&parent.failed), 2);
        assert_eq!(parent.failures()["rejected"], 2);
        let (a, b) = (shard.latency(), parent.latency());
        assert_eq!(b.len(), 5);
        for q in [0.0, 0.5, 0.9, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q));
        }
        assert_eq!(parent.completion().len(), 1);
        // The parent's own timeline still sees the shard's latencies.
        assert_eq!(parent.take_interval().len(), 5);
    }

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
