//! # otastream-device
//!
//! A simulated AWS IoT OTA device: a sans-IO agent that behaves on the wire like the AWS embedded
//! OTA agent (`aws/ota-for-aws-iot-embedded-sdk` v3.4, PROTOCOL.md §1.6–1.9, §2.7–2.8, §3, §4),
//! plus a fast multi-block mode, faults for load tests, and (feature `mqtt`) an async driver
//! over rumqttc. Tests and `loadgen` use it to play thousands of devices.
//!
//! Like the real agent it subscribes to `notify-next`, asks `$next/get` with its mangled client
//! token, reads `execution.jobDocument.afr_ota`, downloads the file over MQTT streams (whole-file
//! bitmap from offset 0, `n` blocks per request, 10 s retry, momentum abort) or HTTP ranges,
//! hashes it, checks the ECDSA P-256 signature against the code-signing certificate, and runs
//! the self-test handshake (`self_test: ready` → reboot → `active` → SUCCEEDED) with the exact
//! status strings of the C agent.
//!
//! # Layout
//! - [`agent`]: [`Agent`], the state machine: `handle_*` inputs, `poll_*` outputs
//!   and the timer.
//! - [`output`]: [`Transmit`] (subscribe, publish, HTTP GET), [`Event`], [`AgentStats`].
//! - `transfer` (private): the data path of [`Agent`] — requests, blocks, HTTP, completion.
//! - [`download`]: [`Download`], the bitmap, the request bytes and the streaming hash of one file.
//! - [`jobdoc`]: parsing Jobs messages into [`OtaJob`]s.
//! - [`status`]: the exact payloads the agent publishes, [`AppVersion`], [`FailReason`].
//! - [`verify`]: [`CodeSigner`], SHA-256 + ECDSA P-256 against a certificate.
//! - [`config`]: [`DeviceConfig`] (AWS agent defaults) and [`Faults`].
//! - `driver` (feature `mqtt`): `run_device` / `run_device_with` over rumqttc, returning a
//!   `DeviceReport`; `http` (private): the Range client for the HTTP data path (plain or TLS,
//!   optionally the AWS C agent's port-less host, see [`HttpTarget`]).

pub mod agent;
pub mod config;
pub mod download;
#[cfg(feature = "mqtt")]
pub mod driver;
#[cfg(feature = "mqtt")]
mod http;
pub mod jobdoc;
pub mod output;
pub mod status;
mod transfer;
pub mod verify;

pub use agent::{Agent, AgentStats, Event, PublishKind, QoS, Transmit};
pub use config::{DeviceConfig, Faults, HttpTarget};
pub use download::Download;
#[cfg(feature = "mqtt")]
pub use driver::{
    DeviceReport, FinalStatus, RunOptions, StreamTarget, run_device, run_device_with,
};
pub use jobdoc::{OtaJob, Protocol};
pub use status::{AppVersion, FailReason};
pub use verify::CodeSigner;
