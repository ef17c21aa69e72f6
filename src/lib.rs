//! # otastream
//!
//! A self-hosted, AWS-IoT-compatible firmware OTA service in one process: the HTTP control plane
//! (`aws --endpoint-url`), the MQTT device gateway (plain and mTLS) and the data directory.
//!
//! # Layout
//! - [`server`]: [`server::ServerConfig`], [`server::start`] → [`server::RunningServer`]; binds every
//!   listener, opens the store and the dev PKI, and wires the gateway, the metrics endpoint and the
//!   control plane together. Tests start a real server in-process with it.
//! - [`http_listener`]: the HTTP and HTTPS accept loop (rustls, header/body/idle timeouts, the
//!   connection limit) that serves the control plane and S3.
//! - [`jobs_bridge`]: wiring of the jobs driver (`otastream-jobs-driver`) to the device gateway
//!   (device Jobs API requests in, throttled requests answered at once,
//!   answers and `notify-next` out).
//! - `main.rs`: the thin `otastream` command line (`serve`, `dev-cert`).

pub mod http_listener;
pub mod jobs_bridge;
pub mod server;
