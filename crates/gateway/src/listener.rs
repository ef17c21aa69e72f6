//! [`Gateway`]: the accept loops of the plain (`mqtt`) and TLS (`mqtts`) ports, and the handle the
//! rest of the server uses (metrics, notifications to connected things).

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::broker::{BrokerConfig, EmbeddedBroker};
use crate::conn::{self, ConnectionConfig, Shared};
use crate::metrics::Metrics;
use crate::registry::{Control, Registry};
use crate::reserved::ReservedTopics;
use crate::session::{Identity, Limits};
use crate::trust::{DeviceTrust, TrustDecision};

/// Everything configurable about a gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayConfig {
    /// Embedded router sizing.
    pub broker: BrokerConfig,
    /// Per-connection driver tunables.
    pub connection: ConnectionConfig,
    /// Per-session limits (AWS IoT Core's by default).
    pub limits: Limits,
}

/// A running device gateway; clones share it. Serve it on any number of listeners.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

/// A non-owning handle to a [`Gateway`], for callbacks that the gateway itself owns (a jobs
/// driver answering through the gateway would otherwise keep it alive forever).
#[derive(Clone)]
pub struct WeakGateway(Weak<Shared>);

impl WeakGateway {
    /// The gateway, if it still exists.
    pub fn upgrade(&self) -> Option<Gateway> {
        self.0.upgrade().map(|shared| Gateway { shared })
    }
}

impl Gateway {
    /// A handle that does not keep the gateway alive.
    pub fn downgrade(&self) -> WeakGateway {
        WeakGateway(Arc::downgrade(&self.shared))
    }

    /// Creates a gateway answering reserved topics with `reserved` and counting into `metrics`;
    /// starts the embedded router thread.
    pub fn new(cfg: GatewayConfig, reserved: ReservedTopics, metrics: Arc<Metrics>) -> Self {
        let shared = Shared {
            cfg: cfg.connection,
            limits: cfg.limits,
            reserved,
            broker: EmbeddedBroker::start(cfg.broker),
            metrics,
            registry: Registry::default(),
            next_connection: AtomicU64::new(0),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Number of things connected now.
    pub fn connected_things(&self) -> usize {
        self.shared.registry.live_count()
    }

    /// Delivers `payload` on `topic` (one of `thing`'s own reserved topics, e.g. a jobs
    /// `notify-next`) to `thing` if it is connected and subscribed. False if not connected.
    pub fn notify(&self, thing: &str, topic: String, payload: Bytes) -> bool {
        self.shared
            .registry
            .send(thing, Control::Notify { topic, payload })
    }

    /// Delivers `payload` on `topic` (one of `thing`'s own reserved topics, e.g. a jobs
    /// `$next/get/accepted`) to `thing` whether or not it subscribed, as AWS does for answers to a
    /// device's own requests. False if `thing` is not connected (or its control queue is full).
    pub fn reply(&self, thing: &str, topic: String, payload: Bytes) -> bool {
        self.shared
            .registry
            .send(thing, Control::Reply { topic, payload })
    }

    /// Closes the live connection acting for `thing` (its certificate was deactivated or revoked).
    /// False if it is not connected.
    pub fn disconnect(&self, thing: &str) -> bool {
        self.shared.registry.send(thing, Control::TakenOver)
    }

    /// Serves plain MQTT on `listener` (the client id is the thing name) until `shutdown`
    /// completes; then closes every connection it accepted.
    pub async fn serve_tcp(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.accept_loop(listener, shutdown, |shared, stream| async move {
            conn::run(shared, stream, Identity::ClientId, "mqtt").await;
        })
        .await;
    }

    /// Serves MQTT over TLS on `listener` with `tls` (which must require client certificates);
    /// `trust` decides after the handshake whether the certificate may connect and for which thing.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        trust: Arc<dyn DeviceTrust>,
        shutdown: impl Future<Output = ()>,
    ) {
        let acceptor = TlsAcceptor::from(tls);
        self.accept_loop(listener, shutdown, move |shared, stream| {
            let (acceptor, trust) = (acceptor.clone(), Arc::clone(&trust));
            async move {
                let timeout = shared.cfg.connect_timeout;
                let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::info!(error = %e, "TLS handshake failed"),
                    Err(_) => return tracing::info!("TLS handshake timed out"),
                };
                let Some(der) = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec())
                else {
                    return tracing::info!("no client certificate");
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let decision = tokio::task::spawn_blocking(move || trust.check(&der, now)).await;
                match decision {
                    Ok(TrustDecision::Accept {
                        thing,
                        authorization,
                    }) => {
                        let identity = match authorization {
                            Some(authorization) => Identity::Registered {
                                thing,
                                authorization,
                            },
                            None => Identity::Certificate(thing),
                        };
                        conn::run(shared, stream, identity, "mqtts").await;
                    }
                    Ok(TrustDecision::Refuse(why)) => {
                        tracing::info!(%why, "client certificate refused");
                    }
                    Err(e) => tracing::warn!(error = %e, "certificate check failed"),
                }
            }
        })
        .await;
    }

    async fn accept_loop<F, Fut>(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        handle: F,
    ) where
        F: Fn(Arc<Shared>, TcpStream) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!(error = %e, "set_nodelay");
                        }
                        connections.spawn(handle(Arc::clone(&self.shared), stream));
                    }
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }
}
