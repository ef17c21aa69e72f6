//! The HTTP and HTTPS listeners of the control plane and S3: one accept loop serving an axum
//! [`Router`] over hyper's HTTP/1.1 connection, on plain TCP or behind rustls, with the limits a
//! public endpoint needs (issue 14):
//!
//! - **header read timeout** ([`HttpLimits::header_timeout`]): a request head (start line and
//!   headers) must arrive in full within this time of the server starting to wait for it. hyper
//!   starts that wait as soon as a connection is accepted and again after every response, so the
//!   same clock is the **idle keep-alive timeout**: a connection that sends nothing is closed.
//! - **body read timeout** ([`HttpLimits::body_idle_timeout`]): a request body that makes no
//!   progress for this long fails (S3's `RequestTimeout` rule: the socket was not read from
//!   within the timeout period) and the connection is closed.
//! - **TLS handshake timeout**: the header timeout also bounds the handshake.
//! - **connection limit** ([`HttpLimits::max_connections`]): beyond it a connection gets one
//!   `503 Service Unavailable` S3-style `SlowDown` answer and is closed; refusals themselves are
//!   bounded, so a flood only costs the file descriptors the kernel already gave it.
//!
//! On shutdown every connection is asked to finish its request in flight
//! (`graceful_shutdown`); whatever is still open [`HTTP_DRAIN`] later is dropped.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long shutdown waits for open HTTP connections to finish their requests before closing
/// them: a client that never completes a request (or a handler that never answers) must not keep
/// the server up.
pub const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// Timeouts and the connection limit of one listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request head (and, on HTTPS, the TLS handshake) must be complete this long after the
    /// server starts waiting for it; also the idle keep-alive timeout.
    pub header_timeout: Duration,
    /// A request body may make no progress for at most this long.
    pub body_idle_timeout: Duration,
    /// Open connections served at once; more are refused with a 503.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    /// 10 s header/idle timeout (S3 closes idle connections after ~20 s, browsers' slowloris
    /// guides suggest 5–20 s), 20 s body progress timeout, 4,096 connections.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(20),
            max_connections: 4096,
        }
    }
}

/// Refusals answered at once while over the connection limit; beyond that a connection is
/// closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// The answer to a connection over the limit (S3's throttling shape, so SDKs back off and retry).
const OVER_LIMIT_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/xml\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 153\r\n\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>\
<Message>Too many open connections; please reduce your request rate.</Message></Error>";

/// Serves `router` on `listener` (TLS when `tls` is given) until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; connections already open go on.
                tracing::warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            if let Ok(refusal) = Arc::clone(&refusals).try_acquire_owned() {
                let tls = tls.clone();
                conns.spawn(async move {
                    refuse(stream, tls, limits.header_timeout).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let (router, tls, stop) = (router.clone(), tls.clone(), stop.clone());
        conns.spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => serve_connection(stream, router, limits, stop).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => serve_connection(stream, router, limits, stop).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(HTTP_DRAIN, drained).await.is_err() {
        tracing::warn!("HTTP connections still open {HTTP_DRAIN:?} after shutdown; closing them");
        conns.shutdown().await;
    }
}

/// Completes when the shutdown flag is raised (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers [`OVER_LIMIT_RESPONSE`] (after the handshake on TLS) and closes.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, timeout: Duration) {
    let answer = async {
        match tls {
            None => write_refusal(stream).await,
            Some(acceptor) => {
                if let Ok(stream) = acceptor.accept(stream).await {
                    write_refusal(stream).await;
                }
            }
        }
    };
    let _ = tokio::time::timeout(timeout, answer).await;
}

async fn write_refusal(mut stream: impl AsyncWrite + Unpin) {
    if stream.write_all(OVER_LIMIT_RESPONSE).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

/// One HTTP/1.1 connection with the header and body timeouts, until it closes or `stop`.
async fn serve_connection<S>(
    stream: S,
    router: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        let req =
            req.map(|body| Body::new(ProgressTimeoutBody::new(body, limits.body_idle_timeout)));
        async move {
            router
                .oneshot(req)
                .await
                .map_err(|never: Infallible| match never {})
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// Why a request body stopped: no bytes for the body timeout, or the connection failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    /// No progress for the body timeout.
    #[error(
        "Your socket connection to the server was not read from or written to within the timeout period ({0:?})"
    )]
    TimedOut(Duration),
    /// hyper's error (connection closed mid-body, malformed chunking).
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
}

/// A request body that fails with [`BodyReadError::TimedOut`] when no frame arrives for
/// `timeout` (the clock restarts at every frame).
struct ProgressTimeoutBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl ProgressTimeoutBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl HttpBody for ProgressTimeoutBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyReadError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(BodyReadError::from)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyReadError::TimedOut(this.timeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The HTTPS listener's TLS identity: the dev CA's server certificate (chain in `cert_pem`), no
/// client certificate asked for, HTTP/1.1 offered over ALPN.
pub fn tls_acceptor(cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("server certificate PEM")?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate in the server certificate PEM"
    );
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("server key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
