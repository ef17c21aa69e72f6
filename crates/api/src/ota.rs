//! iot OTA updates: CreateOTAUpdate, GetOTAUpdate, ListOTAUpdates, DeleteOTAUpdate.
//!
//! CreateOTAUpdate validates synchronously, stores the update `CREATE_PENDING` and answers; a
//! background task then resolves every file (existing stream, signer job, custom signature, or
//! an S3 object that it signs and streams itself), creates job `AFR_OTA-<id>` with the `afr_ota`
//! document (PROTOCOL.md §3) and moves the update to `CREATE_COMPLETE`, or to `CREATE_FAILED`
//! with `errorInfo`. The document is built by `ota_doc`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

use otastream_store::{OtaError, OtaUpdate, OtaUpdateStatus};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::jobs;
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate, with_token};
use crate::{ApiState, found, validate};
use crate::{ota_doc, ota_files};

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/otaUpdates", get(list_updates)).route(
        "/otaUpdates/{id}",
        get(get_update).post(create_update).delete(delete_update),
    )
}

fn update_arn(state: &ApiState, id: &str) -> String {
    state.config.arn("iot", &format!("otaupdate/{id}"))
}

/// The job created for an OTA update.
pub(crate) fn job_id(ota_id: &str) -> String {
    format!("AFR_OTA-{ota_id}")
}

/// Checks the request members the CLI does not check (AWS-API.md §7.2).
fn validate_request(req: &Value) -> ApiResult<()> {
    validate::description(req["description"].as_str())?;
    let targets = req["targets"].as_array().filter(|t| !t.is_empty());
    targets
        .ok_or_else(|| ApiError::invalid("targets must name at least one thing or thing group"))?;
    if let Some(protocols) = req.get("protocols") {
        let list = protocols.as_array().filter(|p| (1..=2).contains(&p.len()));
        let list =
            list.ok_or_else(|| ApiError::invalid("protocols must hold 1 or 2 of MQTT, HTTP"))?;
        for p in list {
            validate::one_of(
                "protocols",
                p.as_str().unwrap_or_default(),
                &["MQTT", "HTTP"],
            )?;
        }
    }
    if let Some(sel) = req["targetSelection"].as_str() {
        validate::one_of("targetSelection", sel, &["CONTINUOUS", "SNAPSHOT"])?;
    }
    if let Some(n) = req["awsJobExecutionsRolloutConfig"]["maximumPerMinute"].as_i64() {
        validate::in_range("maximumPerMinute", n, 1, 1000)?;
    }
    if let Some(n) = req["awsJobPresignedUrlConfig"]["expiresInSec"].as_i64() {
        validate::in_range("expiresInSec", n, 60, 3600)?;
    }
    if let Some(n) = req["awsJobTimeoutConfig"]["inProgressTimeoutInMinutes"].as_i64() {
        validate::in_range("inProgressTimeoutInMinutes", n, 1, 10080)?;
    }
    for c in req["awsJobAbortConfig"]["abortCriteriaList"]
        .as_array()
        .into_iter()
        .flatten()
    {
        validate::one_of(
            "failureType",
            c["failureType"].as_str().unwrap_or_default(),
            &["FAILED", "REJECTED", "TIMED_OUT", "ALL"],
        )?;
        validate::one_of(
            "action",
            c["action"].as_str().unwrap_or_default(),
            &["CANCEL"],
        )?;
        let pct = c["thresholdPercentage"].as_f64().unwrap_or(-1.0);
        if !(0.0..=100.0).contains(&pct) {
            return Err(ApiError::invalid(
                "thresholdPercentage must be between 0 and 100",
            ));
        }
        validate::in_range(
            "minNumberOfExecutedThings",
            c["minNumberOfExecutedThings"].as_i64().unwrap_or(0),
            1,
            i64::MAX,
        )?;
    }
    let role = req["roleArn"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("roleArn is required"))?;
    validate::role_arn(Some(role))?;
    let files = req["files"].as_array().filter(|f| !f.is_empty());
    let files = files.ok_or_else(|| ApiError::invalid("files must hold at least one file"))?;
    for f in files {
        ota_files::validate_file(f)?;
    }
    Ok(())
}

async fn create_update(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("otaUpdateId", &id, 128)?;
    let req: Value = parse_json(&body)?;
    if !req.is_object() {
        return Err(ApiError::invalid("The request body must be a JSON object"));
    }
    validate_request(&req)?;
    let now = now_ms();
    let arn = update_arn(&state, &id);
    let job = job_id(&id);
    let given = |member: &str| req.get(member).filter(|v| !v.is_null()).cloned();
    let strings = |member: &str| -> Vec<String> {
        req[member]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let record = OtaUpdate {
        id: id.clone(),
        arn: arn.clone(),
        created_ms: now,
        modified_ms: now,
        description: req["description"].as_str().map(str::to_owned),
        targets: strings("targets"),
        protocols: if req.get("protocols").is_some() {
            strings("protocols")
        } else {
            vec!["MQTT".to_owned()]
        },
        target_selection: req["targetSelection"]
            .as_str()
            .unwrap_or("SNAPSHOT")
            .to_owned(),
        rollout_config: given("awsJobExecutionsRolloutConfig"),
        presigned_url_config: given("awsJobPresignedUrlConfig")
            .unwrap_or_else(|| json!({ "expiresInSec": 1800 })),
        abort_config: given("awsJobAbortConfig"),
        timeout_config: given("awsJobTimeoutConfig"),
        files: req["files"].as_array().cloned().unwrap_or_default(),
        additional_parameters: given("additionalParameters"),
        role_arn: req["roleArn"].as_str().unwrap_or_default().to_owned(),
        status: OtaUpdateStatus::CreatePending,
        job_id: None,
        job_arn: None,
        error: None,
        created_stream: None,
        streams: Vec::new(),
    };
    state
        .blocking(move |s| {
            s.store.create_ota_update(&record).map_err(|e| match e {
                otastream_store::StoreError::AlreadyExists { .. } => ApiError::already_exists(
                    format!("OTA update {} already exists", record.id),
                    &record.id,
                    &record.arn,
                ),
                other => other.into(),
            })
        })
        .await?;
    spawn_processing(&state, id.clone());
    Ok(json_ok(json!({
        "otaUpdateId": id, "otaUpdateArn": arn, "otaUpdateStatus": "CREATE_PENDING",
        "awsIotJobId": job, "awsIotJobArn": state.config.arn("iot", &format!("job/{}", job_id(&id))),
    })))
}

/// Finishes a pending OTA update (blocking): files → stream → job, then the final status.
fn process(state: &ApiState, id: &str) -> ApiResult<()> {
    let Some(mut record) = state.store.get_ota_update(id)? else {
        return Ok(());
    };
    if state.jobs.read(|e| e.job(&job_id(id)).is_some()) {
        // Left by an attempt interrupted after the job was created: this update owns it.
        jobs::delete_job_record(state, &job_id(id), true)?;
    }
    let outcome = ota_doc::build(state, id, &record);
    match outcome {
        Ok(built) => {
            let abort = record
                .abort_config
                .as_ref()
                .map(|a| &a["abortCriteriaList"])
                .filter(|a| a.is_array());
            let body = json!({
                "targets": record.targets,
                "document": built.document,
                "description": format!("OTA update {id}"),
                "targetSelection": record.target_selection,
                "presignedUrlConfig": record.presigned_url_config,
                "jobExecutionsRolloutConfig": record.rollout_config,
                "abortConfig": abort.map(|a| json!({ "criteriaList": a })),
                "timeoutConfig": record.timeout_config,
            });
            match jobs::create_job_record(state, &job_id(id), body) {
                Ok(arn) => {
                    record.status = OtaUpdateStatus::CreateComplete;
                    record.job_id = Some(job_id(id));
                    record.job_arn = Some(arn);
                }
                Err(e) => fail(&mut record, e.code, &e.message),
            }
            record.files = built.files;
            if let Some(stream) = built.created_stream {
                if record.status == OtaUpdateStatus::CreateFailed {
                    let _ = state.store.delete_stream(&stream);
                } else {
                    record.created_stream = Some(stream);
                }
            }
            record.streams = built.streams;
        }
        Err(e) => fail(&mut record, e.code, &e.message),
    }
    record.modified_ms = now_ms();
    match state.store.update_ota_update(&record) {
        // Deleted while it was being created: nothing left to record.
        Err(otastream_store::StoreError::NotFound { .. }) => Ok(()),
        other => Ok(other?),
    }
}

/// Finishes a pending update in the background.
fn spawn_processing(state: &ApiState, id: String) {
    let worker = state.clone();
    tokio::spawn(async move {
        if let Err(e) = worker.blocking(move |s| process(s, &id)).await {
            tracing::error!(error = %e.message, "OTA update could not be recorded");
        }
    });
}

/// Updates left `CREATE_PENDING` by a restart (their task died with the process) are processed
/// again (every step can be repeated: the stream id is derived from the update, a job left by
/// the interrupted attempt is replaced). Without a tokio runtime they become `CREATE_FAILED`.
pub(crate) fn resume_interrupted(state: &ApiState) -> Result<(), otastream_store::StoreError> {
    let runtime = tokio::runtime::Handle::try_current().is_ok();
    for mut record in state.store.list_ota_updates()? {
        if record.status != OtaUpdateStatus::CreatePending {
            continue;
        }
        if runtime {
            tracing::info!(ota = %record.id, "resuming an OTA update interrupted by a restart");
            spawn_processing(state, record.id);
        } else {
            fail(
                &mut record,
                "InternalFailureException",
                "The server restarted while the update was being created",
            );
            state.store.update_ota_update(&record)?;
        }
    }
    Ok(())
}

fn fail(record: &mut OtaUpdate, code: &str, message: &str) {
    record.status = OtaUpdateStatus::CreateFailed;
    record.error = Some(OtaError {
        code: code.to_owned(),
        message: message.to_owned(),
    });
}

fn load(state: &ApiState, id: &str) -> ApiResult<OtaUpdate> {
    found(state.store.get_ota_update(id)?, "OTA update", id)
}

/// `GetOTAUpdate`'s `otaUpdateInfo`.
fn info_json(r: &OtaUpdate) -> Value {
    json!({
        "otaUpdateId": r.id, "otaUpdateArn": r.arn,
        "creationDate": epoch_seconds(r.created_ms), "lastModifiedDate": epoch_seconds(r.modified_ms),
        "description": r.description, "targets": r.targets, "protocols": r.protocols,
        "awsJobExecutionsRolloutConfig": r.rollout_config,
        "awsJobPresignedUrlConfig": r.presigned_url_config,
        "targetSelection": r.target_selection, "otaUpdateFiles": r.files,
        "otaUpdateStatus": r.status.as_str(), "awsIotJobId": r.job_id, "awsIotJobArn": r.job_arn,
        "errorInfo": r.error.as_ref().map(|e| json!({ "code": e.code, "message": e.message })),
        "additionalParameters": r.additional_parameters,
    })
}

async fn get_update(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    validate::resource_id("otaUpdateId", &id, 128)?;
    let record = state.blocking(move |s| load(s, &id)).await?;
    Ok(json_ok(json!({ "otaUpdateInfo": info_json(&record) })))
}

async fn list_updates(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let statuses = OtaUpdateStatus::ALL.map(OtaUpdateStatus::as_str);
    if let Some(status) = q.get("otaUpdateStatus") {
        validate::one_of("otaUpdateStatus", status, &statuses)?;
    }
    let records = state.blocking(|s| Ok(s.store.list_ota_updates()?)).await?;
    let rows: Vec<Value> = records
        .iter()
        .filter(|r| q.get("otaUpdateStatus").is_none_or(|s| r.status.as_str() == s))
        .map(|r| json!({ "otaUpdateId": r.id, "otaUpdateArn": r.arn, "creationDate": epoch_seconds(r.created_ms) }))
        .collect();
    let (page, next) = paginate(rows, &q, 250)?;
    Ok(json_ok(with_token(json!({ "otaUpdates": page }), next)))
}

async fn delete_update(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("otaUpdateId", &id, 128)?;
    let (delete_stream, force_job) = (flag(&q, "deleteStream"), flag(&q, "forceDeleteAWSJob"));
    state
        .blocking(move |s| {
            let record = load(s, &id)?;
            if record.status == OtaUpdateStatus::CreatePending {
                return Err(ApiError::conflict(
                    "VersionConflictException",
                    format!("OTA update {id} is still being created"),
                ));
            }
            if force_job && s.jobs.read(|e| e.job(&job_id(&id)).is_some()) {
                jobs::delete_job_record(s, &job_id(&id), true)?;
            }
            s.store.delete_ota_update(&id)?;
            // Only a stream the OTA process created itself is deleted; a user's stream is kept.
            if let Some(stream) = record.created_stream.as_deref().filter(|_| delete_stream) {
                s.store.delete_stream(stream)?;
            }
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

/// The id of an OTA update whose files use `stream`, if any (DeleteStream conflicts).
pub(crate) fn update_using_stream(state: &ApiState, stream: &str) -> ApiResult<Option<String>> {
    Ok(state
        .store
        .list_ota_updates()?
        .into_iter()
        .find(|r| r.streams.iter().any(|s| s == stream))
        .map(|r| r.id))
}
