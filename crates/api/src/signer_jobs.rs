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
use otastream_store::PutMeta;
use p256::ecdsa::signature::Signer as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::signer::load_profile;
use crate::util::{
    QueryMap, epoch_seconds, matches_query, now_ms, paginate, public_view, with_token,
};
use crate::{acm, validate};

const JOB: &str = "signer-job";
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
    if profile["status"] != "Active" {
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
    let id = uuid::Uuid::new_v4().to_string();
    let doc = json!({
        "jobId": id, "source": { "s3": src }, "signingMaterial": profile["signingMaterial"],
        "platformId": profile["platformId"], "platformDisplayName": profile["platformDisplayName"],
        "profileName": name, "profileVersion": profile["profileVersion"], "signingParameters": profile["signingParameters"],
        "createdAt": epoch_seconds(now_ms()), "status": "InProgress", "jobOwner": state.config.account_id,
        "jobInvoker": state.config.account_id, "requestedBy": format!("arn:aws:iam::{}:root", state.config.account_id),
        "_destination": dst,
    });
    state.store.insert_resource(JOB, &id, None, &doc)?;
    Ok(id)
}

/// Signs and finishes a job (blocking): `Succeeded`, or `Failed` with a reason.
pub(crate) fn run_job(state: &ApiState, id: &str) -> ApiResult<Value> {
    let mut doc = load_job(state, id)?;
    match sign_job(state, &doc) {
        Ok((bucket, key, version, signature)) => {
            doc["status"] = json!("Succeeded");
            doc["signedObject"] = json!({ "s3": { "bucketName": bucket, "key": key } });
            doc["_signedVersion"] = json!(version);
            doc["_signature"] = json!(signature);
        }
        Err(reason) => {
            doc["status"] = json!("Failed");
            doc["statusReason"] = json!(reason);
        }
    }
    doc["completedAt"] = epoch_seconds(now_ms());
    state.store.put_resource(JOB, id, None, &doc)?;
    Ok(doc)
}

/// `(bucket, key, version, base64 DER signature)` of the signed copy, or the failure reason.
fn sign_job(state: &ApiState, job: &Value) -> Result<(String, String, String, String), String> {
    if job["platformId"] != "AmazonFreeRTOS-Default" {
        return Err(format!(
            "Platform {} (RSA) is not supported by otastream; use AmazonFreeRTOS-Default",
            job["platformId"]
        ));
    }
    let cert_arn = job["signingMaterial"]["certificateArn"]
        .as_str()
        .unwrap_or_default();
    let cert = acm::load(state, cert_arn).map_err(|e| e.message)?;
    let cert = cert.ok_or_else(|| format!("Certificate {cert_arn} was not found in ACM"))?;
    let key_pem = cert["_pem"]["privateKey"].as_str().unwrap_or_default();
    let key = acm::p256_key(key_pem)
        .ok_or_else(|| format!("Certificate {cert_arn} has no ECDSA P-256 private key"))?;
    let src = &job["source"]["s3"];
    let (bucket, key_name, version) = (
        str_of(&src["bucketName"]),
        str_of(&src["key"]),
        str_of(&src["version"]),
    );
    let object = state
        .store
        .get_object(bucket, key_name, Some(version))
        .map_err(|e| {
            format!("Source s3://{bucket}/{key_name} version {version} cannot be read: {e}")
        })?;
    let signature: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&key).sign(&object.data);
    let signature = B64.encode(signature.to_der().as_bytes());
    let dst = &job["_destination"];
    let dst_bucket = str_of(&dst["bucketName"]);
    let dst_key = format!("{}{}", str_of(&dst["prefix"]), str_of(&job["jobId"]));
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
    Ok((dst_bucket.to_owned(), dst_key, info.version_id, signature))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The stored job, or `ResourceNotFoundException`.
pub(crate) fn load_job(state: &ApiState, id: &str) -> ApiResult<Value> {
    state.load(JOB, id, "Signing job")
}

pub(crate) async fn start_job(State(state): State<ApiState>, body: Bytes) -> ApiResult<Response> {
    let req: StartJob = parse_json(&body).map_err(|e| ApiError::validation(e.message))?;
    let id = state.blocking(move |s| create_job(s, &req)).await?;
    let (worker, job_id) = (state.clone(), id.clone());
    tokio::spawn(async move {
        if let Err(e) = worker.blocking(move |s| run_job(s, &job_id)).await {
            tracing::error!(error = %e.message, "signing job could not be recorded");
        }
    });
    Ok(json_ok(
        json!({ "jobId": id, "jobOwner": state.config.account_id }),
    ))
}

pub(crate) async fn describe_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(json_ok(public_view(
        state.blocking(move |s| load_job(s, &id)).await?,
    )))
}

pub(crate) async fn list_jobs(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    if let Some(status) = q.get("status") {
        validate::one_of("status", status, &["InProgress", "Failed", "Succeeded"])
            .map_err(|e| ApiError::validation(e.message))?;
    }
    let jobs = state.list_all(JOB).await?;
    let jobs: Vec<Value> = jobs
        .into_iter()
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
