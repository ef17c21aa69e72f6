//! The whole server in one process: [`start`] opens the data directory, loads (or creates) the dev
//! PKI, binds the HTTP, HTTPS, MQTT and MQTTS listeners and runs them until [`RunningServer::shutdown`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::any;
use otastream_api::jobs_hub::JobsHandle;
use otastream_api::{ApiConfig, ApiState};
use tower::ServiceExt as _;

use crate::http_listener::{self, HttpLimits};
use crate::jobs_bridge;
use otastream_gateway::{
    Gateway, GatewayConfig, JobsTopics, Metrics, ReservedTopics, StreamsHandler,
};
use otastream_pki::DevPki;
use otastream_store::{Backend, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Where the server listens and keeps its data.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory (metadata, objects, PKI); created if missing.
    pub data_dir: PathBuf,
    /// HTTP control plane and `/metrics`.
    pub http: SocketAddr,
    /// The same control plane, S3 and `/metrics` over TLS (the dev CA's server certificate).
    pub https: SocketAddr,
    /// Timeouts and the connection limit of the HTTP and HTTPS listeners (each its own limit).
    pub http_limits: HttpLimits,
    /// Plain MQTT (development: the client id is the thing name).
    pub mqtt: SocketAddr,
    /// MQTT over TLS with client certificates (the certificate CN is the thing name).
    pub mqtts: SocketAddr,
    /// Gateway tunables.
    pub gateway: GatewayConfig,
    /// Control-plane settings (credentials, region, account id). An empty `public_base_url`
    /// (`--public-url`) is replaced by `http://<bound HTTP address>` once the listener is bound,
    /// an empty `public_host` (`--public-host`, what `DescribeEndpoint` answers) by the bound
    /// MQTTS address's IP.
    pub api: ApiConfig,
    /// Where metadata and object bytes live.
    pub storage: Storage,
}

/// The storage backend of a server.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// SQLite and local files in the data directory (needs nothing installed).
    #[default]
    Embedded,
    /// PostgreSQL for metadata and an S3 bucket for object bytes (`otastream_store_pg`).
    Postgres(otastream_store_pg::PgConfig),
}

impl ServerConfig {
    /// The documented defaults: loopback ports 8080 (HTTP), 8443 (HTTPS), 1883 and 8883.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https: SocketAddr::from(([127, 0, 0, 1], 8443)),
            http_limits: HttpLimits::default(),
            mqtt: SocketAddr::from(([127, 0, 0, 1], 1883)),
            mqtts: SocketAddr::from(([127, 0, 0, 1], 8883)),
            gateway: GatewayConfig::default(),
            api: ApiConfig {
                public_base_url: String::new(),
                public_host: String::new(),
                ..ApiConfig::default()
            },
            storage: Storage::Embedded,
        }
    }

    /// Every listener on 127.0.0.1 port 0 (the OS picks free ports), for tests.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            http: any,
            https: any,
            mqtt: any,
            mqtts: any,
            ..Self::new(data_dir)
        }
    }
}

/// A started server. Dropping it without [`RunningServer::shutdown`] aborts its tasks.
pub struct RunningServer {
    /// Bound HTTP address.
    pub http_addr: SocketAddr,
    /// Bound HTTPS address.
    pub https_addr: SocketAddr,
    /// Bound plain MQTT address.
    pub mqtt_addr: SocketAddr,
    /// Bound MQTT-over-TLS address.
    pub mqtts_addr: SocketAddr,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The storage backend the server uses (tests create streams through it).
    pub store: Arc<dyn Backend>,
    /// The device gateway (metrics, notifications to connected things).
    pub gateway: Gateway,
    /// The dev PKI: CA and server certificate, device certificates on demand.
    pub pki: Arc<DevPki>,
    /// The jobs engine shared by the gateway (device Jobs API) and the control plane.
    pub jobs: JobsHandle,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// The line printed when every listener is bound.
    pub fn ready_line(&self) -> String {
        format!(
            "otastream ready http={} https={} mqtt={} mqtts={}",
            self.http_addr, self.https_addr, self.mqtt_addr, self.mqtts_addr
        )
    }

    /// Stops accepting, closes every connection and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        // Receivers live in the tasks; if they are all gone there is nothing left to stop.
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Opens the store, binds every listener and starts serving.
pub async fn start(cfg: ServerConfig) -> anyhow::Result<RunningServer> {
    let (data_dir, storage) = (cfg.data_dir.clone(), cfg.storage.clone());
    // The names devices are told to reach: `--public-host`, else the host of `--public-url`.
    let public_url_host = public_url_host(&cfg.api.public_base_url);
    let public_host = match cfg.api.public_host.as_str() {
        "" => public_url_host.clone().unwrap_or_default(),
        host => host.to_owned(),
    };
    let server_names: Vec<String> = [Some(public_host.clone()), public_url_host]
        .into_iter()
        .flatten()
        .filter(|h| !h.is_empty())
        .collect();
    let (store, pki) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let store = open_backend(&data_dir, &storage)?;
        let pki_dir = data_dir.join(otastream_store::PKI_DIR);
        let mut pki = DevPki::load_or_create(&pki_dir).context("loading the dev PKI")?;
        let names: Vec<&str> = server_names.iter().map(String::as_str).collect();
        pki.ensure_server_names(&pki_dir, &names)
            .context("adding the public host to the dev server certificate")?;
        Ok((store, pki))
    })
    .await??;
    let tls = otastream_gateway::tls::server_config(&pki.server_cert_pem, &pki.server_key_pem)
        .context("TLS configuration")?;
    let https_tls = http_listener::tls_acceptor(&pki.server_cert_pem, &pki.server_key_pem)
        .context("HTTPS TLS configuration")?;

    let http = TcpListener::bind(cfg.http)
        .await
        .with_context(|| format!("binding HTTP {}", cfg.http))?;
    let https = TcpListener::bind(cfg.https)
        .await
        .with_context(|| format!("binding HTTPS {}", cfg.https))?;
    let mqtt = TcpListener::bind(cfg.mqtt)
        .await
        .with_context(|| format!("binding MQTT {}", cfg.mqtt))?;
    let mqtts = TcpListener::bind(cfg.mqtts)
        .await
        .with_context(|| format!("binding MQTTS {}", cfg.mqtts))?;

    let metrics = Arc::new(Metrics::new());
    let (jobs, jobs_publisher, jobs_requests) = jobs_bridge::wire(store.clone())?;
    let streams = StreamsHandler::new(
        Arc::new(BackendStreams(store.clone())),
        Arc::clone(&metrics),
    );
    let reserved = ReservedTopics::new()
        .with_handler(Arc::new(streams))
        .with_handler(Arc::new(JobsTopics::new(jobs_requests)));
    let gateway = Gateway::new(cfg.gateway, reserved, Arc::clone(&metrics));
    // Set exactly once, right after the gateway exists; nothing has been published before.
    let _ = jobs_publisher.0.set(gateway.downgrade());

    let (http_addr, https_addr) = (http.local_addr()?, https.local_addr()?);
    let (mqtt_addr, mqtts_addr) = (mqtt.local_addr()?, mqtts.local_addr()?);
    let (shutdown, watch_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut api = cfg.api.clone();
    if api.public_base_url.is_empty() {
        api.public_base_url = format!("http://{http_addr}");
    }
    api.public_host = public_host;
    if api.public_host.is_empty() {
        api.public_host = mqtts_addr.ip().to_string();
    }
    let router = metrics_router(
        metrics,
        control_plane(&store, &cfg.data_dir, api, &jobs, gateway.downgrade()).await?,
    );
    let (timers, stop) = (jobs.clone().run_timers(), stopped(watch_rx.clone()));
    tasks.spawn(async move {
        tokio::select! {
            () = timers => {}
            () = stop => {}
        }
    });
    let limits = cfg.http_limits;
    let serve_http = http_listener::serve(http, None, router.clone(), limits, watch_rx.clone());
    tasks.spawn(serve_http);
    let serve_https =
        http_listener::serve(https, Some(https_tls), router, limits, watch_rx.clone());
    tasks.spawn(serve_https);
    let (gw, stop) = (gateway.clone(), stopped(watch_rx.clone()));
    tasks.spawn(async move { gw.serve_tcp(mqtt, stop).await });
    let (gw, stop) = (gateway.clone(), stopped(watch_rx));
    let trust = Arc::new(
        otastream_gateway::StoreTrust::new(
            store.clone(),
            &pki.ca_cert_pem,
            &cfg.api.region,
            &cfg.api.account_id,
        )
        .context("the dev CA certificate")?,
    );
    tasks.spawn(async move { gw.serve_tls(mqtts, tls, trust, stop).await });

    Ok(RunningServer {
        http_addr,
        https_addr,
        mqtt_addr,
        mqtts_addr,
        data_dir: cfg.data_dir,
        store,
        gateway,
        pki: Arc::new(pki),
        jobs,
        shutdown,
        tasks,
    })
}

/// Completes when the shutdown flag is raised (or its sender is dropped, which also means "stop").
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The HTTP port: `GET /metrics` (unsigned, no query) answers the gateway's counters in the
/// Prometheus text format; every other request, including a signed one on `/metrics` (S3 path
/// style for a bucket named `metrics`), goes to the control plane.
fn metrics_router(metrics: Arc<Metrics>, control_plane: Router) -> Router {
    let api = control_plane.clone();
    control_plane.route(
        "/metrics",
        any(move |req: Request| {
            let (metrics, api) = (Arc::clone(&metrics), api.clone());
            async move {
                let unsigned_scrape = req.method() == Method::GET
                    && req.uri().query().is_none()
                    && !req.headers().contains_key(header::AUTHORIZATION);
                if !unsigned_scrape {
                    return api.oneshot(req).await.into_response();
                }
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// The control plane (crates/api: iot, signer, acm, s3, iot-jobs-data) on the HTTP port, sharing
/// the device gateway's jobs engine (whose timers [`start`] already runs). Building its state
/// touches the store (the dev code-signing certificate, interrupted OTA updates), so it runs off
/// the async runtime.
async fn control_plane(
    store: &Arc<dyn Backend>,
    data_dir: &Path,
    api: ApiConfig,
    jobs: &JobsHandle,
    gateway: otastream_gateway::WeakGateway,
) -> anyhow::Result<Router> {
    let (store, jobs) = (store.clone(), jobs.clone());
    let pki_dir = data_dir.join(otastream_store::PKI_DIR);
    let state =
        tokio::task::spawn_blocking(move || ApiState::with_jobs(store, &pki_dir, api, jobs))
            .await?
            .context("starting the control plane")?;
    state.set_disconnect_hook(Box::new(move |thing| {
        if let Some(gateway) = gateway.upgrade() {
            gateway.disconnect(thing);
        }
    }));
    Ok(otastream_api::router(state))
}

/// The host of a `--public-url` (`https://HOST[:PORT]`), if one was given.
fn public_url_host(public_base_url: &str) -> Option<String> {
    let uri: axum::http::Uri = public_base_url.parse().ok()?;
    uri.host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
}

/// The configured backend, opened (and, for PostgreSQL, migrated). A PostgreSQL or object-store
/// failure is one line naming what was unreachable.
fn open_backend(data_dir: &Path, storage: &Storage) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match storage {
        Storage::Embedded => Arc::new(
            Store::open(data_dir)
                .with_context(|| format!("opening data directory {}", data_dir.display()))?,
        ),
        Storage::Postgres(pg) => Arc::new(
            otastream_store_pg::PgBackend::connect(pg)
                .map_err(|e| anyhow::Error::msg(e.to_string()))?,
        ),
    })
}

/// The gateway's [`StreamSource`](otastream_gateway::StreamSource) over the shared backend.
struct BackendStreams(Arc<dyn Backend>);

impl otastream_gateway::StreamSource for BackendStreams {
    fn file(
        &self,
        stream_id: &str,
        file_id: u8,
    ) -> Result<otastream_gateway::streams::FileLookup, otastream_gateway::streams::SourceError>
    {
        self.0.file(stream_id, file_id)
    }

    fn describe(
        &self,
        stream_id: &str,
    ) -> Result<
        Option<otastream_gateway::streams::StreamDescription>,
        otastream_gateway::streams::SourceError,
    > {
        self.0.describe(stream_id)
    }
}
