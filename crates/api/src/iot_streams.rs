//! iot streams: CreateStream, DescribeStream, ListStreams, UpdateStream, DeleteStream.
//!
//! Records live in the store's stream table (the gateway serves their bytes). Files are resolved
//! against the object store when a stream is created or updated: a missing bucket, key or version
//! is the caller's mistake (`InvalidRequestException`), not a missing stream.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use otastream_store::{NewStream, StoreError, StreamFile, StreamRecord, StreamUpdate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{QueryMap, epoch_seconds, paginate, with_token};
use crate::validate;

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/streams", get(list_streams)).route(
        "/streams/{id}",
        get(describe_stream)
            .post(create_stream)
            .put(update_stream)
            .delete(delete_stream),
    )
}

/// `StreamFile` as sent by the CLI.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamFileIn {
    file_id: Option<i64>,
    s3_location: Option<S3LocationIn>,
}

/// `S3Location` as sent by the CLI.
#[derive(Deserialize, Clone)]
pub(crate) struct S3LocationIn {
    pub(crate) bucket: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateStream {
    description: Option<String>,
    files: Option<Vec<StreamFileIn>>,
    role_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateStream {
    description: Option<String>,
    files: Option<Vec<StreamFileIn>>,
    role_arn: Option<String>,
}

/// Checks 1..=50 files, fileId 0..=255 and unique, bucket and key present.
pub(crate) fn stream_files(files: &[StreamFileIn]) -> ApiResult<Vec<StreamFile>> {
    if files.is_empty() || files.len() > 50 {
        return Err(ApiError::invalid("files must hold 1 to 50 entries"));
    }
    let mut out: Vec<StreamFile> = Vec::with_capacity(files.len());
    for f in files {
        let id = f
            .file_id
            .ok_or_else(|| ApiError::invalid("fileId is required"))?;
        validate::in_range("fileId", id, 0, 255)?;
        let file_id =
            u8::try_from(id).map_err(|_| ApiError::invalid("fileId must be between 0 and 255"))?;
        if out.iter().any(|o| o.file_id == file_id) {
            return Err(ApiError::invalid(format!(
                "fileId {file_id} appears more than once"
            )));
        }
        let loc = f
            .s3_location
            .as_ref()
            .ok_or_else(|| ApiError::invalid("s3Location is required"))?;
        let bucket = loc.bucket.clone().filter(|b| !b.is_empty());
        let key = loc.key.clone().filter(|k| !k.is_empty());
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(ApiError::invalid("s3Location needs bucket and key"));
        };
        out.push(StreamFile {
            file_id,
            bucket,
            key,
            version_id: loc.version.clone(),
        });
    }
    Ok(out)
}

/// A store error while resolving files: missing objects are the caller's input error.
fn file_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } | StoreError::Invalid(_) => {
            ApiError::invalid(format!("Stream file is not readable: {e}"))
        }
        other => other.into(),
    }
}

/// Creates a stream record (used by CreateStream and by OTA updates that make their own stream).
pub(crate) fn create_record(state: &ApiState, new: &NewStream) -> ApiResult<StreamRecord> {
    if state.store.get_stream(&new.id)?.is_some() {
        let arn = stream_arn(state, &new.id);
        return Err(ApiError::already_exists(
            format!("Stream {} already exists", new.id),
            &new.id,
            &arn,
        ));
    }
    state.store.create_stream(new).map_err(|e| match e {
        StoreError::AlreadyExists { .. } => ApiError::already_exists(
            format!("Stream {} already exists", new.id),
            &new.id,
            &stream_arn(state, &new.id),
        ),
        other => file_error(other),
    })
}

fn stream_arn(state: &ApiState, id: &str) -> String {
    state.config.arn("iot", &format!("stream/{id}"))
}

/// `StreamInfo` JSON.
fn stream_info(state: &ApiState, r: &StreamRecord) -> Value {
    let files: Vec<Value> = r
        .files
        .iter()
        .map(|f| json!({ "fileId": f.file_id, "s3Location": { "bucket": f.bucket, "key": f.key, "version": f.version_id } }))
        .collect();
    let mut info = json!({
        "streamId": r.id,
        "streamArn": stream_arn(state, &r.id),
        "streamVersion": r.version,
        "files": files,
        "createdAt": epoch_seconds(r.created_ms),
        "lastUpdatedAt": epoch_seconds(r.updated_ms),
    });
    if let Some(d) = &r.description {
        info["description"] = json!(d);
    }
    if let Some(role) = &r.role_arn {
        info["roleArn"] = json!(role);
    }
    info
}

fn summary(state: &ApiState, r: &StreamRecord) -> Value {
    json!({
        "streamId": r.id,
        "streamArn": stream_arn(state, &r.id),
        "streamVersion": r.version,
        "description": r.description,
    })
}

async fn create_stream(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("streamId", &id, 128)?;
    let req: CreateStream = parse_json(&body)?;
    validate::description(req.description.as_deref())?;
    let role_arn = req
        .role_arn
        .ok_or_else(|| ApiError::invalid("roleArn is required"))?;
    validate::role_arn(Some(&role_arn))?;
    let files = stream_files(req.files.as_deref().unwrap_or_default())?;
    let new = NewStream {
        id,
        description: req.description,
        role_arn: Some(role_arn),
        files,
    };
    let (record, st) = state
        .blocking(move |s| Ok((create_record(s, &new)?, s.clone())))
        .await?;
    Ok(json_ok(summary(&st, &record)))
}

async fn describe_stream(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    validate::resource_id("streamId", &id, 128)?;
    let record = state.blocking(move |s| load(s, &id)).await?;
    Ok(json_ok(
        json!({ "streamInfo": stream_info(&state, &record) }),
    ))
}

fn load(state: &ApiState, id: &str) -> ApiResult<StreamRecord> {
    state
        .store
        .get_stream(id)?
        .ok_or_else(|| ApiError::not_found(format!("Stream {id} does not exist")))
}

async fn list_streams(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let mut records = state.blocking(|s| Ok(s.store.list_streams()?)).await?;
    if q.get("isAscendingOrder").is_some_and(|v| v == "false") {
        records.reverse();
    }
    let summaries: Vec<Value> = records.iter().map(|r| summary(&state, r)).collect();
    let (page, next) = paginate(summaries, &q, 250)?;
    Ok(json_ok(with_token(json!({ "streams": page }), next)))
}

async fn update_stream(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("streamId", &id, 128)?;
    let req: UpdateStream = parse_json(&body)?;
    validate::description(req.description.as_deref())?;
    validate::role_arn(req.role_arn.as_deref())?;
    let files = req.files.as_deref().map(stream_files).transpose()?;
    let update = StreamUpdate {
        description: req.description,
        role_arn: req.role_arn,
        files,
    };
    let record = state
        .blocking(move |s| {
            load(s, &id)?;
            s.store.update_stream(&id, &update).map_err(file_error)
        })
        .await?;
    Ok(json_ok(summary(&state, &record)))
}

async fn delete_stream(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    validate::resource_id("streamId", &id, 128)?;
    state
        .blocking(move |s| {
            load(s, &id)?;
            if let Some(ota) = crate::ota::update_using_stream(s, &id)? {
                let msg =
                    format!("Stream {id} is used by OTA update {ota}; delete the OTA update first");
                return Err(ApiError::conflict("DeleteConflictException", msg));
            }
            s.store.delete_stream(&id)?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}
