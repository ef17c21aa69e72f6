//! Setting up what a run downloads: a deterministic test image, and a stream created through the
//! control plane the way `aws s3 cp` + `aws iot create-stream` would (SigV4 with `aws-sigv4`,
//! HTTP/1.1 with hyper; no aws CLI needed) — or, for a server without a control plane, directly
//! in its data directory through the store API (the store allows several processes).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use otastream_store::{NewStream, ObjectStore as _, PutMeta, Store, StreamFile, StreamRepo as _};

use crate::link::tcp_connect;

/// Time one connect to the control plane may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The bucket loadgen uploads its images to.
pub const BUCKET: &str = "otastream-loadgen";

/// A deterministic image of `size` bytes (every run with the same size has the same bytes).
pub fn test_image(size: u64) -> Bytes {
    (0..size)
        .map(|i| (i.wrapping_mul(31).wrapping_add(i >> 12) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// A SigV4-signing client of the control plane.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ControlPlane {
    /// Loopback address of the HTTP port.
    pub addr: SocketAddr,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region of the signing scope.
    pub region: String,
}

impl ControlPlane {
    /// Uploads `image` to `s3://otastream-loadgen/<stream>.bin` and creates stream `stream`
    /// with it as file 0.
    pub async fn create_stream(&self, stream: &str, image: Bytes) -> anyhow::Result<()> {
        let key = format!("{stream}.bin");
        self.upload(&key, image).await?;
        let doc = serde_json::json!({
            "description": "otastream-loadgen test image",
            "files": [{"fileId": 0, "s3Location": {"bucket": BUCKET, "key": key}}],
            "roleArn": "arn:aws:iam::123456789012:role/otastream-loadgen",
        });
        self.post_json("CreateStream", "iot", &format!("/streams/{stream}"), &doc)
            .await
    }

    /// Creates the loadgen bucket if needed and uploads `image` as `<key>` in it.
    pub async fn upload(&self, key: &str, image: Bytes) -> anyhow::Result<()> {
        let (status, body) = self
            .call("s3", "PUT", &format!("/{BUCKET}"), "", Bytes::new())
            .await?;
        // A second run finds the bucket already there.
        if !status.is_success() && status != http::StatusCode::CONFLICT {
            bail!(
                "CreateBucket {BUCKET}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        let path = format!("/{BUCKET}/{key}");
        let put = self
            .call("s3", "PUT", &path, "application/octet-stream", image)
            .await?;
        expect_ok("PutObject", put)
    }

    /// POSTs a JSON document to a rest-json operation and checks for success.
    pub async fn post_json(
        &self,
        op: &str,
        service: &str,
        path: &str,
        doc: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let body = Bytes::from(serde_json::to_vec(doc)?);
        let answer = self
            .call(service, "POST", path, "application/json", body)
            .await?;
        expect_ok(op, answer)
    }

    /// One signed HTTP/1.1 request on a fresh connection.
    async fn call(
        &self,
        service: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> anyhow::Result<(http::StatusCode, Bytes)> {
        let mut headers = Vec::new();
        if !content_type.is_empty() {
            headers.push((http::header::CONTENT_TYPE, content_type));
        }
        let req = self.request(service, method, path, &headers, body)?;
        self.connect().await?.send(req).await
    }

    /// A SigV4-signed request for `service` (`Host` and the payload hash included).
    pub fn request(
        &self,
        service: &str,
        method: &str,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: Bytes,
    ) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let host = self.addr.to_string();
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://{host}{path}"))
            .header(http::header::HOST, &host);
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        let mut req = req.body(Full::new(body.clone()))?;
        self.sign(&mut req, service, &body)?;
        Ok(req)
    }

    /// Opens a keep-alive HTTP/1.1 connection to the control plane.
    pub async fn connect(&self) -> anyhow::Result<HttpConn> {
        self.connect_from(None).await
    }

    /// Like [`ControlPlane::connect`], from `source` when given (`--source-addresses`).
    pub async fn connect_from(&self, source: Option<IpAddr>) -> anyhow::Result<HttpConn> {
        let stream = tcp_connect(self.addr, source, CONNECT_TIMEOUT)
            .await
            .with_context(|| format!("connecting to the control plane at {}", self.addr))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let task = tokio::spawn(conn);
        Ok(HttpConn { sender, task })
    }

    fn sign<B>(
        &self,
        req: &mut http::Request<B>,
        service: &str,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let identity: Identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "otastream-loadgen",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.to_str()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let signable = SignableRequest::new(
            req.method().as_str(),
            req.uri().to_string(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// Stores `image` as `otastream-loadgen/<stream>.bin` in the data directory `data_dir` (shared
/// with a running server) and creates stream `stream` with it as file 0.
pub async fn create_stream_in_store(
    data_dir: &Path,
    stream: &str,
    image: Bytes,
) -> anyhow::Result<()> {
    let (dir, id) = (data_dir.to_path_buf(), stream.to_owned());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let store = Store::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        if !store.bucket_exists(BUCKET)? {
            store.create_bucket(BUCKET)?;
        }
        let key = format!("{id}.bin");
        store.put_object(BUCKET, &key, &image, PutMeta::default())?;
        store.create_stream(&NewStream {
            id,
            description: Some("otastream-loadgen test image".into()),
            role_arn: None,
            files: vec![StreamFile {
                file_id: 0,
                bucket: BUCKET.into(),
                key,
                version_id: None,
            }],
        })?;
        Ok(())
    })
    .await?
}

/// Success, or an error naming the operation and the server's answer.
fn expect_ok(op: &str, (status, body): (http::StatusCode, Bytes)) -> anyhow::Result<()> {
    if status.is_success() {
        Ok(())
    } else {
        bail!("{op}: {status} {}", String::from_utf8_lossy(&body))
    }
}

/// One HTTP/1.1 connection (requests go one after the other); closed when dropped.
#[derive(Debug)]
pub struct HttpConn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<Result<(), hyper::Error>>,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpConn {
    /// Sends `req` and reads the whole response.
    pub async fn send(
        &mut self,
        req: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<(http::StatusCode, Bytes)> {
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_deterministic_and_not_periodic_per_block() {
        let a = test_image(3 * 4096);
        assert_eq!(a, test_image(3 * 4096));
        assert_eq!(a.len(), 3 * 4096);
        assert_ne!(a[..4096], a[4096..8192]);
    }
}
