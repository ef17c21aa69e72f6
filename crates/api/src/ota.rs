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

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::jobs;
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate, public_view, with_token};
use crate::validate;
use crate::{ota_doc, ota_files};

const KIND: &str = "ota-update";

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
    let now = epoch_seconds(now_ms());
    let arn = update_arn(&state, &id);
    let job = job_id(&id);
    let record = json!({
        "otaUpdateId": id, "otaUpdateArn": arn, "creationDate": now, "lastModifiedDate": now,
        "description": req["description"], "targets": req["targets"],
        "protocols": req.get("protocols").cloned().unwrap_or_else(|| json!(["MQTT"])),
        "awsJobExecutionsRolloutConfig": req["awsJobExecutionsRolloutConfig"],
        "awsJobPresignedUrlConfig": req.get("awsJobPresignedUrlConfig").cloned().unwrap_or_else(|| json!({ "expiresInSec": 1800 })),
        "targetSelection": req.get("targetSelection").cloned().unwrap_or_else(|| json!("SNAPSHOT")),
        "otaUpdateFiles": req["files"], "otaUpdateStatus": "CREATE_PENDING",
        "additionalParameters": req["additionalParameters"], "_roleArn": req["roleArn"],
        "_abortConfig": req["awsJobAbortConfig"], "_timeoutConfig": req["awsJobTimeoutConfig"],
    });
    let (rec, pending_id) = (record.clone(), id.clone());
    state
        .blocking(move |s| {
            if s.store.get_resource(KIND, &pending_id)?.is_some() {
                let arn = update_arn(s, &pending_id);
                return Err(ApiError::already_exists(
                    format!("OTA update {pending_id} already exists"),
                    &pending_id,
                    &arn,
                ));
            }
            s.store.insert_resource(KIND, &pending_id, None, &rec)?;
            Ok(())
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
    let Some(mut record) = state.store.get_resource(KIND, id)? else {
        return Ok(());
    };
    if state.jobs.read(|e| e.job(&job_id(id)).is_some()) {
        // Left by an attempt interrupted after the job was created: this update owns it.
        jobs::delete_job_record(state, &job_id(id), true)?;
    }
    let outcome = ota_doc::build(state, id, &record);
    match outcome {
        Ok(built) => {
            let abort = &record["_abortConfig"]["abortCriteriaList"];
            let body = json!({
                "targets": record["targets"],
                "document": built.document,
                "description": format!("OTA update {id}"),
                "targetSelection": record["targetSelection"],
                "presignedUrlConfig": record["awsJobPresignedUrlConfig"],
                "jobExecutionsRolloutConfig": record["awsJobExecutionsRolloutConfig"],
                "abortConfig": if abort.is_array() { json!({ "criteriaList": abort }) } else { Value::Null },
                "timeoutConfig": record["_timeoutConfig"],
            });
            match jobs::create_job_record(state, &job_id(id), body) {
                Ok(arn) => {
                    record["otaUpdateStatus"] = json!("CREATE_COMPLETE");
                    record["awsIotJobId"] = json!(job_id(id));
                    record["awsIotJobArn"] = json!(arn);
                }
                Err(e) => fail(&mut record, e.code, &e.message),
            }
            record["otaUpdateFiles"] = built.files;
            if let Some(stream) = built.created_stream {
                if record["otaUpdateStatus"] == "CREATE_FAILED" {
                    let _ = state.store.delete_stream(&stream);
                } else {
                    record["_createdStream"] = json!(stream);
                }
            }
            record["_streams"] = json!(built.streams);
        }
        Err(e) => fail(&mut record, e.code, &e.message),
    }
    record["lastModifiedDate"] = epoch_seconds(now_ms());
    state.store.put_resource(KIND, id, None, &record)?;
    Ok(())
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
    for (id, mut record) in state.store.list_resources(KIND, None)? {
        if record["otaUpdateStatus"] != "CREATE_PENDING" {
            continue;
        }
        if runtime {
            tracing::info!(ota = %id, "resuming an OTA update interrupted by a restart");
            spawn_processing(state, id);
        } else {
            fail(
                &mut record,
                "InternalFailureException",
                "The server restarted while the update was being created",
            );
            state.store.put_resource(KIND, &id, None, &record)?;
        }
    }
    Ok(())
}

fn fail(record: &mut Value, code: &str, message: &str) {
    record["otaUpdateStatus"] = json!("CREATE_FAILED");
    record["errorInfo"] = json!({ "code": code, "message": message });
}

fn load(state: &ApiState, id: &str) -> ApiResult<Value> {
    state.load(KIND, id, "OTA update")
}

async fn get_update(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    validate::resource_id("otaUpdateId", &id, 128)?;
    let record = state.blocking(move |s| load(s, &id)).await?;
    Ok(json_ok(json!({ "otaUpdateInfo": public_view(record) })))
}

async fn list_updates(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let statuses = [
        "CREATE_PENDING",
        "CREATE_IN_PROGRESS",
        "CREATE_COMPLETE",
        "CREATE_FAILED",
        "DELETE_IN_PROGRESS",
        "DELETE_FAILED",
    ];
    if let Some(status) = q.get("otaUpdateStatus") {
        validate::one_of("otaUpdateStatus", status, &statuses)?;
    }
    let records = state.list_all(KIND).await?;
    let rows: Vec<Value> = records
        .into_iter()
        .filter(|r| q.get("otaUpdateStatus").is_none_or(|s| r["otaUpdateStatus"] == json!(s)))
        .map(|r| json!({ "otaUpdateId": r["otaUpdateId"], "otaUpdateArn": r["otaUpdateArn"], "creationDate": r["creationDate"] }))
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
            if record["otaUpdateStatus"] == "CREATE_PENDING" {
                return Err(ApiError::conflict(
                    "VersionConflictException",
                    format!("OTA update {id} is still being created"),
                ));
            }
            if force_job && s.jobs.read(|e| e.job(&job_id(&id)).is_some()) {
                jobs::delete_job_record(s, &job_id(&id), true)?;
            }
            s.store.delete_resource(KIND, &id)?;
            // Only a stream the OTA process created itself is deleted; a user's stream is kept.
            if let Some(stream) = record["_createdStream"].as_str().filter(|_| delete_stream) {
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
        .list_resources(KIND, None)?
        .into_iter()
        .find(|(_, r)| {
            r["_streams"]
                .as_array()
                .is_some_and(|s| s.contains(&json!(stream)))
        })
        .map(|(id, _)| id))
}
