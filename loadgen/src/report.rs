//! The result of a run: one [`Report`] per target (the server, then each baseline), the JSON
//! document (the main target's fields at the top level, `baselines` and `ratios` beside them)
//! and the table printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::Mode;

/// Percentiles of a histogram, in the unit the field name says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of a histogram of microseconds, divided by `per_unit` microseconds.
    pub fn of_micros(h: &Histogram<u64>, per_unit: f64) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |q: f64| h.value_at_quantile(q) as f64 / per_unit;
        Self {
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: h.max() as f64 / per_unit,
        }
    }
}

/// One point of the timeline (one per second of the transfer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the start signal.
    pub t_s: f64,
    /// New blocks per second in this interval.
    pub blocks_per_s: f64,
    /// Median block latency in this interval (ms).
    pub p50_ms: f64,
    /// 99th-percentile block latency in this interval (ms).
    pub p99_ms: f64,
    /// Devices connected at the end of the interval.
    pub connected: u64,
    /// Devices done at the end of the interval.
    pub done: u64,
    /// Server RSS, when sampled.
    pub server_rss_bytes: Option<u64>,
}

/// Everything measured against one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// `otastream` (or whatever --mqtt points at), `tcp`, `mosquitto`.
    pub target: String,
    /// What the devices did.
    pub mode: Option<Mode>,
    /// `cbor` or `json`.
    pub format: String,
    /// Image size in bytes.
    pub image_size: u64,
    /// Block size `l`.
    pub block_size: u32,
    /// Blocks per request `n`.
    pub blocks_per_request: u32,
    /// `--rate`: the offered fleet-wide requests per second, when metered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<u32>,
    /// Loadgen processes the devices ran in (more than one past the open-files limit).
    pub processes: usize,
    /// Devices started.
    pub devices: u64,
    /// Devices that finished (downloaded everything, or held idle to the end).
    pub completed: u64,
    /// Devices that gave up.
    pub failed: u64,
    /// Failed devices by reason.
    pub failures: BTreeMap<String, u64>,
    /// New blocks received (all devices).
    pub blocks: u64,
    /// Payload bytes of those blocks.
    pub bytes: u64,
    /// Seconds from the first connect until every device had connected or failed.
    pub connect_s: f64,
    /// Seconds from the start signal until the last device finished.
    pub elapsed_s: f64,
    /// `blocks / elapsed_s`.
    pub blocks_per_s: f64,
    /// `bytes / elapsed_s / 10^6`.
    pub mbytes_per_s: f64,
    /// Request → block latency of new blocks (ms).
    pub latency_ms: Percentiles,
    /// Start signal → last block, per completed device (s).
    pub device_completion_s: Percentiles,
    /// Requests sent.
    pub requests: u64,
    /// Requests repeated after the quiet timeout.
    pub retries: u64,
    /// Blocks received again because a device asked again.
    pub duplicate_blocks: u64,
    /// Blocks the server sent twice for one request (must be 0).
    pub server_duplicate_answers: u64,
    /// Replies dropped on purpose (`--loss`).
    pub dropped_replies: u64,
    /// Devices that rebooted mid-download (`--reboot`).
    pub reboots: u64,
    /// `--mode ota`: downloads restarted from block 0 because a job message arrived
    /// mid-download (the AWS agent's behaviour; 0 when jobs answers keep arrival order).
    pub restarts: u64,
    /// `--mode ota`: jobs requests the agents sent (`$next/get`, updates).
    pub job_requests: u64,
    /// Largest server RSS seen during the run (`--server-pid`).
    pub server_rss_bytes: Option<u64>,
    /// Server RSS before the first device connected.
    pub server_rss_start_bytes: Option<u64>,
    /// Server RSS once every device had connected.
    pub server_rss_connected_bytes: Option<u64>,
    /// `(connected − start) / devices`: memory per connected device.
    pub server_rss_per_device_bytes: Option<f64>,
    /// Server CPU seconds from the start signal to the end.
    pub server_cpu_s: Option<f64>,
    /// One sample per second of the transfer.
    pub timeline: Vec<Sample>,
}

/// The JSON document: the main report flattened at the top, the baselines and the ratios of
/// blocks/s (main ÷ baseline) beside it.
pub fn to_json(reports: &[Report]) -> serde_json::Value {
    let Some((main, rest)) = reports.split_first() else {
        return serde_json::Value::Null;
    };
    let mut doc = serde_json::to_value(main).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut doc {
        let ratios: BTreeMap<String, f64> = rest
            .iter()
            .filter(|b| b.blocks_per_s > 0.0)
            .map(|b| {
                (
                    format!("vs_{}", b.target),
                    main.blocks_per_s / b.blocks_per_s,
                )
            })
            .collect();
        map.insert(
            "baselines".into(),
            serde_json::to_value(rest).unwrap_or_default(),
        );
        map.insert(
            "ratios".into(),
            serde_json::to_value(ratios).unwrap_or_default(),
        );
    }
    doc
}

/// The stdout table, one row per target, plus ratio lines.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>7} {:>7} {:>6} {:>10} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7} {:>6} {:>7} {:>10} {:>7}",
        "target",
        "devices",
        "done",
        "failed",
        "blocks/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "done p99 s",
        "retries",
        "dups",
        "srv dup",
        "srv RSS",
        "srv CPU"
    );
    for r in reports {
        let rss = r.server_rss_bytes.map_or("-".to_owned(), |b| {
            format!("{:.1} MiB", b as f64 / 1048576.0)
        });
        let cpu = r
            .server_cpu_s
            .map_or("-".to_owned(), |c| format!("{c:.1} s"));
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>7} {:>6} {:>10.0} {:>9.1} {:>8.3} {:>8.3} {:>8.1} {:>9.2} {:>7} {:>6} {:>7} {:>10} {:>7}",
            r.target,
            r.devices,
            r.completed,
            r.failed,
            r.blocks_per_s,
            r.mbytes_per_s,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.max,
            r.device_completion_s.p99,
            r.retries,
            r.duplicate_blocks,
            r.server_duplicate_answers,
            rss,
            cpu,
        );
        if let (Some(per), Some(Mode::Idle)) = (r.server_rss_per_device_bytes, r.mode) {
            let _ = writeln!(
                out,
                "  {}: server RSS per connected device {per:.0} bytes",
                r.target
            );
        }
        if r.mode == Some(Mode::Ota) {
            let _ = writeln!(
                out,
                "  {}: {} jobs requests, {} download restarts",
                r.target, r.job_requests, r.restarts
            );
        }
        for (why, n) in &r.failures {
            let _ = writeln!(out, "  {}: {n} failed ({why})", r.target);
        }
    }
    if let Some((main, rest)) = reports.split_first() {
        for b in rest.iter().filter(|b| b.blocks_per_s > 0.0) {
            let _ = writeln!(
                out,
                "{} / {} = {:.2}× blocks/s",
                main.target,
                b.target,
                main.blocks_per_s / b.blocks_per_s
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::micros_histogram;

    #[test]
    fn percentiles_convert_units() {
        let mut h = micros_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let p = Percentiles::of_micros(&h, 1000.0);
        assert!((p.p50 - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.01, "{p:?}");
        assert_eq!(
            Percentiles::of_micros(&micros_histogram(), 1.0),
            Percentiles::default()
        );
    }

    #[test]
    fn json_puts_the_main_target_on_top_with_ratios() {
        let main = Report {
            target: "otastream".into(),
            devices: 10,
            blocks_per_s: 300.0,
            ..Report::default()
        };
        let tcp = Report {
            target: "tcp".into(),
            blocks_per_s: 600.0,
            ..Report::default()
        };
        let doc = to_json(&[main, tcp]);
        assert_eq!(doc["devices"], 10);
        assert_eq!(doc["baselines"][0]["target"], "tcp");
        assert_eq!(doc["ratios"]["vs_tcp"], 0.5);
        for key in [
            "latency_ms",
            "device_completion_s",
            "server_rss_bytes",
            "server_cpu_s",
        ] {
            assert!(doc.get(key).is_some(), "{key} missing");
        }
        let t = table(&[Report::default()]);
        assert_eq!(t.lines().count(), 2);
        let ota = Report {
            mode: Some(Mode::Ota),
            restarts: 2,
            job_requests: 7,
            ..Report::default()
        };
        assert_eq!(to_json(std::slice::from_ref(&ota))["restarts"], 2);
        let t = table(&[ota]);
        assert!(t.contains("7 jobs requests, 2 download restarts"), "{t}");
    }
}
