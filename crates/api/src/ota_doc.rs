//! The `afr_ota` job document of an OTA update (PROTOCOL.md §3), and the file resolution behind
//! it: every files-JSON variant of the FreeRTOS guide.
//!
//! 1. `fileLocation.stream` + `codeSigning.awsSignerJobId` — the user's stream, the signer's signature.
//! 2. `fileLocation.stream` + `customCodeSigning` — the user's stream and signature text.
//! 3. `fileLocation.s3Location` + `startSigningJobParameter` — create the profile if missing, sign the
//!    exact S3 version, and stream the signed object.
//! 4. `awsSignerJobId` without `fileLocation` — stream the job's signed object.
//! 5. `s3Location` + `customCodeSigning` — stream the S3 object as given.
//!
//! Files that need a stream share one stream `AFR_OTA-<uuid>` created here (file ids 0, 1, ...).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use otastream_jobs::afr_ota::{OtaDocument, OtaFile, Protocol};
use otastream_store::{NewStream, StreamFile, StreamRecord};
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use crate::{iot_streams, signer, signer_jobs, validate};

/// How long an OTA update waits for a signer job that is still `InProgress`.
const SIGNER_WAIT: Duration = Duration::from_secs(30);

/// What [`build`] produced.
pub(crate) struct Built {
    /// The job document (compact JSON text).
    pub(crate) document: String,
    /// `otaUpdateFiles` with `awsSignerJobId` filled in where otastream started the signing.
    pub(crate) files: Value,
    /// The stream created for this update, if any (deleted with `deleteStream`).
    pub(crate) created_stream: Option<String>,
    /// Every stream the update uses.
    pub(crate) streams: Vec<String>,
}

/// Checks one `OTAUpdateFile` before anything is stored.
pub(crate) fn validate_file(f: &Value) -> ApiResult<()> {
    if let Some(t) = f.get("fileType") {
        validate::in_range("fileType", t.as_i64().unwrap_or(-1), 0, 255)?;
    }
    let stream = &f["fileLocation"]["stream"];
    if !stream.is_null() {
        validate::resource_id(
            "fileLocation.stream.streamId",
            stream["streamId"].as_str().unwrap_or_default(),
            128,
        )?;
        validate::in_range(
            "fileLocation.stream.fileId",
            stream["fileId"].as_i64().unwrap_or(0),
            0,
            255,
        )?;
    }
    let s3 = &f["fileLocation"]["s3Location"];
    if !s3.is_null()
        && (s3["bucket"].as_str().is_none_or(str::is_empty)
            || s3["key"].as_str().is_none_or(str::is_empty))
    {
        return Err(ApiError::invalid(
            "fileLocation.s3Location needs bucket and key",
        ));
    }
    let cs = &f["codeSigning"];
    let variants = [
        "awsSignerJobId",
        "startSigningJobParameter",
        "customCodeSigning",
    ];
    let set = variants
        .iter()
        .filter(|v| cs.get(**v).is_some_and(|x| !x.is_null() && *x != json!({})))
        .count();
    if set != 1 {
        return Err(ApiError::invalid(
            "codeSigning must set exactly one of awsSignerJobId, startSigningJobParameter, customCodeSigning",
        ));
    }
    let has_location = !stream.is_null() || !s3.is_null();
    if cs.get("awsSignerJobId").is_none() && !has_location {
        return Err(ApiError::invalid(
            "fileLocation is required unless codeSigning.awsSignerJobId is given",
        ));
    }
    if cs.get("startSigningJobParameter").is_some() && s3.is_null() {
        return Err(ApiError::invalid(
            "startSigningJobParameter needs fileLocation.s3Location",
        ));
    }
    if cs.get("customCodeSigning").is_some()
        && cs["customCodeSigning"]["signature"]["inlineDocument"]
            .as_str()
            .is_none()
    {
        return Err(ApiError::invalid(
            "customCodeSigning.signature.inlineDocument is required",
        ));
    }
    Ok(())
}

/// One file after its signature and source are known.
struct Resolved {
    filepath: String,
    file_type: Option<Value>,
    certfile: String,
    sig_key: String,
    signature: String,
    /// `(streamId, fileId)` of a user stream, or `None` when the file goes into our stream.
    stream: Option<(String, u8)>,
    /// The S3 object to stream when `stream` is `None`.
    s3: Option<StreamFile>,
}

/// A finished signer job, waiting briefly for one still `InProgress`.
fn finished_signer_job(state: &ApiState, job_id: &str) -> ApiResult<Value> {
    let deadline = Instant::now() + SIGNER_WAIT;
    loop {
        let job = signer_jobs::load_job(state, job_id)
            .map_err(|_| ApiError::invalid(format!("Signer job {job_id} does not exist")))?;
        match job["status"].as_str() {
            Some("Succeeded") => return Ok(job),
            Some("Failed") => {
                return Err(ApiError::invalid(format!(
                    "Signer job {job_id} failed: {}",
                    job["statusReason"].as_str().unwrap_or("unknown")
                )));
            }
            _ if Instant::now() >= deadline => {
                return Err(ApiError::invalid(format!(
                    "Signer job {job_id} did not finish"
                )));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn signed_object(job: &Value) -> StreamFile {
    let s3 = &job["signedObject"]["s3"];
    StreamFile {
        file_id: 0,
        bucket: s3["bucketName"].as_str().unwrap_or_default().to_owned(),
        key: s3["key"].as_str().unwrap_or_default().to_owned(),
        version_id: job["_signedVersion"].as_str().map(str::to_owned),
    }
}

fn s3_location(f: &Value) -> Option<StreamFile> {
    let s3 = &f["fileLocation"]["s3Location"];
    Some(StreamFile {
        file_id: 0,
        bucket: s3["bucket"].as_str()?.to_owned(),
        key: s3["key"].as_str()?.to_owned(),
        version_id: s3["version"].as_str().map(str::to_owned),
    })
}

/// Starts and runs a signing job for `startSigningJobParameter` (creating the profile if missing).
fn sign_with_parameter(state: &ApiState, f: &Value, p: &Value) -> ApiResult<(Value, String)> {
    let name = p["signingProfileName"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("signingProfileName is required"))?;
    let params = &p["signingProfileParameter"];
    let profile = match signer::load_profile(state, name) {
        Ok(profile) => profile,
        Err(_) => {
            let cert = params["certificateArn"].as_str();
            let platform = params["platform"].as_str();
            let (Some(cert), Some(platform)) = (cert, platform) else {
                return Err(ApiError::not_found(format!(
                    "Signing profile {name} does not exist and no signingProfileParameter was given"
                )));
            };
            let certname = params["certificatePathOnDevice"]
                .as_str()
                .unwrap_or_default();
            signer::put_profile_record(
                state,
                name,
                cert,
                platform,
                json!({ "certname": certname }),
            )?
        }
    };
    let src = s3_location(f).ok_or_else(|| {
        ApiError::invalid("startSigningJobParameter needs fileLocation.s3Location")
    })?;
    let version = match src.version_id.clone() {
        Some(v) => v,
        None => {
            state
                .store
                .head_object(&src.bucket, &src.key, None)
                .map_err(|e| ApiError::invalid(e.to_string()))?
                .version_id
        }
    };
    let dst = &p["destination"]["s3Destination"];
    let req = signer_jobs::StartJob {
        source: Some(
            json!({ "s3": { "bucketName": src.bucket, "key": src.key, "version": version } }),
        ),
        destination: Some(
            json!({ "s3": { "bucketName": dst["bucket"], "prefix": dst["prefix"].as_str().unwrap_or_default() } }),
        ),
        profile_name: Some(name.to_owned()),
    };
    let id = signer_jobs::create_job(state, &req).map_err(|e| ApiError::invalid(e.message))?;
    let job = signer_jobs::run_job(state, &id)?;
    let job = finished_signer_job(state, job["jobId"].as_str().unwrap_or_default())?;
    let certfile = params["certificatePathOnDevice"]
        .as_str()
        .or_else(|| profile["signingParameters"]["certname"].as_str());
    Ok((job, certfile.unwrap_or_default().to_owned()))
}

/// Resolves one file; `files_out` gets `awsSignerJobId` added when signing was started here.
fn resolve(state: &ApiState, f: &mut Value) -> ApiResult<Resolved> {
    let stream = f["fileLocation"]["stream"].as_object().map(|s| {
        let id = s
            .get("streamId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let file_id = s
            .get("fileId")
            .and_then(Value::as_u64)
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(0);
        (id, file_id)
    });
    let cs = f["codeSigning"].clone();
    let (certfile, sig_key, signature, signed) = if let Some(job_id) = cs["awsSignerJobId"].as_str()
    {
        let job = finished_signer_job(state, job_id)?;
        let cert = job["signingParameters"]["certname"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let sig = job["_signature"].as_str().unwrap_or_default().to_owned();
        (
            cert,
            "sig-sha256-ecdsa".to_owned(),
            sig,
            Some(signed_object(&job)),
        )
    } else if cs["startSigningJobParameter"].is_object() {
        let (job, cert) = sign_with_parameter(state, f, &cs["startSigningJobParameter"])?;
        f["codeSigning"]["awsSignerJobId"] = job["jobId"].clone();
        let sig = job["_signature"].as_str().unwrap_or_default().to_owned();
        (
            cert,
            "sig-sha256-ecdsa".to_owned(),
            sig,
            Some(signed_object(&job)),
        )
    } else {
        let c = &cs["customCodeSigning"];
        let wire = c["signature"]["inlineDocument"]
            .as_str()
            .unwrap_or_default();
        // A blob: botocore base64-encodes the user's text, which is what the agent needs.
        let text = B64
            .decode(wire)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_else(|| wire.to_owned());
        let hash = c["hashAlgorithm"]
            .as_str()
            .unwrap_or("SHA256")
            .to_ascii_lowercase();
        let alg = c["signatureAlgorithm"]
            .as_str()
            .unwrap_or("ECDSA")
            .to_ascii_lowercase();
        let cert = c["certificateChain"]["certificateName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (cert, format!("sig-{hash}-{alg}"), text, None)
    };
    let s3 = if stream.is_some() {
        None
    } else {
        signed.or_else(|| s3_location(f))
    };
    Ok(Resolved {
        filepath: f["fileName"].as_str().unwrap_or_default().to_owned(),
        file_type: f.get("fileType").cloned(),
        certfile,
        sig_key,
        signature,
        stream,
        s3,
    })
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
fn own_stream_id(ota_id: &str, record: &Value) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{ota_id}\n{}", record["creationDate"]).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("AFR_OTA-{}", uuid::Uuid::from_bytes(bytes))
}

/// Resolves all files, creates the stream they need and renders the document.
pub(crate) fn build(state: &ApiState, ota_id: &str, record: &Value) -> ApiResult<Built> {
    let mut files = record["otaUpdateFiles"].clone();
    let mut resolved = Vec::new();
    for f in files.as_array_mut().into_iter().flatten() {
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
            role_arn: record["_roleArn"].as_str().map(str::to_owned),
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
    record: &Value,
    resolved: &[Resolved],
    created: Option<&StreamRecord>,
) -> ApiResult<(String, Vec<String>)> {
    let protocols: Vec<Protocol> = record["protocols"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| match p.as_str() {
            Some("MQTT") => Some(Protocol::Mqtt),
            Some("HTTP") => Some(Protocol::Http),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_file(extra: Value) -> Value {
        let mut f = json!({ "fileName": "f", "fileLocation": { "stream": { "streamId": "s1", "fileId": 1 } },
                            "codeSigning": { "awsSignerJobId": "j" } });
        if let (Value::Object(base), Value::Object(more)) = (&mut f, extra) {
            base.extend(more);
        }
        f
    }

    #[test]
    fn every_guide_variant_is_accepted() {
        let s3 = json!({ "s3Location": { "bucket": "b", "key": "k", "version": "v" } });
        let custom = json!({ "customCodeSigning": { "signature": { "inlineDocument": "c2ln" } } });
        let start = json!({ "startSigningJobParameter": { "signingProfileName": "p" } });
        for f in [
            stream_file(json!({})),
            stream_file(json!({ "codeSigning": custom.clone() })),
            stream_file(json!({ "fileLocation": s3.clone(), "codeSigning": start })),
            json!({ "fileName": "f", "codeSigning": { "awsSignerJobId": "j" } }),
            stream_file(json!({ "fileLocation": s3, "codeSigning": custom })),
        ] {
            validate_file(&f).unwrap_or_else(|e| panic!("{f}: {}", e.message));
        }
    }

    #[test]
    fn out_of_range_ids_and_ambiguous_signing_are_invalid_requests() {
        let bad = [
            stream_file(json!({ "fileType": 256 })),
            stream_file(
                json!({ "fileLocation": { "stream": { "streamId": "s1", "fileId": 300 } } }),
            ),
            stream_file(
                json!({ "fileLocation": { "stream": { "streamId": "bad id", "fileId": 1 } } }),
            ),
            stream_file(json!({ "codeSigning": {} })),
            stream_file(
                json!({ "codeSigning": { "awsSignerJobId": "j", "customCodeSigning": { "signature": {} } } }),
            ),
            stream_file(
                json!({ "codeSigning": { "startSigningJobParameter": { "signingProfileName": "p" } } }),
            ),
            stream_file(json!({ "codeSigning": { "customCodeSigning": { "signature": {} } } })),
            json!({ "fileName": "f", "codeSigning": { "customCodeSigning": { "signature": { "inlineDocument": "x" } } } }),
        ];
        for f in bad {
            let err = validate_file(&f).expect_err(&f.to_string());
            assert_eq!(err.code, "InvalidRequestException", "{f}");
        }
    }
}
