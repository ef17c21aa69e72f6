//! The `afr_ota` job document of an OTA update (PROTOCOL.md §3): files resolved by `ota_files`,
//! the stream they need, and the document rendered with the jobs crate's [`OtaDocument`].
//!
//! Files that need a stream share one stream `AFR_OTA-<uuid>` created here (file ids 0, 1, ...);
//! its id is derived from the update, so a resumed attempt replaces it.

use otastream_jobs::afr_ota::{OtaDocument, OtaFile, Protocol};
use otastream_store::{NewStream, OtaUpdate, StreamFile, StreamRecord};
use serde_json::Value;

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use crate::iot_streams;
use crate::ota_files::{Resolved, resolve};

/// What [`build`] produced.
pub(crate) struct Built {
    /// The job document (compact JSON text).
    pub(crate) document: String,
    /// `otaUpdateFiles` with `awsSignerJobId` filled in where otastream started the signing.
    pub(crate) files: Vec<Value>,
    /// The stream created for this update, if any (deleted with `deleteStream`).
    pub(crate) created_stream: Option<String>,
    /// Every stream the update uses.
    pub(crate) streams: Vec<String>,
}

fn stream_file(
    record: &StreamRecord,
    file_id: u8,
) -> ApiResult<&otastream_store::StreamFileRecord> {
    record
        .files
        .iter()
        .find(|f| f.file_id == file_id)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Stream {} has no file with fileId {file_id}",
                record.id
            ))
        })
}

/// `AFR_OTA-<uuid>` derived from the update (id and creation time), so a resumed attempt finds
/// and replaces the stream of an interrupted one instead of leaving it behind.
fn own_stream_id(ota_id: &str, record: &OtaUpdate) -> String {
    use sha2::Digest;
    let created = crate::util::epoch_seconds(record.created_ms);
    let digest = sha2::Sha256::digest(format!("{ota_id}\n{created}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("AFR_OTA-{}", uuid::Uuid::from_bytes(bytes))
}

/// Resolves all files, creates the stream they need and renders the document.
pub(crate) fn build(state: &ApiState, ota_id: &str, record: &OtaUpdate) -> ApiResult<Built> {
    let mut files = record.files.clone();
    let mut resolved = Vec::new();
    for f in &mut files {
        resolved.push(resolve(state, f)?);
    }
    let ours: Vec<StreamFile> = resolved
        .iter()
        .filter_map(|r| r.s3.clone())
        .enumerate()
        .map(|(i, f)| StreamFile {
            file_id: u8::try_from(i).unwrap_or(u8::MAX),
            ..f
        })
        .collect();
    let created = if ours.is_empty() {
        None
    } else {
        let new = NewStream {
            id: own_stream_id(ota_id, record),
            description: Some(format!("Stream for OTA update {ota_id}")),
            role_arn: Some(record.role_arn.clone()),
            files: ours,
        };
        if state.store.get_stream(&new.id)?.is_some() {
            state.store.delete_stream(&new.id)?;
        }
        Some(iot_streams::create_record(state, &new).map_err(|e| ApiError::invalid(e.message))?)
    };
    match render(state, record, &resolved, created.as_ref()) {
        Ok((document, streams)) => Ok(Built {
            document,
            files,
            created_stream: created.map(|c| c.id),
            streams,
        }),
        Err(e) => {
            // Nothing refers to the stream made for this update: do not leave it behind.
            if let Some(stream) = created
                && let Err(cleanup) = state.store.delete_stream(&stream.id)
            {
                tracing::warn!(error = %cleanup, stream = %stream.id, "could not remove an unused OTA stream");
            }
            Err(e)
        }
    }
}

/// The `afr_ota` document and the streams it uses.
fn render(
    state: &ApiState,
    record: &OtaUpdate,
    resolved: &[Resolved],
    created: Option<&StreamRecord>,
) -> ApiResult<(String, Vec<String>)> {
    let protocols: Vec<Protocol> = record
        .protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "MQTT" => Some(Protocol::Mqtt),
            "HTTP" => Some(Protocol::Http),
            _ => None,
        })
        .collect();
    let http = protocols.contains(&Protocol::Http);
    let mut doc_files = Vec::new();
    let mut streams: Vec<String> = Vec::new();
    let mut next_own_id = 0u8;
    for r in resolved {
        let (record, file_id) = match &r.stream {
            Some((id, file_id)) => {
                let rec = state
                    .store
                    .get_stream(id)?
                    .ok_or_else(|| ApiError::invalid(format!("Stream {id} does not exist")))?;
                (rec, *file_id)
            }
            None => {
                let rec = created
                    .cloned()
                    .ok_or_else(|| ApiError::internal("stream for S3 files was not created"))?;
                next_own_id = next_own_id.saturating_add(1);
                (rec, next_own_id - 1)
            }
        };
        let file = stream_file(&record, file_id)?;
        if !streams.contains(&record.id) {
            streams.push(record.id.clone());
        }
        let url = format!(
            "{}/{}/{}?versionId={}",
            state.config.public_base_url, file.bucket, file.key, file.version_id
        );
        doc_files.push(OtaFile {
            file_path: r.filepath.clone(),
            file_size: file.size,
            file_id: u32::from(file_id),
            cert_file: r.certfile.clone(),
            file_type: r
                .file_type
                .as_ref()
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok()),
            attr: None,
            update_data_url: http.then(|| format!("${{aws:iot:s3-presigned-url:{url}}}")),
            signature_key: r.sig_key.clone(),
            signature: r.signature.clone(),
        });
    }
    let stream_name = streams
        .first()
        .cloned()
        .filter(|_| protocols.contains(&Protocol::Mqtt));
    let document = OtaDocument {
        protocols,
        stream_name,
        files: doc_files,
    }
    .to_json()
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok((document, streams))
}
