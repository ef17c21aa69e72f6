//! The HTTP data path of the driver: `GET <presigned url>` with a `Range` header, over one
//! kept-alive HTTP/1.1 connection (hyper's client connection API on a tokio `TcpStream`).
//! Plain `http://` only: the S3 face under test listens on loopback without TLS.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a range request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not an absolute `http://` URL.
    #[error("unsupported URL {0:?} (plain http:// only)")]
    Url(String),
    /// Connecting or talking HTTP failed.
    #[error("http: {0}")]
    Transport(String),
}

/// One device's HTTP client: reuses its connection while the server keeps it open.
#[derive(Default)]
pub(crate) struct RangeClient {
    conn: Option<(String, SendRequest<Empty<Bytes>>)>,
}

impl RangeClient {
    /// `GET url` with `Range: bytes=start-end`; returns the status and the whole body.
    pub(crate) async fn get(
        &mut self,
        url: &str,
        start: u64,
        end: u64,
    ) -> Result<(u16, Bytes), HttpError> {
        let uri: Uri = url.parse().map_err(|_| HttpError::Url(url.to_owned()))?;
        let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(HttpError::Url(url.to_owned()));
        };
        let authority = authority.as_str().to_owned();
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let mut sender = match self.conn.take() {
            Some((a, s)) if a == authority && !s.is_closed() => s,
            _ => connect(&authority).await?,
        };
        sender.ready().await.map_err(transport)?;
        let request = Request::get(path)
            .header(hyper::header::HOST, &authority)
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
        self.conn = Some((authority, sender));
        Ok((status, body))
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Empty<Bytes>>, HttpError> {
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let stream = TcpStream::connect(&addr).await.map_err(transport)?;
    stream.set_nodelay(true).map_err(transport)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it.
        let _closed = conn.await;
    });
    Ok(sender)
}

fn transport(e: impl std::fmt::Display) -> HttpError {
    HttpError::Transport(e.to_string())
}
