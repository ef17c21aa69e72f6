//! The HTTP data path of the driver: `GET <presigned url>` with a `Range` header, over one
//! kept-alive HTTP/1.1 connection (hyper's client connection API on a tokio `TcpStream`, behind
//! rustls for `https://`).
//!
//! [`HttpTarget`] chooses how a URL becomes a connection. By default the URL's host and port (or
//! the scheme's default) are used. With [`HttpTarget::port`] set the client does what the AWS
//! embedded C agent's HTTP path does: everything between `://` and the first `/` is the host name
//! (so `127.0.0.1:46099` is looked up as a name and fails), the port is the configured one, and
//! the `Host` header is that host name without a port. `https://` is verified against
//! [`HttpTarget::ca_pem`] (SNI = the host name), no client certificate.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::HttpTarget;

/// Why a range request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("unsupported URL {0:?} (http:// or https:// only)")]
    Url(String),
    /// `https://` without a CA to verify the server against, or an unusable CA.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Connecting, the TLS handshake or talking HTTP failed.
    #[error("http: {0}")]
    Transport(String),
}

/// Where one URL is fetched from: scheme, the `host:port` to connect to, the TLS server name and
/// the `Host` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    tls: bool,
    /// What [`TcpStream::connect`] gets.
    connect_to: String,
    /// SNI and certificate name (the host without port).
    server_name: String,
    /// The `Host` header (the URL's authority).
    host_header: String,
    /// Path and query.
    path: String,
}

impl Endpoint {
    fn parse(url: &str, target: &HttpTarget) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) => (true, rest),
            (None, Some(rest)) => (false, rest),
            (None, None) => return Err(bad()),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(bad());
        }
        let (server_name, connect_to) = match target.port {
            // The C agent: the authority is the host name, the port is configured.
            Some(port) => (authority.to_owned(), format!("{authority}:{port}")),
            None => {
                let uri: hyper::Uri = format!("http://{authority}/").parse().map_err(|_| bad())?;
                let host = uri.host().ok_or_else(bad)?;
                let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                (bare.to_owned(), format!("{host}:{port}"))
            }
        };
        Ok(Self {
            tls,
            connect_to,
            server_name,
            host_header: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// Whether a connection opened for `self` can serve `other`.
    fn same_connection(&self, other: &Self) -> bool {
        (self.tls, &self.connect_to, &self.server_name)
            == (other.tls, &other.connect_to, &other.server_name)
    }
}

/// One device's HTTP client: reuses its connection while the server keeps it open.
pub(crate) struct RangeClient {
    target: HttpTarget,
    tls: Option<Result<TlsConnector, String>>,
    conn: Option<(Endpoint, SendRequest<Empty<Bytes>>)>,
}

impl RangeClient {
    pub(crate) fn new(target: HttpTarget) -> Self {
        Self {
            target,
            tls: None,
            conn: None,
        }
    }

    /// `GET url` with `Range: bytes=start-end`; returns the status and the whole body.
    pub(crate) async fn get(
        &mut self,
        url: &str,
        start: u64,
        end: u64,
    ) -> Result<(u16, Bytes), HttpError> {
        let endpoint = Endpoint::parse(url, &self.target)?;
        let mut sender = match self.conn.take() {
            Some((open, s)) if open.same_connection(&endpoint) && !s.is_closed() => s,
            _ => self.connect(&endpoint).await?,
        };
        sender.ready().await.map_err(transport)?;
        let request = Request::get(endpoint.path.as_str())
            .header(hyper::header::HOST, &endpoint.host_header)
            .header(hyper::header::RANGE, format!("bytes={start}-{end}"))
            .body(Empty::new())
            .map_err(transport)?;
        let response = sender.send_request(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        self.conn = Some((endpoint, sender));
        Ok((status, body))
    }

    async fn connect(
        &mut self,
        endpoint: &Endpoint,
    ) -> Result<SendRequest<Empty<Bytes>>, HttpError> {
        let stream = TcpStream::connect(&endpoint.connect_to)
            .await
            .map_err(transport)?;
        stream.set_nodelay(true).map_err(transport)?;
        if !endpoint.tls {
            return handshake(stream).await;
        }
        let connector = self
            .tls
            .get_or_insert_with(|| tls_connector(self.target.ca_pem.as_deref()))
            .clone()
            .map_err(HttpError::Tls)?;
        let name = ServerName::try_from(endpoint.server_name.clone())
            .map_err(|e| HttpError::Url(format!("{}: {e}", endpoint.server_name)))?;
        let stream = connector.connect(name, stream).await.map_err(transport)?;
        handshake(stream).await
    }
}

async fn handshake<S>(stream: S) -> Result<SendRequest<Empty<Bytes>>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it.
        let _closed = conn.await;
    });
    Ok(sender)
}

/// A rustls client (ring provider) trusting exactly the certificates in `ca_pem`.
fn tls_connector(ca_pem: Option<&str>) -> Result<TlsConnector, String> {
    let ca_pem = ca_pem.ok_or("an https:// URL needs a root CA (HttpTarget::ca_pem)")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("root CA PEM: {e}"))?;
        roots.add(cert).map_err(|e| format!("root CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the root CA PEM".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

fn transport(e: impl std::fmt::Display) -> HttpError {
    HttpError::Transport(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, port: Option<u16>) -> Endpoint {
        let target = HttpTarget { ca_pem: None, port };
        Endpoint::parse(url, &target).expect("endpoint")
    }

    #[test]
    fn urls_connect_to_their_own_port_by_default() {
        let e = parse("https://localhost:8443/b/k?X-Amz-Signature=1", None);
        assert_eq!(
            (e.tls, e.connect_to.as_str(), e.server_name.as_str()),
            (true, "localhost:8443", "localhost")
        );
        assert_eq!(
            (e.host_header.as_str(), e.path.as_str()),
            ("localhost:8443", "/b/k?X-Amz-Signature=1")
        );
        assert_eq!(parse("https://h/k", None).connect_to, "h:443");
        assert_eq!(parse("http://h/k", None).connect_to, "h:80");
        assert_eq!(parse("http://[::1]:9/k", None).server_name, "::1");
    }

    #[test]
    fn the_aws_agent_mode_takes_the_authority_as_host_and_the_configured_port() {
        let e = parse("https://localhost/b/k?q", Some(46099));
        assert_eq!(e.connect_to, "localhost:46099");
        assert_eq!(e.host_header, "localhost", "Host without a port");
        // A URL with a port is looked up as the name "127.0.0.1:8443", as the C agent does.
        let e = parse("https://127.0.0.1:8443/b/k", Some(443));
        assert_eq!(e.server_name, "127.0.0.1:8443");
        assert_eq!(e.connect_to, "127.0.0.1:8443:443");
    }

    #[test]
    fn non_http_urls_are_refused() {
        let target = HttpTarget::default();
        for url in ["ftp://h/k", "https:///k", "h/k"] {
            assert!(Endpoint::parse(url, &target).is_err(), "{url}");
        }
    }
}
