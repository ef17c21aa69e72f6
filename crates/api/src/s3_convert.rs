//! Conversions between the store and s3s DTOs, shared by the S3 modules: store errors to S3
//! error codes ([`s3_error`], in one place), timestamps, ETags, version headers, user metadata,
//! request bodies (spooled to disk for PUT), and the blocking-pool runner.

use std::time::{Duration, UNIX_EPOCH};

use std::sync::Arc;

use otastream_store::{Backend, Conflict, Invalid, Kind, ObjectInfo, PutMeta, StoreError};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// Largest multipart part accepted into memory (single PUTs stream to disk).
const MAX_OBJECT_BODY: usize = 512 << 20;

/// Maps a store error to its S3 code: the one place they are chosen for the S3 XML protocol.
pub(crate) fn s3_error(e: StoreError) -> S3Error {
    use http::StatusCode as Status;
    let (code, status) = match &e {
        StoreError::NotFound { kind, .. } => (
            match kind {
                Kind::Bucket => S3ErrorCode::NoSuchBucket,
                Kind::ObjectVersion => S3ErrorCode::NoSuchVersion,
                Kind::Upload => S3ErrorCode::NoSuchUpload,
                _ => S3ErrorCode::NoSuchKey,
            },
            Status::NOT_FOUND,
        ),
        StoreError::AlreadyExists { .. } => {
            (S3ErrorCode::BucketAlreadyOwnedByYou, Status::CONFLICT)
        }
        StoreError::Conflict(Conflict::BucketHasVersions { .. }) => {
            (S3ErrorCode::BucketNotEmpty, Status::CONFLICT)
        }
        StoreError::Invalid(invalid) => (
            match invalid {
                Invalid::VersioningCannotBeDisabled => {
                    S3ErrorCode::IllegalVersioningConfigurationException
                }
                Invalid::NoParts => S3ErrorCode::MalformedXML,
                Invalid::PartOrder => S3ErrorCode::InvalidPartOrder,
                Invalid::PartMissing { .. } => S3ErrorCode::InvalidPart,
                Invalid::PartTooSmall { .. } => S3ErrorCode::EntityTooSmall,
                Invalid::RangeNotSatisfiable { .. } => S3ErrorCode::InvalidRange,
                _ => S3ErrorCode::InvalidArgument,
            },
            Status::BAD_REQUEST,
        ),
        StoreError::Unavailable { .. } => {
            tracing::warn!(error = %e, "storage unavailable");
            (S3ErrorCode::ServiceUnavailable, Status::SERVICE_UNAVAILABLE)
        }
        _ => {
            tracing::error!(error = %e, "store failure");
            return S3Error::with_message(S3ErrorCode::InternalError, e.to_string());
        }
    };
    let mut err = S3Error::with_message(code.clone(), e.to_string());
    if code.status_code().is_none() {
        err.set_status_code(status);
    }
    err
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    store: &Arc<dyn Backend>,
    f: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
) -> S3Result<T> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(&*store)).await {
        Ok(result) => result.map_err(s3_error),
        Err(e) => Err(S3Error::internal_error(e)),
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

pub(crate) fn metadata(info: &ObjectInfo) -> Option<Metadata> {
    (!info.user_metadata.is_empty()).then(|| info.user_metadata.iter().cloned().collect())
}

/// Streams a PUT body into a fresh file under the store's `tmp/` (never the whole body in
/// memory); the caller hands it to `put_object_from_file`. The file is removed on failure.
pub(crate) async fn spool_body(
    store: &Arc<dyn Backend>,
    body: Option<StreamingBlob>,
) -> S3Result<std::path::PathBuf> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let path = store.staging_path();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_s3_code_and_status() {
        let cases = [
            (
                StoreError::not_found(Kind::Bucket, "b"),
                "NoSuchBucket",
                404,
            ),
            (
                StoreError::not_found(Kind::ObjectVersion, "b/k?versionId=v"),
                "NoSuchVersion",
                404,
            ),
            (StoreError::not_found(Kind::Object, "b/k"), "NoSuchKey", 404),
            (
                StoreError::not_found(Kind::Upload, "u"),
                "NoSuchUpload",
                404,
            ),
            (
                StoreError::from(Conflict::BucketHasVersions {
                    bucket: "b".into(),
                    versions: 1,
                }),
                "BucketNotEmpty",
                409,
            ),
            (
                StoreError::from(Invalid::PartOrder),
                "InvalidPartOrder",
                400,
            ),
            (
                StoreError::from(Invalid::PartTooSmall {
                    part_number: 1,
                    size: 1,
                    min: 5,
                }),
                "EntityTooSmall",
                400,
            ),
            (
                StoreError::from(Invalid::VersioningCannotBeDisabled),
                "IllegalVersioningConfigurationException",
                400,
            ),
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
