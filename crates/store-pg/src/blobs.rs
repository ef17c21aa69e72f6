//! [`Blobs`]: object bytes in the S3 bucket as immutable blobs under random names
//! (`blobs/<uuid>`). Versions, delete markers and multipart bookkeeping live in PostgreSQL, so
//! S3 versioning semantics never depend on the S3 service: a blob is written once, read by name,
//! and deleted once no row references it.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore as _, ObjectStoreExt as _, PutPayload, RetryConfig};

use crate::error::BackendError;

/// Blobs larger than this are uploaded in parts of this size (S3's limit for one PUT is 5 GiB;
/// smaller parts keep a retry cheap).
const UPLOAD_PART: usize = 16 * 1024 * 1024;
/// How long opening a connection to S3 may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one S3 request may take (a large blob over a slow link included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries of a failed request (with backoff), and the time after which none is started: an
/// unreachable service is reported as unavailable within seconds, not minutes.
const RETRIES: usize = 2;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the blobs live and how to reach them.
#[derive(Debug, Clone)]
pub struct S3Location {
    /// Bucket name.
    pub bucket: String,
    /// Endpoint of an S3-compatible service (`http://127.0.0.1:8333`); `None`: AWS S3.
    pub endpoint: Option<String>,
    /// Region the requests are signed for.
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

/// The blob bucket (cheap to clone).
#[derive(Clone, Debug)]
pub(crate) struct Blobs {
    s3: Arc<AmazonS3>,
}

impl Blobs {
    /// A client for `location`'s bucket (no request is made).
    pub(crate) fn new(location: &S3Location) -> Result<Self, BackendError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&location.bucket)
            .with_region(&location.region)
            .with_access_key_id(&location.access_key_id)
            .with_secret_access_key(&location.secret_access_key)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(CONNECT_TIMEOUT)
                    .with_timeout(REQUEST_TIMEOUT),
            )
            .with_retry(RetryConfig {
                max_retries: RETRIES,
                retry_timeout: RETRY_TIMEOUT,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &location.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        Ok(Self {
            s3: Arc::new(builder.build()?),
        })
    }

    /// Fails unless the bucket exists and accepts these credentials (one listing request).
    pub(crate) async fn check(&self) -> Result<(), BackendError> {
        self.s3
            .list_with_delimiter(Some(&Path::from("blobs")))
            .await?;
        Ok(())
    }

    /// Writes `data` as a new blob and returns its name.
    pub(crate) async fn put(&self, data: Bytes) -> Result<String, BackendError> {
        let name = format!("blobs/{}", uuid::Uuid::new_v4().simple());
        let path = Path::from(name.as_str());
        if data.len() <= UPLOAD_PART {
            self.s3.put(&path, PutPayload::from(data)).await?;
        } else {
            let mut upload = self.s3.put_multipart(&path).await?;
            let mut written = 0;
            let result = async {
                while written < data.len() {
                    let end = (written + UPLOAD_PART).min(data.len());
                    upload.put_part(data.slice(written..end).into()).await?;
                    written = end;
                }
                upload.complete().await
            }
            .await;
            if let Err(e) = result {
                let _ = upload.abort().await;
                return Err(e.into());
            }
        }
        Ok(name)
    }

    /// The whole blob.
    pub(crate) async fn get(&self, name: &str) -> Result<Bytes, BackendError> {
        Ok(self.s3.get(&Path::from(name)).await?.bytes().await?)
    }

    /// Bytes `range` of the blob.
    pub(crate) async fn get_range(
        &self,
        name: &str,
        range: Range<u64>,
    ) -> Result<Bytes, BackendError> {
        Ok(self.s3.get_range(&Path::from(name), range).await?)
    }

    /// Deletes a blob (deleting a missing one succeeds, as in S3).
    pub(crate) async fn delete(&self, name: &str) -> Result<(), BackendError> {
        match self.s3.delete(&Path::from(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
