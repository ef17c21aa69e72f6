//! S3 multipart uploads (`aws s3 cp` switches to them above 8 MiB): create, upload part,
//! complete, abort — thin translations onto the store's multipart API.

use std::sync::Arc;

use otastream_store::Backend;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Response, S3Result};

use crate::s3_convert::{etag, put_meta, read_body, run, version_header};

/// CreateMultipartUpload.
pub(crate) async fn create(
    store: &Arc<dyn Backend>,
    input: CreateMultipartUploadInput,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let meta = put_meta(input.content_type, input.metadata);
    let (bucket, key) = (input.bucket.clone(), input.key.clone());
    let upload_id = run(store, move |s| s.create_multipart(&bucket, &key, meta)).await?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(upload_id),
        ..Default::default()
    }))
}

/// UploadPart (the part is read into memory, at most the single-PUT limit).
pub(crate) async fn upload_part(
    store: &Arc<dyn Backend>,
    input: UploadPartInput,
) -> S3Result<S3Response<UploadPartOutput>> {
    let part = u32::try_from(input.part_number).map_err(|_| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "Part number must be 1..10000")
    })?;
    let data = read_body(input.body).await?;
    let upload_id = input.upload_id;
    let tag = run(store, move |s| s.upload_part(&upload_id, part, &data)).await?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(etag(&tag)),
        ..Default::default()
    }))
}

/// CompleteMultipartUpload (ETag `"<md5 of part md5s>-N"`).
pub(crate) async fn complete(
    store: &Arc<dyn Backend>,
    input: CompleteMultipartUploadInput,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let mut parts = Vec::new();
    for part in input
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
    {
        let number = part.part_number.and_then(|n| u32::try_from(n).ok());
        let (Some(number), Some(tag)) = (number, part.e_tag) else {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPart,
                "Each part needs PartNumber and ETag",
            ));
        };
        parts.push((number, format!("\"{}\"", tag.value())));
    }
    let upload_id = input.upload_id;
    let info = run(store, move |s| s.complete_multipart(&upload_id, &parts)).await?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        location: Some(format!("/{}/{}", info.bucket, info.key)),
        e_tag: Some(etag(&info.etag)),
        version_id: version_header(&info),
        bucket: Some(info.bucket),
        key: Some(info.key),
        ..Default::default()
    }))
}

/// AbortMultipartUpload.
pub(crate) async fn abort(
    store: &Arc<dyn Backend>,
    input: AbortMultipartUploadInput,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let upload_id = input.upload_id;
    run(store, move |s| s.abort_multipart(&upload_id)).await?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}
