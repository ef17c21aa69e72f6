//! Live progress bars (devices connected / downloading / done / failed, blocks/s) and the
//! once-a-second timeline of a run, read from the fleet's shared [`FleetStats`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::report::{Percentiles, Sample};
use crate::stats::{FleetStats, load};
use crate::sys::ProcSampler;

/// Live progress: devices connected / downloading / done / failed and the block rate.
pub struct Progress {
    _multi: MultiProgress,
    connected: ProgressBar,
    downloading: ProgressBar,
    done: ProgressBar,
    failed: ProgressBar,
}

impl Progress {
    /// Bars of `devices` for `target`, hidden when `quiet`.
    pub fn new(devices: u64, quiet: bool, target: &str) -> Self {
        let multi = MultiProgress::with_draw_target(if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(5)
        });
        let style = ProgressStyle::with_template("{prefix:>24} [{bar:40}] {pos:>6}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = |name: &str| {
            let b = multi.add(ProgressBar::new(devices));
            b.set_style(style.clone());
            b.set_prefix(format!("{target} {name}"));
            b
        };
        Self {
            connected: bar("connected"),
            downloading: bar("downloading"),
            done: bar("done"),
            failed: bar("failed"),
            _multi: multi,
        }
    }

    fn update(&self, stats: &FleetStats, blocks_per_s: f64) {
        self.connected.set_position(load(&stats.connected));
        self.downloading.set_position(load(&stats.downloading));
        self.done.set_position(load(&stats.done));
        self.failed.set_position(load(&stats.failed));
        self.done.set_message(format!("{blocks_per_s:.0} blocks/s"));
    }

    fn finish(&self) {
        for b in [&self.connected, &self.downloading, &self.done, &self.failed] {
            b.abandon();
        }
    }
}

/// Drives the progress bars (5 Hz) and, once the start signal is out, records one timeline
/// sample per second; returns the timeline and the largest RSS seen.
pub async fn monitor(
    stats: Arc<FleetStats>,
    progress: Progress,
    sampler: Option<ProcSampler>,
    go: watch::Receiver<Option<Instant>>,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Sample>, Option<u64>) {
    let mut timeline = Vec::new();
    let mut rss_max: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let (mut last_blocks, mut last_t, mut rate) = (0u64, Instant::now(), 0.0);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        n += 1;
        if !n.is_multiple_of(5) {
            progress.update(&stats, rate);
            continue;
        }
        let rss = sampler
            .as_ref()
            .and_then(ProcSampler::sample)
            .map(|s| s.rss_bytes);
        rss_max = rss_max.max(rss);
        let blocks = load(&stats.blocks);
        let now = Instant::now();
        rate = (blocks - last_blocks) as f64 / now.duration_since(last_t).as_secs_f64();
        (last_blocks, last_t) = (blocks, now);
        progress.update(&stats, rate);
        if let Some(start) = *go.borrow() {
            let interval = stats.take_interval();
            let lat = Percentiles::of_micros(&interval, 1e3);
            timeline.push(Sample {
                t_s: now.duration_since(start).as_secs_f64(),
                blocks_per_s: rate,
                p50_ms: lat.p50,
                p99_ms: lat.p99,
                connected: load(&stats.connected),
                done: load(&stats.done),
                server_rss_bytes: rss,
            });
        }
    }
    progress.update(&stats, rate);
    progress.finish();
    (timeline, rss_max)
}
