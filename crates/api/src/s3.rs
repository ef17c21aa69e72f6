//! S3 over s3s: `impl s3s::S3` backed by the versioned object store.
//!
//! s3s parses requests, checks bucket names, verifies SigV4 (header and presigned, V2 and V4,
//! expiry included) through `SimpleAuth`, and writes S3 XML for both answers and errors. This
//! module only translates between s3s DTOs and [`otastream_store::Store`] calls, and maps store
//! errors to S3 error codes in [`s3_error`] (the store leads its messages with the AWS code).

use std::sync::Arc;

use otastream_store::{Backend, ByteRange, StoreError, Versioning};
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::ApiState;
use crate::s3_convert::{
    etag, metadata, owner, put_meta, run, spool_body, timestamp, version_header,
};

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
    store: Arc<dyn Backend>,
}

impl StoreS3 {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> S3Result<T> {
        run(&self.store, f).await
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
        let range = input.range.map(|r| match r {
            Range::Int {
                first,
                last: Some(last),
            } => ByteRange::Bounded { first, last },
            Range::Int { first, last: None } => ByteRange::From { first },
            Range::Suffix { length } => ByteRange::Suffix { length },
        });
        let object = self
            .run(move |s| s.get_object(&bucket, &key, version.as_deref(), range))
            .await?;
        let size = object.info.size;
        let content_range = object
            .range
            .map(|r| format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1)));
        let (info, data) = (object.info, object.data);
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

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        crate::s3_list::list_objects_v1(&self.store, req.input).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let bucket = req.input.bucket;
        if !self.run(move |s| s.bucket_exists(&bucket)).await? {
            return Err(S3Error::new(S3ErrorCode::NoSuchBucket));
        }
        // us-east-1 is the empty constraint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let quiet = input.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for object in input.delete.objects {
            let (bucket, key, version) = (
                input.bucket.clone(),
                object.key.clone(),
                object.version_id.clone(),
            );
            match self
                .run(move |s| s.delete_object(&bucket, &key, version.as_deref()))
                .await
            {
                Ok(outcome) if !quiet => deleted.push(match outcome {
                    otastream_store::DeleteOutcome::Deleted { version_id } => DeletedObject {
                        key: Some(object.key),
                        version_id: object
                            .version_id
                            .or((version_id != "null").then_some(version_id)),
                        ..Default::default()
                    },
                    otastream_store::DeleteOutcome::DeleteMarker { version_id } => DeletedObject {
                        key: Some(object.key),
                        delete_marker: Some(true),
                        delete_marker_version_id: Some(version_id),
                        ..Default::default()
                    },
                }),
                Ok(_) => {}
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: object.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
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
