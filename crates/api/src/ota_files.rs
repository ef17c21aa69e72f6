//! The files of an OTA update (every files-JSON variant of the FreeRTOS guide): validation
//! before anything is stored, then resolution of each file's signature and source.
//!
//! 1. `fileLocation.stream` + `codeSigning.awsSignerJobId` — the user's stream, the signer's signature.
//! 2. `fileLocation.stream` + `customCodeSigning` — the user's stream and signature text.
//! 3. `fileLocation.s3Location` + `startSigningJobParameter` — create the profile if missing, sign the
//!    exact S3 version, and stream the signed object.
//! 4. `awsSignerJobId` without `fileLocation` — stream the job's signed object.
//! 5. `s3Location` + `customCodeSigning` — stream the S3 object as given.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use otastream_store::{S3Version, SignedObject, SigningJob, SigningStatus, StreamFile};
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use crate::{signer, signer_jobs, validate};

/// How long an OTA update waits for a signer job that is still `InProgress`.
const SIGNER_WAIT: Duration = Duration::from_secs(30);

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
pub(crate) struct Resolved {
    pub(crate) filepath: String,
    pub(crate) file_type: Option<Value>,
    pub(crate) certfile: String,
    pub(crate) sig_key: String,
    pub(crate) signature: String,
    /// `(streamId, fileId)` of a user stream, or `None` when the file goes into our stream.
    pub(crate) stream: Option<(String, u8)>,
    /// The S3 object to stream when `stream` is `None`.
    pub(crate) s3: Option<StreamFile>,
}

/// A finished signer job, waiting briefly for one still `InProgress`.
fn finished_signer_job(state: &ApiState, job_id: &str) -> ApiResult<SigningJob> {
    let deadline = Instant::now() + SIGNER_WAIT;
    loop {
        let job = signer_jobs::load_job(state, job_id)
            .map_err(|_| ApiError::invalid(format!("Signer job {job_id} does not exist")))?;
        match job.status {
            SigningStatus::Succeeded => return Ok(job),
            SigningStatus::Failed => {
                return Err(ApiError::invalid(format!(
                    "Signer job {job_id} failed: {}",
                    job.status_reason.as_deref().unwrap_or("unknown")
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

/// The signed copy of a finished job as a stream file, and the signature.
fn signed_object(job: &SigningJob) -> (StreamFile, String) {
    let signed = job.signed.clone().unwrap_or_else(|| SignedObject {
        object: S3Version {
            bucket: String::new(),
            key: String::new(),
            version: String::new(),
        },
        signature: String::new(),
    });
    let file = StreamFile {
        file_id: 0,
        bucket: signed.object.bucket,
        key: signed.object.key,
        version_id: Some(signed.object.version),
    };
    (file, signed.signature)
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
fn sign_with_parameter(state: &ApiState, f: &Value, p: &Value) -> ApiResult<(SigningJob, String)> {
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
    let job = finished_signer_job(state, &job.id)?;
    let certfile = params["certificatePathOnDevice"]
        .as_str()
        .or_else(|| profile.signing_parameters["certname"].as_str());
    Ok((job, certfile.unwrap_or_default().to_owned()))
}

/// Resolves one file; `files_out` gets `awsSignerJobId` added when signing was started here.
pub(crate) fn resolve(state: &ApiState, f: &mut Value) -> ApiResult<Resolved> {
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
        let cert = job.signing_parameters["certname"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (file, sig) = signed_object(&job);
        (cert, "sig-sha256-ecdsa".to_owned(), sig, Some(file))
    } else if cs["startSigningJobParameter"].is_object() {
        let (job, cert) = sign_with_parameter(state, f, &cs["startSigningJobParameter"])?;
        f["codeSigning"]["awsSignerJobId"] = Value::String(job.id.clone());
        let (file, sig) = signed_object(&job);
        (cert, "sig-sha256-ecdsa".to_owned(), sig, Some(file))
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
