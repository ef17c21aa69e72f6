//! iot policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion,
//! ListPolicyVersions, GetPolicyVersion, SetDefaultPolicyVersion, DeletePolicyVersion, AttachPolicy,
//! DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy.
//!
//! Every document is checked with [`otastream_iot_policy::Policy::parse`] before it is stored
//! (`MalformedPolicyException`); the version rules (five at most, ids never reused, the default
//! cannot be deleted) are the store's, checked in one transaction.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use otastream_iot_policy::{DEV_THING_POLICY_DOCUMENT, DEV_THING_POLICY_NAME};
use otastream_store::{Backend, Policy, PolicyVersion, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate_marker};
use crate::{ApiConfig, ApiState, found};

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/policies", get(list_policies))
        .route(
            "/policies/{name}",
            get(get_policy).post(create_policy).delete(delete_policy),
        )
        .route(
            "/policies/{name}/version",
            get(list_policy_versions).post(create_policy_version),
        )
        .route(
            "/policies/{name}/version/{version}",
            get(get_policy_version)
                .patch(set_default_policy_version)
                .delete(delete_policy_version),
        )
        .route(
            "/target-policies/{name}",
            axum::routing::put(attach_policy).post(detach_policy),
        )
        .route("/attached-policies/{target}", post(list_attached_policies))
        .route("/policy-targets/{name}", post(list_targets_for_policy))
}

/// `policyName`: `[\w+=,.@-]+`, 1..=128.
fn check_name(name: &str) -> ApiResult<()> {
    let valid = (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "policyName '{name}' must match [\\w+=,.@-]+ and be 1 to 128 characters"
        )))
    }
}

fn check_document(document: &str) -> ApiResult<()> {
    otastream_iot_policy::Policy::parse(document)?;
    Ok(())
}

fn version_id(text: &str) -> ApiResult<u64> {
    text.parse()
        .map_err(|_| ApiError::invalid(format!("policyVersionId '{text}' is not a number")))
}

fn load_policy(state: &ApiState, name: &str) -> ApiResult<Policy> {
    found(state.store.get_policy(name)?, "Policy", name)
}

fn load_version(state: &ApiState, name: &str, id: u64) -> ApiResult<PolicyVersion> {
    found(
        state.store.get_policy_version(name, id)?,
        "Policy version",
        &format!("{name}/{id}"),
    )
}

fn new_policy(config: &ApiConfig, name: &str, document: &str) -> (Policy, PolicyVersion) {
    let now = now_ms();
    let policy = Policy {
        name: name.to_owned(),
        arn: config.arn("iot", &format!("policy/{name}")),
        default_version_id: 1,
        next_version_id: 2,
        created_ms: now,
        modified_ms: now,
        generation_id: uuid::Uuid::new_v4().simple().to_string(),
    };
    let version = PolicyVersion {
        policy_name: name.to_owned(),
        version_id: 1,
        document: document.to_owned(),
        created_ms: now,
    };
    (policy, version)
}

/// Creates the built-in development policy if it is missing; returns its name.
pub(crate) fn ensure_dev_policy(store: &dyn Backend, config: &ApiConfig) -> ApiResult<String> {
    if store.get_policy(DEV_THING_POLICY_NAME)?.is_none() {
        let (policy, version) =
            new_policy(config, DEV_THING_POLICY_NAME, DEV_THING_POLICY_DOCUMENT);
        match store.create_policy(&policy, &version) {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(DEV_THING_POLICY_NAME.to_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentRequest {
    policy_document: String,
}

async fn create_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    check_name(&name)?;
    let req: DocumentRequest = parse_json(&body)?;
    check_document(&req.policy_document)?;
    let (policy, version) = new_policy(&state.config, &name, &req.policy_document);
    state
        .blocking(move |s| {
            s.store
                .create_policy(&policy, &version)
                .map_err(|e| match e {
                    StoreError::AlreadyExists { .. } => ApiError::already_exists(
                        format!("Policy {} already exists", policy.name),
                        &policy.name,
                        &policy.arn,
                    ),
                    other => other.into(),
                })?;
            Ok(json_ok(json!({
                "policyName": policy.name, "policyArn": policy.arn,
                "policyDocument": version.document, "policyVersionId": "1",
            })))
        })
        .await
}

async fn get_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (policy, version) = state
        .blocking(move |s| {
            let policy = load_policy(s, &name)?;
            let version = load_version(s, &name, policy.default_version_id)?;
            Ok((policy, version))
        })
        .await?;
    Ok(json_ok(json!({
        "policyName": policy.name, "policyArn": policy.arn, "policyDocument": version.document,
        "defaultVersionId": policy.default_version_id.to_string(),
        "creationDate": epoch_seconds(policy.created_ms),
        "lastModifiedDate": epoch_seconds(policy.modified_ms),
        "generationId": policy.generation_id,
    })))
}

async fn list_policies(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let mut policies = state.blocking(|s| Ok(s.store.list_policies()?)).await?;
    if !flag(&q, "isAscendingOrder") {
        policies.reverse();
    }
    let items: Vec<Value> = policies
        .iter()
        .map(|p| json!({ "policyName": p.name, "policyArn": p.arn }))
        .collect();
    let (page, next) = paginate_marker(items, &q, 250)?;
    Ok(json_ok(json!({ "policies": page, "nextMarker": next })))
}

async fn delete_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    state
        .blocking(move |s| Ok(s.store.delete_policy(&name)?))
        .await?;
    Ok(json_ok(json!({})))
}

async fn create_policy_version(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: DocumentRequest = parse_json(&body)?;
    check_document(&req.policy_document)?;
    let set_as_default = flag(&q, "setAsDefault");
    let (policy, version) = state
        .blocking(move |s| {
            Ok(s.store.create_policy_version(
                &name,
                &req.policy_document,
                set_as_default,
                now_ms(),
            )?)
        })
        .await?;
    Ok(json_ok(json!({
        "policyArn": policy.arn, "policyDocument": version.document,
        "policyVersionId": version.version_id.to_string(),
        "isDefaultVersion": policy.default_version_id == version.version_id,
    })))
}

async fn list_policy_versions(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let (policy, versions) = state
        .blocking(move |s| {
            let policy = load_policy(s, &name)?;
            Ok((policy, s.store.list_policy_versions(&name)?))
        })
        .await?;
    let items: Vec<Value> = versions
        .iter()
        .rev()
        .map(|v| {
            json!({
                "versionId": v.version_id.to_string(),
                "isDefaultVersion": v.version_id == policy.default_version_id,
                "createDate": epoch_seconds(v.created_ms),
            })
        })
        .collect();
    Ok(json_ok(json!({ "policyVersions": items })))
}

async fn get_policy_version(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = version_id(&version)?;
    let (policy, version) = state
        .blocking(move |s| Ok((load_policy(s, &name)?, load_version(s, &name, id)?)))
        .await?;
    Ok(json_ok(json!({
        "policyArn": policy.arn, "policyName": policy.name, "policyDocument": version.document,
        "policyVersionId": version.version_id.to_string(),
        "isDefaultVersion": version.version_id == policy.default_version_id,
        "creationDate": epoch_seconds(version.created_ms),
        "lastModifiedDate": epoch_seconds(version.created_ms),
        "generationId": policy.generation_id,
    })))
}

async fn set_default_policy_version(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = version_id(&version)?;
    state
        .blocking(move |s| Ok(s.store.set_default_policy_version(&name, id, now_ms())?))
        .await?;
    Ok(json_ok(json!({})))
}

async fn delete_policy_version(
    State(state): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = version_id(&version)?;
    state
        .blocking(move |s| Ok(s.store.delete_policy_version(&name, id)?))
        .await?;
    Ok(json_ok(json!({})))
}

/// Checks that a policy target exists: a registered certificate's ARN or a thing group's ARN of
/// this account and region (`ResourceNotFoundException` otherwise).
pub(crate) fn check_target(state: &ApiState, target: &str) -> ApiResult<()> {
    let cert_prefix = state.config.arn("iot", "cert/");
    let group_prefix = state.config.arn("iot", "thinggroup/");
    let exists = if let Some(id) = target.strip_prefix(&cert_prefix) {
        state.store.get_device_certificate(id)?.is_some()
    } else if let Some(group) = target.strip_prefix(&group_prefix) {
        state.store.get_thing_group(group)?.is_some()
    } else {
        false
    };
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "Target {target} does not exist"
        )))
    }
}

#[derive(Deserialize)]
struct TargetRequest {
    target: String,
}

async fn attach_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: TargetRequest = parse_json(&body)?;
    state
        .blocking(move |s| {
            load_policy(s, &name)?;
            check_target(s, &req.target)?;
            Ok(s.store.attach_policy(&name, &req.target)?)
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn detach_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: TargetRequest = parse_json(&body)?;
    state
        .blocking(move |s| Ok(s.store.detach_policy(&name, &req.target)?))
        .await?;
    Ok(json_ok(json!({})))
}

async fn list_attached_policies(
    State(state): State<ApiState>,
    Path(target): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let policies = state
        .blocking(move |s| {
            check_target(s, &target)?;
            let names = s.store.policies_for_target(&target)?;
            Ok(names
                .iter()
                .map(|n| json!({ "policyName": n, "policyArn": s.config.arn("iot", &format!("policy/{n}")) }))
                .collect::<Vec<_>>())
        })
        .await?;
    let (page, next) = paginate_marker(policies, &q, 250)?;
    Ok(json_ok(json!({ "policies": page, "nextMarker": next })))
}

async fn list_targets_for_policy(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let targets = state
        .blocking(move |s| {
            load_policy(s, &name)?;
            Ok(s.store.targets_for_policy(&name)?)
        })
        .await?;
    let (page, next) = paginate_marker(targets, &q, 250)?;
    Ok(json_ok(json!({ "targets": page, "nextMarker": next })))
}
