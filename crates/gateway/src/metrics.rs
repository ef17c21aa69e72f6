//! Gateway metrics, registered explicitly (no global recorder, so several servers can run in one
//! process) and rendered in the Prometheus/OpenMetrics text format for `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::streams::Outcome;

/// Label set of the request and reject counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// Label set of the connection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// Counters of one gateway. Cheap to share behind an `Arc`; every update is an atomic add.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Family<ListenerLabel, Counter>,
    connections_open: Gauge,
    stream_requests: Counter,
    blocks_served: Counter,
    bytes_served: Counter,
    rejects: Family<CodeLabel, Counter>,
    disconnects_on_error: Counter,
    broker_messages_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("otastream_gateway");
        let m = Self {
            connections: Family::default(),
            connections_open: Gauge::default(),
            stream_requests: Counter::default(),
            blocks_served: Counter::default(),
            bytes_served: Counter::default(),
            rejects: Family::default(),
            disconnects_on_error: Counter::default(),
            broker_messages_dropped: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "MQTT connections accepted (CONNACK sent)",
            m.connections.clone(),
        );
        registry.register(
            "connections_open",
            "MQTT connections open now",
            m.connections_open.clone(),
        );
        registry.register(
            "stream_requests",
            "GetStream and DescribeStream requests handled",
            m.stream_requests.clone(),
        );
        registry.register(
            "blocks_served",
            "Data messages (blocks) sent",
            m.blocks_served.clone(),
        );
        registry.register(
            "bytes_served",
            "Block payload bytes sent",
            m.bytes_served.clone(),
        );
        registry.register(
            "stream_rejects",
            "Streams requests rejected, by AWS error code",
            m.rejects.clone(),
        );
        registry.register(
            "protocol_disconnects",
            "Connections closed for malformed packets, policy violations or keep-alive expiry",
            m.disconnects_on_error.clone(),
        );
        registry.register(
            "broker_messages_dropped",
            "Ordinary-topic QoS 0 messages dropped for a device with too many unwritten bytes",
            m.broker_messages_dropped.clone(),
        );
        Self { registry, ..m }
    }

    /// A connection was accepted on `listener` ("mqtt" or "mqtts").
    pub fn connection_opened(&self, listener: &'static str) {
        self.connections
            .get_or_create(&ListenerLabel { listener })
            .inc();
        self.connections_open.inc();
    }

    /// An accepted connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was closed because the device misbehaved.
    pub fn protocol_disconnect(&self) {
        self.disconnects_on_error.inc();
    }

    /// An ordinary-topic message was not queued for a slow device.
    pub fn broker_message_dropped(&self) {
        self.broker_messages_dropped.inc();
    }

    /// Records what one streams request produced.
    pub fn record(&self, outcome: Outcome) {
        self.stream_requests.inc();
        match outcome {
            Outcome::Served { blocks, bytes } => {
                self.blocks_served.inc_by(blocks.into());
                self.bytes_served.inc_by(bytes);
            }
            Outcome::Rejected(code) => {
                self.rejects
                    .get_or_create(&CodeLabel {
                        code: code.as_str(),
                    })
                    .inc();
            }
            Outcome::Described | Outcome::Unanswerable => {}
        }
    }

    /// Blocks served so far.
    pub fn blocks_served(&self) -> u64 {
        self.blocks_served.get()
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otastream_chunker::RejectCode;

    #[test]
    fn render_shows_counters_by_label() {
        let m = Metrics::new();
        m.connection_opened("mqtt");
        m.record(Outcome::Served {
            blocks: 3,
            bytes: 9000,
        });
        m.record(Outcome::Rejected(RejectCode::VersionMismatch));
        let text = m.render();
        for line in [
            "otastream_gateway_connections_total{listener=\"mqtt\"} 1",
            "otastream_gateway_connections_open 1",
            "otastream_gateway_stream_requests_total 2",
            "otastream_gateway_blocks_served_total 3",
            "otastream_gateway_bytes_served_total 9000",
            "otastream_gateway_stream_rejects_total{code=\"VersionMismatch\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(m.blocks_served(), 3);
    }
}
