//! AWS Signer: ListSigningPlatforms, GetSigningPlatform, Put/Get/List/CancelSigningProfile;
//! the signing jobs (StartSigningJob, DescribeSigningJob, ListSigningJobs) are in `signer_jobs`.
//!
//! A signing job reads the exact source object version, signs SHA-256/ECDSA (DER) with the
//! profile's ACM certificate key (p256), copies the image to `<prefix><jobId>` in the destination
//! bucket and records the base64 signature for the OTA job document. Jobs start `InProgress`
//! and finish `Succeeded`, or `Failed` with a `statusReason` (unknown certificate, missing
//! source version, unsupported platform).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use otastream_store::{ProfileStatus, SigningProfile};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{QueryMap, flag, matches_query, paginate, with_token};
use crate::{ApiState, found, signer_jobs, validate};

/// Routes of this module (signer scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/signing-platforms", get(list_platforms))
        .route("/signing-platforms/{id}", get(get_platform))
        .route("/signing-profiles", get(list_profiles))
        .route(
            "/signing-profiles/{name}",
            get(get_profile).put(put_profile).delete(cancel_profile),
        )
        .route(
            "/signing-jobs",
            get(signer_jobs::list_jobs).post(signer_jobs::start_job),
        )
        .route("/signing-jobs/{id}", get(signer_jobs::describe_job))
}

/// The two FreeRTOS platforms (AWS-API.md §7.6).
fn platforms() -> [Value; 2] {
    let platform = |id: &str, name: &str, target: &str, enc: &str, hash: &str| {
        json!({
            "platformId": id, "displayName": name, "partner": "AmazonFreeRTOS", "target": target, "category": "AWSIoT",
            "signingConfiguration": {
                "encryptionAlgorithmOptions": { "allowedValues": [enc], "defaultValue": enc },
                "hashAlgorithmOptions": { "allowedValues": [hash], "defaultValue": hash },
            },
            "signingImageFormat": { "supportedFormats": ["JSONEmbedded"], "defaultFormat": "JSONEmbedded" },
            "maxSizeInMB": 16, "revocationSupported": false,
        })
    };
    [
        platform(
            "AmazonFreeRTOS-Default",
            "Amazon FreeRTOS SHA256-ECDSA",
            "SHA256-ECDSA",
            "ECDSA",
            "SHA256",
        ),
        platform(
            "AmazonFreeRTOS-TI-CC3220SF",
            "Amazon FreeRTOS TI CC3220SF",
            "SHA1-RSA-TISHA1",
            "RSA",
            "SHA1",
        ),
    ]
}

fn platform(id: &str) -> Option<Value> {
    platforms().into_iter().find(|p| p["platformId"] == id)
}

async fn list_platforms(Query(q): Query<QueryMap>) -> ApiResult<Response> {
    let list: Vec<Value> = platforms()
        .into_iter()
        .filter(|p| matches_query(p, &q, &["category", "partner", "target"]))
        .collect();
    let (page, next) = paginate(list, &q, 25).map_err(|e| ApiError::validation(e.message))?;
    Ok(json_ok(with_token(json!({ "platforms": page }), next)))
}

async fn get_platform(Path(id): Path<String>) -> ApiResult<Response> {
    platform(&id)
        .map(json_ok)
        .ok_or_else(|| ApiError::not_found(format!("Platform {id} does not exist")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutProfile {
    signing_material: Option<Value>,
    platform_id: Option<String>,
    signing_parameters: Option<Value>,
    signature_validity_period: Option<Value>,
    overrides: Option<Value>,
    tags: Option<Value>,
}

fn profile_arn(state: &ApiState, name: &str) -> String {
    state
        .config
        .arn("signer", &format!("/signing-profiles/{name}"))
}

/// Stores a profile (new version each time); shared with OTA's `startSigningJobParameter`.
pub(crate) fn put_profile_record(
    state: &ApiState,
    name: &str,
    certificate_arn: &str,
    platform_id: &str,
    params: Value,
) -> ApiResult<SigningProfile> {
    validate::profile_name(name)?;
    let platform = platform(platform_id)
        .ok_or_else(|| ApiError::validation(format!("Unknown platformId {platform_id}")))?;
    let version: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(10)
        .collect();
    let arn = profile_arn(state, name);
    let profile = SigningProfile {
        name: name.to_owned(),
        version_arn: format!("{arn}/{version}"),
        version,
        arn,
        certificate_arn: certificate_arn.to_owned(),
        platform_id: platform_id.to_owned(),
        platform_display_name: platform["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        signing_parameters: params,
        status: ProfileStatus::Active,
        signature_validity_period: json!({ "value": 135, "type": "MONTHS" }),
        overrides: None,
        tags: None,
    };
    state.store.put_signing_profile(&profile)?;
    Ok(profile)
}

/// `GetSigningProfile` / `ListSigningProfiles` JSON of a profile.
fn profile_json(p: &SigningProfile) -> Value {
    json!({
        "profileName": p.name, "profileVersion": p.version, "profileVersionArn": p.version_arn,
        "arn": p.arn, "signingMaterial": { "certificateArn": p.certificate_arn },
        "platformId": p.platform_id, "platformDisplayName": p.platform_display_name,
        "signingParameters": p.signing_parameters, "status": p.status.as_str(),
        "signatureValidityPeriod": p.signature_validity_period, "overrides": p.overrides,
        "tags": p.tags,
    })
}

async fn put_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::profile_name(&name)?;
    let req: PutProfile = parse_json(&body).map_err(|e| ApiError::validation(e.message))?;
    let cert = req
        .signing_material
        .as_ref()
        .and_then(|m| m["certificateArn"].as_str())
        .map(str::to_owned);
    let cert =
        cert.ok_or_else(|| ApiError::validation("signingMaterial.certificateArn is required"))?;
    let platform_id = req
        .platform_id
        .ok_or_else(|| ApiError::validation("platformId is required"))?;
    let params = req.signing_parameters.unwrap_or_else(|| json!({}));
    let extras = (req.signature_validity_period, req.overrides, req.tags);
    let profile = state
        .blocking(move |s| {
            let mut profile = put_profile_record(s, &name, &cert, &platform_id, params)?;
            if let Some(v) = extras.0 {
                profile.signature_validity_period = v;
            }
            (profile.overrides, profile.tags) = (extras.1, extras.2);
            s.store.put_signing_profile(&profile)?;
            Ok(profile)
        })
        .await?;
    Ok(json_ok(
        json!({ "arn": profile.arn, "profileVersion": profile.version, "profileVersionArn": profile.version_arn }),
    ))
}

/// The stored profile, or `ResourceNotFoundException`.
pub(crate) fn load_profile(state: &ApiState, name: &str) -> ApiResult<SigningProfile> {
    found(
        state.store.get_signing_profile(name)?,
        "Signing profile",
        name,
    )
}

async fn get_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::profile_name(&name)?;
    let profile = state.blocking(move |s| load_profile(s, &name)).await?;
    Ok(json_ok(profile_json(&profile)))
}

async fn list_profiles(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let include_canceled = flag(&q, "includeCanceled");
    let profiles = state
        .blocking(|s| Ok(s.store.list_signing_profiles()?))
        .await?;
    let profiles: Vec<Value> = profiles
        .iter()
        .filter(|p| include_canceled || p.status == ProfileStatus::Active)
        .filter(|p| q.get("platformId").is_none_or(|id| &p.platform_id == id))
        .map(profile_json)
        .collect();
    let (page, next) = paginate(profiles, &q, 25).map_err(|e| ApiError::validation(e.message))?;
    Ok(json_ok(with_token(json!({ "profiles": page }), next)))
}

async fn cancel_profile(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::profile_name(&name)?;
    state
        .blocking(move |s| {
            let mut profile = load_profile(s, &name)?;
            profile.status = ProfileStatus::Canceled;
            s.store.put_signing_profile(&profile)?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}
