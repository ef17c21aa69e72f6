//! # otastream-gateway
//!
//! The device-facing MQTT endpoint of otastream: plain TCP (development, client id = thing name
//! when it is a valid one, else an application client for ordinary topics only) and TLS with
//! mandatory client certificates (trusted when registered and `ACTIVE`; the thing is the one the
//! certificate is attached to, else its CN). AWS reserved topics
//! `$aws/things/<thing>/...` are answered in-process; ordinary topics go through an embedded,
//! unpatched rumqttd router so devices and applications can still talk among themselves.
//!
//! # Layout
//! - [`session`]: the sans-IO MQTT 3.1.1 [`Session`] state machine (packets and `now` in,
//!   [`Action`]s out): CONNECT, SUBSCRIBE, PUBLISH QoS 0/1, keep-alive, persistent sessions, and
//!   the `notify-next` held back while the device's own `$next/get` is unanswered;
//!   `session/connect_check.rs` checks a CONNECT's bytes before decoding, [`session::Limits`] holds
//!   AWS's per-session limits.
//! - [`policy`]: the per-thing topic policy and reserved-filter matching.
//! - [`authorize`]: AWS IoT policies of a registered certificate ([`authorize::Authorizer`]),
//!   asked by the session on CONNECT, PUBLISH, SUBSCRIBE and delivery.
//! - [`streams`]: the sans-IO streams service, [`handle_stream_request`], over a [`StreamSource`].
//! - [`reserved`]: dispatch of reserved topics to [`ReservedTopicHandler`]s: [`StreamsHandler`]
//!   and [`JobsTopics`] (hands `$aws/things/<T>/jobs/...` to a [`JobsDriver`], which answers
//!   through [`Gateway::reply`] and [`Gateway::notify`]) — **other AWS services plug in here**.
//! - [`wire`]: packet encoding, the hand-written PUBLISH header of the block path, [`Outbound`].
//! - [`broker`]: the embedded rumqttd router and lazily created local links.
//! - [`registry`]: live connections (takeover) and stored persistent sessions.
//! - [`tls`]: rustls server configuration (client certificate required, trust left to [`trust`]).
//! - [`trust`]: [`DeviceTrust`] and [`StoreTrust`], AWS IoT's registered-certificate rule.
//! - [`metrics`]: Prometheus counters.
//! - [`store_source`]: [`StreamSource`] over `otastream_store::Store`.
//! - `conn` and [`listener`]: the tokio driver of one connection (one task: read, session, write;
//!   `conn/write.rs` is its write side) and the accept loops of [`Gateway`].
//!
//! # The block path
//! device PUBLISH `…/streams/S/get/cbor` → [`Session`] (policy) → [`ReservedTopics`] →
//! [`handle_stream_request`]: decode, select blocks, and per block write the MQTT PUBLISH header,
//! topic and CBOR data header into one small buffer, followed by a `Bytes` slice of the mmap'd
//! image → [`Outbound`] → one vectored write from the connection's own task. No broker hop, no
//! payload copy, no hand-off between tasks.

pub mod authorize;
pub mod broker;
mod conn;
pub mod listener;
pub mod metrics;
pub mod policy;
pub mod registry;
pub mod reserved;
pub mod session;
pub mod store_source;
pub mod streams;
pub mod tls;
pub mod trust;
pub mod wire;

pub use conn::ConnectionConfig;
pub use listener::{Gateway, GatewayConfig, WeakGateway};
pub use metrics::Metrics;
pub use reserved::{
    JobsAdmission, JobsDriver, JobsTopics, ReservedTopicHandler, ReservedTopics, StreamsHandler,
};
pub use session::{Action, Identity, Session};
pub use streams::{StreamSource, handle_stream_request};
pub use trust::{DeviceTrust, StoreTrust, TrustDecision};
pub use wire::Outbound;
