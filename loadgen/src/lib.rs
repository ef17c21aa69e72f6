//! # otastream-loadgen
//!
//! A simulated fleet of AWS-IoT-style devices — downloading a firmware stream over MQTT (or HTTP
//! ranges), running whole signed OTA jobs, or just staying connected — and the instrument that
//! measures a server serving them: blocks/s, MB/s, per-block latency (HDR histogram),
//! device completion times, retries, duplicates, the server's RSS and CPU, a JSON report and an
//! SVG chart. The same fleet can be pointed at two baselines in the same run (a raw loopback TCP
//! responder — the ceiling — and a Mosquitto broker with a responder client), so numbers come out
//! as ratios rather than machine noise. Loopback only: every address is checked.
//!
//! # Layout
//! - [`config`]: [`Config`] (the command line, clap) and its checks ([`Config::validate`]).
//! - [`download`]: [`Download`], the sans-IO download of one device: bitmap of missing blocks,
//!   requests with a per-request client token, retries on a timer, duplicate detection.
//! - [`link`]: [`link::Link`], one device's connection — MQTT (plain or mTLS) or the raw framed
//!   TCP of the baseline.
//! - [`mqtt_link`]: [`mqtt_link::MqttLink`], the devices' MQTT client: rumqttc's packet codec
//!   over a socket bound to the device's source address (`--source-addresses`).
//! - [`ota`]: `--mode ota`: things, a signed OTA update through the control plane, and the
//!   simulated AWS agent of `otastream-device` per device.
//! - [`pacer`]: [`pacer::Pacer`], the fleet-wide request meter of `--rate` (part-load runs).
//! - [`range`]: the HTTP data path (`--protocol http`): SigV4-signed S3 range GETs of `n` blocks.
//! - [`worker`]: one device's task: connect, wait for the start, download, drop replies (`--loss`),
//!   reboot and resume (`--reboot`).
//! - [`fleet`]: runs N workers with a connect ramp, a start barrier and a time limit, in this
//!   process or spread over [`shard`] processes; returns a [`report::Report`].
//! - [`shard`]: fleets past one process's open files — shard processes and what they tell the
//!   parent (arrivals, [`stats::StatsDelta`]s).
//! - [`progress`]: live progress bars and the once-a-second timeline.
//! - [`stats`]: [`stats::FleetStats`], the counters and histograms the workers share.
//! - [`report`]: [`report::Report`] (JSON fields of the issue), the stdout table.
//! - [`chart`]: the SVG chart of throughput and latency over time (plotters).
//! - [`baseline`]: [`baseline::Responder`] (answers GetStream requests like a server would) and
//!   its two drivers: the raw TCP server and the Mosquitto responder client.
//! - [`setup`]: the test image and stream creation through the control plane (SigV4-signed S3
//!   PutObject and iot CreateStream).
//! - [`sys`]: `/proc/<pid>` sampling (RSS, CPU seconds) and the open-files limit.
//!
//! # Key types
//! [`Config`] → [`fleet::run_all`] (set-up, then [`fleet::run`] per target) → one
//! [`report::Report`] per target; [`Download`] is the stream protocol core.
//!
//! # Example
//! `cargo run --release -p otastream-loadgen -- --mqtt 127.0.0.1:1883 --http 127.0.0.1:8080
//! --devices 1000 --image-size 1MiB --baseline tcp --report fleet.json` (see
//! `benches/fleet.sh` for the standard scenarios).

pub mod baseline;
pub mod chart;
pub mod config;
pub mod download;
pub mod fleet;
pub mod link;
pub mod mqtt_link;
pub mod ota;
pub mod pacer;
pub mod progress;
pub mod range;
pub mod report;
pub mod setup;
pub mod shard;
pub mod stats;
pub mod sys;
pub mod worker;

pub use config::Config;
pub use download::Download;
