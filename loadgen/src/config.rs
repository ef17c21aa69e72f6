//! The command line: every knob of a run, parsed by clap and checked once by
//! [`Config::validate`] (loopback only, sizes inside the AWS limits, a target to talk to).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::{Parser, ValueEnum};
use otastream_chunker::{BlockSize, Format};

/// Access key id of a development server (the control plane's default credentials).
pub const DEV_ACCESS_KEY_ID: &str = "AKIAOTASTREAMDEV0001";
/// Secret of a development server (the control plane's default credentials).
pub const DEV_SECRET_ACCESS_KEY: &str = "otastream-dev-secret-do-not-use-in-production";

/// What every simulated device does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Download one stream file block by block, like the AWS OTA agent's data phase.
    Stream,
    /// The full OTA job per device (needs --http): notify, download, signature check, self-test
    /// reboot, SUCCEEDED; devices are the simulated AWS agent of `otastream-device`.
    Ota,
    /// Connect, subscribe to the data topic, then stay idle until `--hold` ends (memory per
    /// connected device).
    Idle,
}

/// How the devices receive the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MQTT streams (`get` requests, one `data` message per block).
    Mqtt,
    /// HTTP range GETs of the image object through the control plane's S3 (needs --http).
    Http,
}

/// A reference the fleet is also run against, after the main target, with the same messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// A raw framed-TCP responder inside loadgen: the same request and reply sizes, no MQTT.
    Tcp,
    /// The same MQTT messages relayed through a broker (`--broker`) to a responder client.
    Mosquitto,
}

/// `otastream-loadgen`: a simulated fleet downloading a firmware stream, with a report.
#[derive(Clone, Debug, Parser, serde::Serialize, serde::Deserialize)]
#[command(version, about)]
pub struct Config {
    /// The server's plain MQTT address (the client id is the thing name).
    #[arg(long)]
    pub mqtt: Option<SocketAddr>,
    /// The server's MQTT-over-TLS address (needs --ca, --cert and --key).
    #[arg(long, conflicts_with = "mqtt")]
    pub mqtts: Option<SocketAddr>,
    /// CA certificate (PEM) the TLS server certificate must chain to.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Device certificate (PEM); `{thing}` in the path is replaced by each device's thing name.
    #[arg(long)]
    pub cert: Option<String>,
    /// Device key (PEM); `{thing}` in the path is replaced by each device's thing name.
    #[arg(long)]
    pub key: Option<String>,
    /// Control-plane address: the test image is uploaded and the stream created through it.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Access key id for --http.
    #[arg(long, default_value = DEV_ACCESS_KEY_ID)]
    pub access_key_id: String,
    /// Secret access key for --http.
    #[arg(long, default_value = DEV_SECRET_ACCESS_KEY)]
    pub secret_access_key: String,
    /// Region in the SigV4 scope for --http.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Without a control plane: create the stream directly in this server data directory.
    #[arg(long, conflicts_with = "http")]
    pub data_dir: Option<PathBuf>,
    /// Use this existing stream (file 0, of --image-size bytes) instead of creating one.
    #[arg(long)]
    pub stream: Option<String>,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// New connections per second during the ramp.
    #[arg(long, default_value_t = 500)]
    pub connect_rate: u32,
    /// Seconds one connect (TCP + CONNACK) may take.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    /// What the devices do.
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    pub mode: Mode,
    /// Data path of the main target (baselines always use their own transport).
    #[arg(long, value_enum, default_value_t = Protocol::Mqtt)]
    pub protocol: Protocol,
    /// Image size in bytes (suffixes KiB, MiB accepted).
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub image_size: u64,
    /// Block size `l` in bytes (256–131072).
    #[arg(long, default_value_t = 4096)]
    pub block_size: u32,
    /// Blocks per request `n` (the AWS agent asks for 1).
    #[arg(long, default_value_t = 1)]
    pub blocks_per_request: u32,
    /// Use the CBOR topics (the default).
    #[arg(long, conflicts_with = "json")]
    pub cbor: bool,
    /// Use the JSON topics.
    #[arg(long)]
    pub json: bool,
    /// Percentage of replies each device drops (seeded); the device re-asks after --retry-ms.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Percentage of devices that reboot once mid-download and resume from their bitmap.
    #[arg(long, default_value_t = 0.0)]
    pub reboot: f64,
    /// Seed of the loss and reboot choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Milliseconds without an expected block before a device asks again (the AWS agent: 10 s).
    #[arg(long, default_value_t = 1000)]
    pub retry_ms: u64,
    /// Minimum milliseconds between two requests of one device (0: ask again at once). For part
    /// load prefer --rate: per-device timers fire on whole milliseconds, so a paced fleet asks
    /// in bursts.
    #[arg(long, default_value_t = 0)]
    pub pace_ms: u64,
    /// Fleet-wide requests per second, spread evenly in time (0: as fast as devices ask). Use
    /// it to run at part load: unlike --pace-ms it does not make devices ask in bursts.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Idle mode: seconds to stay connected after the last device connected.
    #[arg(long, default_value_t = 5)]
    pub hold: u64,
    /// Hard limit on the whole run in seconds; unfinished devices count as failed.
    #[arg(long, default_value_t = 300)]
    pub duration_limit: u64,
    /// Write the JSON report here (and the SVG chart next to it, `.svg`).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Sample this local process (the server) from /proc for RSS and CPU.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also run the fleet against these baselines (repeatable).
    #[arg(long, value_enum)]
    pub baseline: Vec<Baseline>,
    /// The broker of `--baseline mosquitto`.
    #[arg(long)]
    pub broker: Option<SocketAddr>,
    /// The broker's process, sampled like --server-pid during the Mosquitto baseline.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Thing names are `<prefix>-<index>`.
    #[arg(long, default_value = "lg")]
    pub thing_prefix: String,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Devices connect from this many loopback source addresses, 127.0.0.1 up to 127.0.0.N,
    /// in turn (each address has its own ephemeral ports towards the server's port). Stream
    /// mode over MQTT, HTTP and the baselines; the OTA agents connect from 127.0.0.1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_addresses: u8,
    /// Loadgen processes the devices are spread over, at most 64 (0: as many as the open-files
    /// limit needs, one socket per device and 1,024 files kept for everything else).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=64))]
    pub processes: u8,
    /// Internal: run as a shard process of another loadgen (job on stdin, events on stdout).
    #[arg(long, hide = true)]
    pub shard_worker: bool,
    /// The executable shard processes run (default: this one).
    #[arg(long, hide = true)]
    pub shard_exe: Option<PathBuf>,
}

impl Config {
    /// The wire format of the stream topics.
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Cbor
        }
    }

    /// The checked block size.
    pub fn block_size(&self) -> anyhow::Result<BlockSize> {
        BlockSize::new(self.block_size).map_err(|e| anyhow::anyhow!("--block-size: {e}"))
    }

    /// `--retry-ms` as a duration.
    pub fn retry_after(&self) -> Duration {
        Duration::from_millis(self.retry_ms.max(1))
    }

    /// Checks everything that does not need the network; loopback addresses only.
    pub fn validate(&self) -> anyhow::Result<()> {
        let addrs = [
            ("--mqtt", self.mqtt),
            ("--mqtts", self.mqtts),
            ("--http", self.http),
            ("--broker", self.broker),
        ];
        for (flag, addr) in addrs {
            if let Some(a) = addr {
                ensure!(
                    a.ip().is_loopback(),
                    "{flag} {a}: loadgen talks to loopback addresses only"
                );
            }
        }
        ensure!(self.devices > 0, "--devices must be at least 1");
        ensure!(self.connect_rate > 0, "--connect-rate must be at least 1");
        ensure!(self.image_size > 0, "--image-size must be at least 1 byte");
        let block = self.block_size()?;
        let blocks = self.image_size.div_ceil(u64::from(block.get()));
        let max_blocks = 8 * otastream_chunker::limits::MAX_BITMAP_BYTES as u64;
        ensure!(
            blocks <= max_blocks,
            "--image-size {} has {blocks} blocks; a whole-file bitmap covers at most {max_blocks}",
            self.image_size,
        );
        ensure!(
            (1..=block.blocks_per_request_cap()).contains(&self.blocks_per_request),
            "--blocks-per-request must be 1..={} for {}-byte blocks (128 KiB per request)",
            block.blocks_per_request_cap(),
            block.get()
        );
        for (flag, pct) in [("--loss", self.loss), ("--reboot", self.reboot)] {
            ensure!((0.0..=100.0).contains(&pct), "{flag} is a percentage 0–100");
        }
        if self.mqtts.is_some() {
            ensure!(
                self.ca.is_some() && self.cert.is_some() && self.key.is_some(),
                "--mqtts needs --ca, --cert and --key"
            );
        }
        let has_target = self.mqtt.is_some() || self.mqtts.is_some();
        if !has_target && self.baseline.is_empty() {
            bail!("nothing to measure: give --mqtt/--mqtts and/or --baseline");
        }
        let can_create = self.http.is_some() || self.data_dir.is_some();
        if has_target && self.mode == Mode::Stream && self.stream.is_none() && !can_create {
            bail!(
                "--mode stream needs --stream ID (existing), or --http or --data-dir to create one"
            );
        }
        if self.mode == Mode::Ota {
            ensure!(
                self.http.is_some() && (self.mqtt.is_some() || self.mqtts.is_some()),
                "--mode ota needs --mqtt or --mqtts, and --http (things and the OTA update are \
                 created there)"
            );
            ensure!(
                self.source_addresses == 1,
                "--source-addresses does not apply to --mode ota: the simulated agents connect \
                 through rumqttc, which cannot bind a source address"
            );
        }
        if self.protocol == Protocol::Http {
            ensure!(
                self.http.is_some() && self.stream.is_none(),
                "--protocol http needs --http (the image is uploaded there) and no --stream"
            );
        }
        if self.baseline.contains(&Baseline::Mosquitto) {
            self.broker
                .context("--baseline mosquitto needs --broker ADDR")?;
        }
        Ok(())
    }
}

/// Parses `4096`, `64KiB`, `1MiB` (also `K`, `M`, `KB`, `MB` as binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("not a size: {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size too large: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1 parsec").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn refuses_non_loopback_addresses() {
        let c = parse(&["--mqtt", "10.0.0.1:1883", "--stream", "s"]);
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        parse(&["--mqtt", "127.0.0.2:1883", "--stream", "s"])
            .validate()
            .unwrap();
    }

    #[test]
    fn refuses_more_blocks_per_request_than_128_kib() {
        for (n, ok) in [("32", true), ("33", false), ("0", false)] {
            let c = parse(&[
                "--mqtt",
                "127.0.0.1:1",
                "--stream",
                "s",
                "--blocks-per-request",
                n,
            ]);
            assert_eq!(c.validate().is_ok(), ok, "n = {n}");
        }
    }

    #[test]
    fn needs_a_target_and_a_stream_source() {
        assert!(parse(&[]).validate().is_err());
        assert!(parse(&["--mqtt", "127.0.0.1:1"]).validate().is_err());
        parse(&["--baseline", "tcp"]).validate().unwrap();
        assert!(parse(&["--baseline", "mosquitto"]).validate().is_err());
    }

    #[test]
    fn ota_runs_over_either_mqtt_port_from_one_source_address() {
        let ota = ["--mode", "ota", "--http", "127.0.0.1:2"];
        let tls = [
            "--ca",
            "ca.pem",
            "--cert",
            "{thing}.pem",
            "--key",
            "{thing}.key",
        ];
        for port in [
            &["--mqtt", "127.0.0.1:1"][..],
            &[&["--mqtts", "127.0.0.1:1"], &tls[..]].concat(),
        ] {
            let args = [&ota[..], port].concat();
            parse(&args).validate().unwrap();
            let spread = [&args[..], &["--source-addresses", "2"]].concat();
            let err = parse(&spread).validate().unwrap_err().to_string();
            assert!(err.contains("--source-addresses"), "{err}");
        }
        assert!(parse(&ota).validate().is_err(), "no MQTT port");
        assert!(Config::try_parse_from(["loadgen", "--source-addresses", "255"]).is_err());
        assert!(Config::try_parse_from(["loadgen", "--processes", "65"]).is_err());
    }
}
