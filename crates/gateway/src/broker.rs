//! The embedded, unpatched rumqttd router that carries ordinary (non-`$`) topics between sessions.
//!
//! `rumqttd::Broker::new` runs the router on its own OS thread; the gateway opens no rumqttd
//! listener and talks to the router only through local links ([`BrokerLink`]), created lazily the
//! first time a session uses an ordinary topic (a link costs about 80 KB; OTA devices never need
//! one). Stock rumqttd refuses `$` topics, which is why reserved topics never reach it.
//!
//! Gotchas handled here (CRATES.md §1): the segment count is at least 2 (one segment silently drops
//! messages), and a `Notification::Unschedule` must be answered with `wake()` or the link stalls.
//! The router forwards every message at the QoS of the link's subscription, so the QoS a message
//! was published with travels in a user property ([`PUBLISHED_QOS`]) that the link strips again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rumqttc::mqttbytes::QoS;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, Packet, Publish, PublishProperties};
use rumqttd::{Broker, Config, Notification};

/// The user property that carries a message's published QoS 1 through the router (absent: QoS 0).
/// Only the gateway sets it; [`BrokerLink::next`] removes it.
pub const PUBLISHED_QOS: &str = "otastream-published-qos";

/// Router sizing.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfig {
    /// Most local links (sessions using ordinary topics) at once.
    pub max_links: usize,
    /// Bytes per commit-log segment of one filter; larger than the largest burst on one filter.
    pub segment_size: usize,
    /// Segments kept per filter; at least 2.
    pub segment_count: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            max_links: 100_000,
            segment_size: 1 << 20,
            segment_count: 2,
        }
    }
}

/// A failure talking to the router.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The router refused or dropped the link.
    #[error("broker link: {0}")]
    Link(Box<LinkError>),
    /// The blocking link handshake could not run.
    #[error("broker link setup: {0}")]
    Setup(String),
}

impl From<LinkError> for BrokerError {
    fn from(e: LinkError) -> Self {
        Self::Link(Box::new(e))
    }
}

/// Handle to the embedded router; clones share it.
#[derive(Clone)]
pub struct EmbeddedBroker {
    broker: Arc<Broker>,
    next_link: Arc<AtomicU64>,
}

impl EmbeddedBroker {
    /// Starts the router thread.
    pub fn start(cfg: BrokerConfig) -> Self {
        let mut config = Config::default();
        config.router.max_connections = cfg.max_links;
        config.router.max_outgoing_packet_count = 200;
        config.router.max_segment_size = cfg.segment_size.max(1024);
        config.router.max_segment_count = cfg.segment_count.max(2);
        Self {
            broker: Arc::new(Broker::new(config)),
            next_link: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Opens a local link for one session. The handshake with the router is blocking, so it runs
    /// on tokio's blocking pool. The link is named by a counter only: the router mishandles link
    /// names with a `/`, which MQTT client ids may contain.
    pub async fn link(&self) -> Result<BrokerLink, BrokerError> {
        let n = self.next_link.fetch_add(1, Ordering::Relaxed);
        let client_id = format!("otastream-gw-{n}");
        let broker = Arc::clone(&self.broker);
        let (tx, rx) =
            tokio::task::spawn_blocking(move || broker.link(&client_id).map_err(BrokerError::from))
                .await
                .map_err(|e| BrokerError::Setup(e.to_string()))??;
        Ok(BrokerLink { tx, rx })
    }
}

/// One session's local link to the router.
pub struct BrokerLink {
    tx: LinkTx,
    rx: LinkRx,
}

impl BrokerLink {
    /// Publishes a message published with `qos`. It enters the router at QoS 0 (the router
    /// acknowledges on append, so QoS 1 would promise nothing more); `qos` travels in the
    /// [`PUBLISHED_QOS`] property. Blocks only while the router's bounded queue is full.
    pub async fn publish(
        &mut self,
        topic: String,
        payload: Bytes,
        qos: QoS,
    ) -> Result<(), BrokerError> {
        let publish = Publish::new(Bytes::from(topic), payload, false);
        let properties = (qos != QoS::AtMostOnce).then(|| PublishProperties {
            user_properties: vec![(PUBLISHED_QOS.to_owned(), "1".to_owned())],
            ..PublishProperties::default()
        });
        // Boxed: the send future holds the packet, and inline it would sit in every connection
        // task's state.
        Box::pin(self.tx.send(Packet::Publish(publish, properties))).await?;
        Ok(())
    }

    /// Subscribes to an ordinary filter.
    pub fn subscribe(&mut self, filter: &str) -> Result<(), BrokerError> {
        self.tx.subscribe(filter)?;
        Ok(())
    }

    /// Unsubscribes from an ordinary filter.
    pub fn unsubscribe(&mut self, filter: &str) -> Result<(), BrokerError> {
        self.tx.unsubscribe(filter)?;
        Ok(())
    }

    /// Waits for the next message forwarded to this link, as `(topic, payload, published QoS)`.
    /// Answers `Unschedule` with `wake` and skips acknowledgements. Cancel-safe.
    pub async fn next(&mut self) -> Result<(String, Bytes, QoS), BrokerError> {
        loop {
            match self.rx.next().await? {
                Some(Notification::Forward(forward)) => {
                    let topic = String::from_utf8_lossy(&forward.publish.topic).into_owned();
                    let qos1 = forward
                        .properties
                        .is_some_and(|p| p.user_properties.iter().any(|(k, _)| k == PUBLISHED_QOS));
                    let qos = if qos1 {
                        QoS::AtLeastOnce
                    } else {
                        QoS::AtMostOnce
                    };
                    return Ok((topic, forward.publish.payload, qos));
                }
                Some(Notification::Unschedule) => self.rx.wake().await?,
                Some(Notification::Disconnect(..)) => {
                    return Err(BrokerError::Setup("router disconnected the link".into()));
                }
                Some(_) | None => {}
            }
        }
    }

    /// Tells the router this link is gone, so it frees the link's state.
    pub async fn close(mut self) {
        let bye = Packet::Disconnect(
            Disconnect {
                reason_code: DisconnectReasonCode::NormalDisconnection,
            },
            None,
        );
        if let Err(e) = self.tx.send(bye).await {
            tracing::debug!(error = %e, "broker link already gone");
        }
    }
}
