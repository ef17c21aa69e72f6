//! S3 over s3s: `impl s3s::S3` backed by the versioned object store.
//!
//! s3s parses requests, checks bucket names, verifies SigV4 (header and presigned, V2 and V4,
//! expiry included) through `SimpleAuth`, and writes S3 XML for both answers and errors. This
//! module only translates between s3s DTOs and [`otastream_store::Store`] calls, and maps store
//! errors to S3 error codes in [`s3_error`] (the store leads its messages with the AWS code).

use std::time::{Duration, UNIX_EPOCH};

use otastream_store::{ObjectInfo, PutMeta, Store, StoreError, Versioning};
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::ApiState;

/// Largest multipart part accepted into memory (single PUTs stream to disk).
const MAX_OBJECT_BODY: usize = 512 << 20;

/// Builds the s3s service over the state's store, authenticating with the configured key.
pub(crate) fn service(state: &ApiState) -> S3Service {
    let mut builder = S3ServiceBuilder::new(StoreS3 {
        store: state.store.clone(),
    });
    builder.set_auth(SimpleAuth::from_single(
        state.config.access_key_id.clone(),
        state.config.secret_access_key.clone(),
    ));
    builder.build()
}

/// The s3s backend.
struct StoreS3 {
    store: Store,
}

/// Maps a store error to S3: the code the store put first in its message, else a per-kind default.
pub(crate) fn s3_error(e: StoreError) -> S3Error {
    let (inner, default, status) = match &e {
        StoreError::NotFound(m) => (m, S3ErrorCode::NoSuchKey, http::StatusCode::NOT_FOUND),
        StoreError::AlreadyExists(m) => (
            m,
            S3ErrorCode::BucketAlreadyOwnedByYou,
            http::StatusCode::CONFLICT,
        ),
        StoreError::Conflict(m) => (m, S3ErrorCode::OperationAborted, http::StatusCode::CONFLICT),
        StoreError::Invalid(m) => (
            m,
            S3ErrorCode::InvalidArgument,
            http::StatusCode::BAD_REQUEST,
        ),
        _ => {
            tracing::error!(error = %e, "store failure");
            return S3Error::with_message(S3ErrorCode::InternalError, e.to_string());
        }
    };
    let code = e
        .code()
        .and_then(|c| S3ErrorCode::from_bytes(c.as_bytes()))
        .unwrap_or(default);
    let message = inner
        .split_once(": ")
        .filter(|(c, _)| Some(*c) == e.code())
        .map_or(inner.as_str(), |(_, m)| m);
    let mut err = S3Error::with_message(code.clone(), message.to_owned());
    if code.status_code().is_none() {
        err.set_status_code(status);
    }
    err
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> S3Result<T> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(result) => result.map_err(s3_error),
        Err(e) => Err(S3Error::internal_error(e)),
    }
}

impl StoreS3 {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> S3Result<T> {
        run(&self.store, f).await
    }
}

pub(crate) fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

pub(crate) fn etag(quoted: &str) -> ETag {
    ETag::Strong(quoted.trim_matches('"').to_owned())
}

/// `x-amz-version-id` is only sent for objects written while versioning was on.
pub(crate) fn version_header(info: &ObjectInfo) -> Option<String> {
    (info.version_id != "null").then(|| info.version_id.clone())
}

pub(crate) fn put_meta(content_type: Option<ContentType>, metadata: Option<Metadata>) -> PutMeta {
    let mut user_metadata: Vec<(String, String)> =
        metadata.unwrap_or_default().into_iter().collect();
    user_metadata.sort();
    PutMeta {
        content_type,
        user_metadata,
    }
}

fn metadata(info: &ObjectInfo) -> Option<Metadata> {
    (!info.user_metadata.is_empty()).then(|| info.user_metadata.iter().cloned().collect())
}

/// Streams a PUT body into a fresh file under the store's `tmp/` (never the whole body in
/// memory); the caller hands it to `put_object_from_file`. The file is removed on failure.
async fn spool_body(store: &Store, body: Option<StreamingBlob>) -> S3Result<std::path::PathBuf> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let path = store.tmp_path();
    let written: Result<(), S3Error> = async {
        let mut file = tokio::fs::File::create_new(&path)
            .await
            .map_err(S3Error::internal_error)?;
        if let Some(mut blob) = body {
            while let Some(chunk) = blob.next().await {
                let chunk = chunk.map_err(|e| {
                    S3Error::with_message(
                        S3ErrorCode::IncompleteBody,
                        format!("cannot read the request body: {e}"),
                    )
                })?;
                file.write_all(&chunk)
                    .await
                    .map_err(S3Error::internal_error)?;
            }
        }
        file.flush().await.map_err(S3Error::internal_error)
    }
    .await;
    match written {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

pub(crate) async fn read_body(body: Option<StreamingBlob>) -> S3Result<bytes::Bytes> {
    let Some(blob) = body else {
        return Ok(bytes::Bytes::new());
    };
    let mut body = s3s::Body::from(blob);
    body.store_all_limited(MAX_OBJECT_BODY).await.map_err(|e| {
        S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            format!("cannot read the request body: {e}"),
        )
    })
}

pub(crate) fn owner() -> Owner {
    Owner {
        display_name: Some("otastream".into()),
        id: Some("otastream".into()),
    }
}

#[async_trait::async_trait]
impl S3 for StoreS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        let location = format!("/{bucket}");
        self.run(move |s| s.create_bucket(&bucket)).await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.run(move |s| s.delete_bucket(&bucket)).await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let bucket = req.input.bucket;
        if !self.run(move |s| s.bucket_exists(&bucket)).await? {
            return Err(S3Error::new(S3ErrorCode::NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self.run(|s| s.list_buckets()).await?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let versioning = match input
            .versioning_configuration
            .status
            .as_ref()
            .map(BucketVersioningStatus::as_str)
        {
            Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
            Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
            other => {
                let msg = format!("Versioning status must be Enabled or Suspended, not {other:?}");
                return Err(S3Error::with_message(S3ErrorCode::MalformedXML, msg));
            }
        };
        let bucket = input.bucket;
        self.run(move |s| s.set_bucket_versioning(&bucket, versioning))
            .await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = req.input.bucket;
        let versioning = self.run(move |s| s.bucket_versioning(&bucket)).await?;
        let status = match versioning {
            Versioning::Enabled => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::ENABLED,
            )),
            Versioning::Suspended => Some(BucketVersioningStatus::from_static(
                BucketVersioningStatus::SUSPENDED,
            )),
            Versioning::Unversioned => None,
        };
        Ok(S3Response::new(GetBucketVersioningOutput {
            status,
            mfa_delete: None,
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let tmp = spool_body(&self.store, input.body).await?;
        let meta = put_meta(input.content_type, input.metadata);
        let (bucket, key) = (input.bucket, input.key);
        let info = self
            .run(move |s| s.put_object_from_file(&bucket, &key, &tmp, meta))
            .await?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&info.etag)),
            version_id: version_header(&info),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let object = self
            .run(move |s| s.get_object(&bucket, &key, version.as_deref()))
            .await?;
        let size = object.info.size;
        let (data, content_range) = match input.range {
            Some(range) => {
                let r = range.check(size)?;
                let slice = object.data.slice(
                    usize::try_from(r.start).unwrap_or(usize::MAX)
                        ..usize::try_from(r.end).unwrap_or(usize::MAX),
                );
                let content_range = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
                (slice, Some(content_range))
            }
            None => (object.data, None),
        };
        let info = object.info;
        Ok(S3Response::new(GetObjectOutput {
            content_length: i64::try_from(data.len()).ok(),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            content_range,
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified_ms)),
            version_id: version_header(&info),
            metadata: metadata(&info),
            content_type: info.content_type,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let info = self
            .run(move |s| s.head_object(&bucket, &key, version.as_deref()))
            .await?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: i64::try_from(info.size).ok(),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified_ms)),
            version_id: version_header(&info),
            metadata: metadata(&info),
            content_type: info.content_type,
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let outcome = self
            .run(move |s| s.delete_object(&bucket, &key, version.as_deref()))
            .await?;
        let output = match outcome {
            otastream_store::DeleteOutcome::Deleted { version_id } => DeleteObjectOutput {
                version_id: (version_id != "null").then_some(version_id),
                ..Default::default()
            },
            otastream_store::DeleteOutcome::DeleteMarker { version_id } => DeleteObjectOutput {
                delete_marker: Some(true),
                version_id: Some(version_id),
                ..Default::default()
            },
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        crate::s3_list::list_objects_v2(&self.store, req.input).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        crate::s3_list::list_object_versions(&self.store, req.input).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        crate::s3_multipart::create(&self.store, req.input).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        crate::s3_multipart::upload_part(&self.store, req.input).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        crate::s3_multipart::complete(&self.store, req.input).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        crate::s3_multipart::abort(&self.store, req.input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_s3_code_and_status() {
        let cases = [
            (
                StoreError::NotFound("NoSuchBucket: bucket 'b' does not exist".into()),
                "NoSuchBucket",
                404,
            ),
            (
                StoreError::NotFound("NoSuchVersion: v".into()),
                "NoSuchVersion",
                404,
            ),
            (
                StoreError::Conflict("BucketNotEmpty: b".into()),
                "BucketNotEmpty",
                409,
            ),
            (
                StoreError::Invalid("InvalidPartOrder: parts".into()),
                "InvalidPartOrder",
                400,
            ),
            (StoreError::NotFound("no code".into()), "NoSuchKey", 404),
        ];
        for (err, code, status) in cases {
            let e = s3_error(err);
            assert_eq!(e.code().as_str(), code);
            assert_eq!(e.status_code().map(|s| s.as_u16()), Some(status), "{code}");
        }
        let e = s3_error(StoreError::Io(std::io::Error::other("disk")));
        assert_eq!(e.code().as_str(), "InternalError");
    }
}
