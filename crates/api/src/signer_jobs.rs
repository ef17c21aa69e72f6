//! AWS Signer signing jobs: StartSigningJob, DescribeSigningJob, ListSigningJobs.
//!
//! [`create_job`] validates and records a job `InProgress`; [`run_job`] (blocking) reads the
//! exact source version, signs it SHA-256/ECDSA (DER, p256) with the profile's ACM key, copies
//! the image to `<prefix><jobId>` and records `Succeeded` with the signature, or `Failed` with a
//! `statusReason`. StartSigningJob runs it in the background; OTA updates run it inline.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use otastream_store::{PutMeta, S3Version, SignedObject, SigningJob, SigningStatus};
use p256::ecdsa::signature::Signer as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::signer::load_profile;
use crate::util::{QueryMap, epoch_seconds, matches_query, now_ms, paginate, with_token};
use crate::{ApiState, acm, found, validate};

/// A StartSigningJob request, also built by OTA updates.
#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartJob {
    pub(crate) source: Option<Value>,
    pub(crate) destination: Option<Value>,
    pub(crate) profile_name: Option<String>,
}

/// Validates and records a job `InProgress`; returns its id. [`run_job`] finishes it.
pub(crate) fn create_job(state: &ApiState, req: &StartJob) -> ApiResult<String> {
    let name = req
        .profile_name
        .as_deref()
        .ok_or_else(|| ApiError::validation("profileName is required"))?;
    validate::profile_name(name)?;
    let profile = load_profile(state, name)?;
    if profile.status != otastream_store::ProfileStatus::Active {
        return Err(ApiError::validation(format!(
            "Signing profile {name} is not Active"
        )));
    }
    let src = req
        .source
        .as_ref()
        .map(|s| s["s3"].clone())
        .unwrap_or(Value::Null);
    for member in ["bucketName", "key", "version"] {
        if src[member].as_str().is_none_or(str::is_empty) {
            return Err(ApiError::validation(format!(
                "source.s3.{member} is required"
            )));
        }
    }
    let dst = req
        .destination
        .as_ref()
        .map(|d| d["s3"].clone())
        .unwrap_or(Value::Null);
    if dst["bucketName"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::validation(
            "destination.s3.bucketName is required",
        ));
    }
    let job = SigningJob {
        id: uuid::Uuid::new_v4().to_string(),
        source: S3Version {
            bucket: str_of(&src["bucketName"]).to_owned(),
            key: str_of(&src["key"]).to_owned(),
            version: str_of(&src["version"]).to_owned(),
        },
        destination_bucket: str_of(&dst["bucketName"]).to_owned(),
        destination_prefix: str_of(&dst["prefix"]).to_owned(),
        certificate_arn: profile.certificate_arn,
        platform_id: profile.platform_id,
        platform_display_name: profile.platform_display_name,
        profile_name: name.to_owned(),
        profile_version: profile.version,
        signing_parameters: profile.signing_parameters,
        created_ms: now_ms(),
        completed_ms: None,
        status: SigningStatus::InProgress,
        status_reason: None,
        signed: None,
        account_id: state.config.account_id.clone(),
    };
    state.store.create_signing_job(&job)?;
    Ok(job.id)
}

/// `DescribeSigningJob` JSON of a job (`ListSigningJobs` rows are a subset).
fn job_json(j: &SigningJob) -> Value {
    json!({
        "jobId": j.id,
        "source": { "s3": { "bucketName": j.source.bucket, "key": j.source.key, "version": j.source.version } },
        "signedObject": j.signed.as_ref().map(|s| json!({ "s3": { "bucketName": s.object.bucket, "key": s.object.key } })),
        "signingMaterial": { "certificateArn": j.certificate_arn },
        "platformId": j.platform_id, "platformDisplayName": j.platform_display_name,
        "profileName": j.profile_name, "profileVersion": j.profile_version,
        "signingParameters": j.signing_parameters,
        "createdAt": epoch_seconds(j.created_ms),
        "completedAt": j.completed_ms.map(epoch_seconds),
        "status": j.status.as_str(), "statusReason": j.status_reason,
        "jobOwner": j.account_id, "jobInvoker": j.account_id,
        "requestedBy": format!("arn:aws:iam::{}:root", j.account_id),
    })
}

/// Signs and finishes a job (blocking): `Succeeded`, or `Failed` with a reason.
pub(crate) fn run_job(state: &ApiState, id: &str) -> ApiResult<SigningJob> {
    let mut job = load_job(state, id)?;
    match sign_job(state, &job) {
        Ok(signed) => {
            job.status = SigningStatus::Succeeded;
            job.signed = Some(signed);
        }
        Err(reason) => {
            job.status = SigningStatus::Failed;
            job.status_reason = Some(reason);
        }
    }
    job.completed_ms = Some(now_ms());
    state.store.update_signing_job(&job)?;
    Ok(job)
}

/// Runs [`run_job`] in the background.
fn spawn_run(state: &ApiState, id: String) {
    let worker = state.clone();
    tokio::spawn(async move {
        if let Err(e) = worker.blocking(move |s| run_job(s, &id)).await {
            tracing::error!(error = %e.message, "signing job could not be recorded");
        }
    });
}

/// Signing jobs a restart interrupted (still `InProgress`) are run again: signing is repeatable
/// (a signed copy written before the crash is only an older version of the destination key).
/// Without an async runtime to run them on, they end `Failed` with the reason.
pub(crate) fn resume_interrupted(state: &ApiState) -> Result<(), otastream_store::StoreError> {
    let runtime = tokio::runtime::Handle::try_current().is_ok();
    for mut job in state.store.list_signing_jobs()? {
        if job.status != SigningStatus::InProgress {
            continue;
        }
        if runtime {
            tracing::info!(job = %job.id, "resuming a signing job interrupted by a restart");
            spawn_run(state, job.id);
        } else {
            job.status = SigningStatus::Failed;
            job.status_reason = Some("The server restarted while the job was signing".into());
            job.completed_ms = Some(now_ms());
            state.store.update_signing_job(&job)?;
        }
    }
    Ok(())
}

/// The signed copy and its base64 DER signature, or the failure reason.
fn sign_job(state: &ApiState, job: &SigningJob) -> Result<SignedObject, String> {
    if job.platform_id != "AmazonFreeRTOS-Default" {
        return Err(format!(
            "Platform \"{}\" (RSA) is not supported by otastream; use AmazonFreeRTOS-Default",
            job.platform_id
        ));
    }
    let cert_arn = job.certificate_arn.as_str();
    let cert = acm::load(state, cert_arn).map_err(|e| e.message)?;
    let cert = cert.ok_or_else(|| format!("Certificate {cert_arn} was not found in ACM"))?;
    let key = acm::p256_key(&cert.private_key_pem)
        .ok_or_else(|| format!("Certificate {cert_arn} has no ECDSA P-256 private key"))?;
    let (bucket, key_name, version) = (
        job.source.bucket.as_str(),
        job.source.key.as_str(),
        job.source.version.as_str(),
    );
    let object = state
        .store
        .get_object(bucket, key_name, Some(version), None)
        .map_err(|e| {
            format!("Source s3://{bucket}/{key_name} version {version} cannot be read: {e}")
        })?;
    let signature: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&key).sign(&object.data);
    let signature = B64.encode(signature.to_der().as_bytes());
    let dst_bucket = job.destination_bucket.as_str();
    let dst_key = format!("{}{}", job.destination_prefix, job.id);
    let meta = PutMeta {
        content_type: object.info.content_type.clone(),
        user_metadata: Vec::new(),
    };
    let info = state
        .store
        .put_object(dst_bucket, &dst_key, &object.data, meta)
        .map_err(|e| {
            format!("Cannot write the signed object to s3://{dst_bucket}/{dst_key}: {e}")
        })?;
    Ok(SignedObject {
        object: S3Version {
            bucket: dst_bucket.to_owned(),
            key: dst_key,
            version: info.version_id,
        },
        signature,
    })
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The stored job, or `ResourceNotFoundException`.
pub(crate) fn load_job(state: &ApiState, id: &str) -> ApiResult<SigningJob> {
    found(state.store.get_signing_job(id)?, "Signing job", id)
}

pub(crate) async fn start_job(State(state): State<ApiState>, body: Bytes) -> ApiResult<Response> {
    let req: StartJob = parse_json(&body).map_err(|e| ApiError::validation(e.message))?;
    let id = state.blocking(move |s| create_job(s, &req)).await?;
    spawn_run(&state, id.clone());
    Ok(json_ok(
        json!({ "jobId": id, "jobOwner": state.config.account_id }),
    ))
}

pub(crate) async fn describe_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = state.blocking(move |s| load_job(s, &id)).await?;
    Ok(json_ok(job_json(&job)))
}

pub(crate) async fn list_jobs(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    if let Some(status) = q.get("status") {
        validate::one_of("status", status, &["InProgress", "Failed", "Succeeded"])
            .map_err(|e| ApiError::validation(e.message))?;
    }
    let jobs = state.blocking(|s| Ok(s.store.list_signing_jobs()?)).await?;
    let jobs: Vec<Value> = jobs
        .iter()
        .map(job_json)
        .filter(|j| matches_query(j, &q, &["status", "platformId", "requestedBy"]))
        .map(|j| {
            json!({
                "jobId": j["jobId"], "source": j["source"], "signedObject": j["signedObject"],
                "signingMaterial": j["signingMaterial"], "createdAt": j["createdAt"], "status": j["status"],
                "isRevoked": false, "profileName": j["profileName"], "profileVersion": j["profileVersion"],
                "platformId": j["platformId"], "platformDisplayName": j["platformDisplayName"],
                "jobOwner": j["jobOwner"], "jobInvoker": j["jobInvoker"],
            })
        })
        .collect();
    let (page, next) = paginate(jobs, &q, 25).map_err(|e| ApiError::validation(e.message))?;
    Ok(json_ok(with_token(json!({ "jobs": page }), next)))
}
