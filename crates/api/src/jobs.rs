//! iot jobs control plane: CreateJob, DescribeJob, ListJobs, CancelJob, DeleteJob (force),
//! GetJobDocument, DescribeJobExecution, ListJobExecutionsForJob/ForThing, CancelJobExecution,
//! DeleteJobExecution; and the read side of iot-jobs-data (DescribeJobExecution,
//! GetPendingJobExecutions).
//!
//! Jobs are `job/<jobId>` resources; executions are `job-execution/<jobId>/<thing>` with the job
//! as parent, created `QUEUED` for every thing the targets resolve to. Delivery to devices and
//! rollout belong to the jobs engine; this module keeps the records it serves isolated here.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate, with_token};
use crate::{iot_things, validate};

const JOB: &str = "job";
const EXEC: &str = "job-execution";
const EXEC_STATUSES: &[&str] = &[
    "QUEUED",
    "IN_PROGRESS",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "REJECTED",
    "REMOVED",
    "CANCELED",
];

/// Routes of the iot control plane.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/jobs", get(list_jobs))
        .route(
            "/jobs/{job}",
            get(describe_job).put(create_job).delete(delete_job),
        )
        .route("/jobs/{job}/cancel", put(cancel_job))
        .route("/jobs/{job}/job-document", get(get_job_document))
        .route("/jobs/{job}/things", get(list_for_job))
        .route("/things/{thing}/jobs", get(list_for_thing))
        .route("/things/{thing}/jobs/{job}", get(describe_execution))
        .route("/things/{thing}/jobs/{job}/cancel", put(cancel_execution))
        .route(
            "/things/{thing}/jobs/{job}/executionNumber/{number}",
            delete(delete_execution),
        )
}

/// Routes of the iot-jobs-data scope (read side; updates come from devices over MQTT).
pub(crate) fn data_routes() -> Router<ApiState> {
    Router::new()
        .route("/things/{thing}/jobs", get(data_pending))
        .route("/things/{thing}/jobs/{job}", get(data_describe))
}

/// A job to create: the CreateJob body, also built by CreateOTAUpdate.
#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobSpec {
    pub(crate) targets: Option<Vec<String>>,
    pub(crate) document: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) target_selection: Option<String>,
    pub(crate) presigned_url_config: Option<Value>,
    pub(crate) job_executions_rollout_config: Option<Value>,
    pub(crate) abort_config: Option<Value>,
    pub(crate) timeout_config: Option<Value>,
}

fn job_arn(state: &ApiState, id: &str) -> String {
    state.config.arn("iot", &format!("job/{id}"))
}

/// Things named by thing and thing-group ARNs (or bare thing names); unknown ones are 404.
fn resolve_targets(state: &ApiState, targets: &[String]) -> ApiResult<Vec<String>> {
    let mut things: Vec<String> = Vec::new();
    for target in targets {
        let found = if let Some((_, group)) = target.split_once(":thinggroup/") {
            iot_things::things_in_group(state, group, true)?
        } else {
            let name = target
                .split_once(":thing/")
                .map_or(target.as_str(), |(_, n)| n);
            iot_things::load_thing(state, name)?;
            vec![name.to_owned()]
        };
        things.extend(
            found
                .into_iter()
                .filter(|t| !things.contains(t))
                .collect::<Vec<_>>(),
        );
    }
    Ok(things)
}

/// Validates and stores a job plus one `QUEUED` execution per target thing (one transaction).
pub(crate) fn create_job_record(state: &ApiState, id: &str, spec: &JobSpec) -> ApiResult<Value> {
    let targets = spec.targets.clone().unwrap_or_default();
    if targets.is_empty() {
        return Err(ApiError::invalid(
            "targets must name at least one thing or thing group",
        ));
    }
    let document = spec
        .document
        .clone()
        .ok_or_else(|| ApiError::invalid("document is required"))?;
    if document.len() > 32768 || serde_json::from_str::<Value>(&document).is_err() {
        return Err(ApiError::invalid(
            "document must be a JSON document of at most 32768 bytes",
        ));
    }
    validate::description(spec.description.as_deref())?;
    let selection = spec
        .target_selection
        .clone()
        .unwrap_or_else(|| "SNAPSHOT".into());
    validate::one_of("targetSelection", &selection, &["CONTINUOUS", "SNAPSHOT"])?;
    let arn = job_arn(state, id);
    if state.store.get_resource(JOB, id)?.is_some() {
        return Err(ApiError::already_exists(
            format!("Job {id} already exists"),
            id,
            &arn,
        ));
    }
    let things = resolve_targets(state, &targets)?;
    let now = epoch_seconds(now_ms());
    let job = json!({
        "jobArn": arn, "jobId": id, "targetSelection": selection, "status": "IN_PROGRESS", "targets": targets,
        "description": spec.description, "presignedUrlConfig": spec.presigned_url_config,
        "jobExecutionsRolloutConfig": spec.job_executions_rollout_config, "abortConfig": spec.abort_config,
        "timeoutConfig": spec.timeout_config, "createdAt": now, "lastUpdatedAt": now, "document": document,
    });
    state.store.transaction(|tx| {
        tx.insert_resource(JOB, id, None, &job)?;
        for thing in &things {
            let exec = json!({
                "jobId": id, "thingName": thing, "thingArn": state.config.arn("iot", &format!("thing/{thing}")),
                "status": "QUEUED", "queuedAt": now, "lastUpdatedAt": now, "executionNumber": 1, "versionNumber": 1,
                "statusDetails": { "detailsMap": {} },
            });
            tx.insert_resource(EXEC, &format!("{id}/{thing}"), Some(id), &exec)?;
        }
        Ok(())
    })?;
    Ok(job)
}

/// The stored job, or `ResourceNotFoundException`.
pub(crate) fn load_job(state: &ApiState, id: &str) -> ApiResult<Value> {
    state
        .store
        .get_resource(JOB, id)?
        .ok_or_else(|| ApiError::not_found(format!("Job {id} does not exist")))
}

fn executions(state: &ApiState, job: &str) -> ApiResult<Vec<Value>> {
    Ok(state
        .store
        .list_resources(EXEC, Some(job))?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}

/// Deletes a job and its executions; without `force` only terminal jobs may go.
pub(crate) fn delete_job_record(state: &ApiState, id: &str, force: bool) -> ApiResult<()> {
    let job = load_job(state, id)?;
    let terminal = job["status"] == "COMPLETED" || job["status"] == "CANCELED";
    if !terminal && !force {
        let msg = format!(
            "Job {id} is {} ; only COMPLETED or CANCELED jobs can be deleted without force",
            job["status"]
        );
        return Err(ApiError::conflict("InvalidStateTransitionException", msg));
    }
    state.store.transaction(|tx| {
        for (exec_id, _) in tx.list_resources(EXEC, Some(id))? {
            tx.delete_resource(EXEC, &exec_id)?;
        }
        tx.delete_resource(JOB, id)?;
        Ok(())
    })?;
    Ok(())
}

async fn create_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 64)?;
    let spec: JobSpec = parse_json(&body)?;
    let job = state
        .blocking(move |s| create_job_record(s, &id, &spec))
        .await?;
    Ok(json_ok(
        json!({ "jobArn": job["jobArn"], "jobId": job["jobId"], "description": job["description"] }),
    ))
}

/// The `Job` shape with process details counted from the executions.
fn job_view(state: &ApiState, mut job: Value) -> ApiResult<Value> {
    let id = job["jobId"].as_str().unwrap_or_default().to_owned();
    let execs = executions(state, &id)?;
    let count = |status: &str| execs.iter().filter(|e| e["status"] == status).count();
    job["jobProcessDetails"] = json!({
        "numberOfQueuedThings": count("QUEUED"), "numberOfInProgressThings": count("IN_PROGRESS"),
        "numberOfSucceededThings": count("SUCCEEDED"), "numberOfFailedThings": count("FAILED"),
        "numberOfCanceledThings": count("CANCELED"), "numberOfRejectedThings": count("REJECTED"),
        "numberOfRemovedThings": count("REMOVED"), "numberOfTimedOutThings": count("TIMED_OUT"),
    });
    if let Value::Object(map) = &mut job {
        map.remove("document");
    }
    Ok(job)
}

async fn describe_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 72)?;
    let job = state
        .blocking(move |s| job_view(s, load_job(s, &id)?))
        .await?;
    Ok(json_ok(json!({ "job": job })))
}

async fn list_jobs(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    if let Some(status) = q.get("status") {
        validate::one_of(
            "status",
            status,
            &[
                "IN_PROGRESS",
                "CANCELED",
                "COMPLETED",
                "DELETION_IN_PROGRESS",
                "SCHEDULED",
            ],
        )?;
    }
    let group_arn = q
        .get("thingGroupName")
        .map(|g| state.config.arn("iot", &format!("thinggroup/{g}")));
    let jobs = state
        .blocking(|s| Ok(s.store.list_resources(JOB, None)?))
        .await?;
    let jobs: Vec<Value> = jobs
        .into_iter()
        .map(|(_, j)| j)
        .filter(|j| ["status", "targetSelection"].iter().all(|f| q.get(*f).is_none_or(|v| j[*f] == json!(v))))
        .filter(|j| group_arn.as_ref().is_none_or(|g| j["targets"].as_array().is_some_and(|t| t.contains(&json!(g)))))
        .map(|j| {
            json!({ "jobArn": j["jobArn"], "jobId": j["jobId"], "targetSelection": j["targetSelection"],
                    "status": j["status"], "createdAt": j["createdAt"], "lastUpdatedAt": j["lastUpdatedAt"],
                    "completedAt": j["completedAt"] })
        })
        .collect();
    let (page, next) = paginate(jobs, &q, 250)?;
    Ok(json_ok(with_token(json!({ "jobs": page }), next)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CancelJob {
    reason_code: Option<String>,
    comment: Option<String>,
}

async fn cancel_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 72)?;
    let req: CancelJob = parse_json(&body)?;
    validate::description(req.comment.as_deref())?;
    let force = flag(&q, "force");
    let job = state
        .blocking(move |s| {
            let mut job = load_job(s, &id)?;
            if job["status"] != "IN_PROGRESS" && job["status"] != "SCHEDULED" {
                return Err(ApiError::conflict(
                    "InvalidStateTransitionException",
                    format!("Job {id} is {}", job["status"]),
                ));
            }
            let now = epoch_seconds(now_ms());
            job["status"] = json!("CANCELED");
            job["forceCanceled"] = json!(force);
            job["reasonCode"] = json!(req.reason_code);
            job["comment"] = json!(req.comment);
            job["lastUpdatedAt"] = now.clone();
            s.store.transaction(|tx| {
                for (exec_id, mut exec) in tx.list_resources(EXEC, Some(&id))? {
                    let cancel =
                        exec["status"] == "QUEUED" || (force && exec["status"] == "IN_PROGRESS");
                    if cancel {
                        exec["status"] = json!("CANCELED");
                        exec["forceCanceled"] = json!(force);
                        exec["lastUpdatedAt"] = now.clone();
                        tx.put_resource(EXEC, &exec_id, Some(&id), &exec)?;
                    }
                }
                tx.put_resource(JOB, &id, None, &job)
            })?;
            Ok(job)
        })
        .await?;
    Ok(json_ok(
        json!({ "jobArn": job["jobArn"], "jobId": job["jobId"], "description": job["description"] }),
    ))
}

async fn delete_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 72)?;
    let force = flag(&q, "force");
    state
        .blocking(move |s| delete_job_record(s, &id, force))
        .await?;
    Ok(json_ok(json!({})))
}

async fn get_job_document(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 72)?;
    let job = state.blocking(move |s| load_job(s, &id)).await?;
    Ok(json_ok(json!({ "document": job["document"] })))
}

fn load_execution(state: &ApiState, job: &str, thing: &str) -> ApiResult<Value> {
    validate::resource_id("jobId", job, 72)?;
    validate::thing_name("thingName", thing)?;
    state
        .store
        .get_resource(EXEC, &format!("{job}/{thing}"))?
        .ok_or_else(|| {
            ApiError::not_found(format!("No job execution of job {job} on thing {thing}"))
        })
}

fn summary(e: &Value) -> Value {
    json!({ "status": e["status"], "queuedAt": e["queuedAt"], "startedAt": e["startedAt"],
            "lastUpdatedAt": e["lastUpdatedAt"], "executionNumber": e["executionNumber"] })
}

fn status_filter(q: &QueryMap) -> ApiResult<Option<String>> {
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        validate::one_of("status", s, EXEC_STATUSES)?;
    }
    Ok(status)
}

async fn describe_execution(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mut exec = state
        .blocking(move |s| load_execution(s, &job, &thing))
        .await?;
    if let Value::Object(map) = &mut exec {
        map.remove("thingName");
    }
    Ok(json_ok(json!({ "execution": exec })))
}

async fn list_for_job(
    State(state): State<ApiState>,
    Path(job): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &job, 72)?;
    let status = status_filter(&q)?;
    let execs = state
        .blocking(move |s| load_job(s, &job).and_then(|_| executions(s, &job)))
        .await?;
    let rows: Vec<Value> = execs
        .iter()
        .filter(|e| status.as_ref().is_none_or(|s| e["status"] == json!(s)))
        .map(|e| json!({ "thingArn": e["thingArn"], "jobExecutionSummary": summary(e) }))
        .collect();
    let (page, next) = paginate(rows, &q, 250)?;
    Ok(json_ok(with_token(
        json!({ "executionSummaries": page }),
        next,
    )))
}

fn executions_of_thing(state: &ApiState, thing: &str) -> ApiResult<Vec<Value>> {
    validate::thing_name("thingName", thing)?;
    let mut out = Vec::new();
    for (job, _) in state.store.list_resources(JOB, None)? {
        if let Some(e) = state.store.get_resource(EXEC, &format!("{job}/{thing}"))? {
            out.push(e);
        }
    }
    Ok(out)
}

async fn list_for_thing(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let status = status_filter(&q)?;
    let execs = state
        .blocking(move |s| executions_of_thing(s, &thing))
        .await?;
    let rows: Vec<Value> = execs
        .iter()
        .filter(|e| status.as_ref().is_none_or(|s| e["status"] == json!(s)))
        .filter(|e| q.get("jobId").is_none_or(|j| e["jobId"] == json!(j)))
        .map(|e| json!({ "jobId": e["jobId"], "jobExecutionSummary": summary(e) }))
        .collect();
    let (page, next) = paginate(rows, &q, 250)?;
    Ok(json_ok(with_token(
        json!({ "executionSummaries": page }),
        next,
    )))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CancelExecution {
    expected_version: Option<i64>,
    status_details: Option<serde_json::Map<String, Value>>,
}

async fn cancel_execution(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: CancelExecution = parse_json(&body)?;
    let force = flag(&q, "force");
    state
        .blocking(move |s| {
            let mut exec = load_execution(s, &job, &thing)?;
            if let Some(v) = req
                .expected_version
                .filter(|v| exec["versionNumber"] != json!(v))
            {
                return Err(ApiError::conflict(
                    "VersionConflictException",
                    format!("Expected version {v}, current {}", exec["versionNumber"]),
                ));
            }
            let cancellable =
                exec["status"] == "QUEUED" || (force && exec["status"] == "IN_PROGRESS");
            if !cancellable {
                let msg = format!(
                    "Job execution is {}; only QUEUED (or IN_PROGRESS with force) can be canceled",
                    exec["status"]
                );
                return Err(ApiError::conflict("InvalidStateTransitionException", msg));
            }
            exec["status"] = json!("CANCELED");
            exec["forceCanceled"] = json!(force);
            exec["lastUpdatedAt"] = epoch_seconds(now_ms());
            exec["versionNumber"] = json!(exec["versionNumber"].as_i64().unwrap_or(1) + 1);
            if let Some(details) = req.status_details {
                exec["statusDetails"] = json!({ "detailsMap": details });
            }
            s.store
                .put_resource(EXEC, &format!("{job}/{thing}"), Some(&job), &exec)?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn delete_execution(
    State(state): State<ApiState>,
    Path((thing, job, number)): Path<(String, String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let number: i64 = number
        .parse()
        .map_err(|_| ApiError::invalid("executionNumber must be an integer"))?;
    let force = flag(&q, "force");
    state
        .blocking(move |s| {
            let exec = load_execution(s, &job, &thing)?;
            if exec["executionNumber"] != json!(number) {
                return Err(ApiError::not_found(format!(
                    "No execution number {number} of job {job} on thing {thing}"
                )));
            }
            if exec["status"] == "IN_PROGRESS" && !force {
                return Err(ApiError::conflict(
                    "InvalidStateTransitionException",
                    "Job execution is IN_PROGRESS; use force",
                ));
            }
            s.store.delete_resource(EXEC, &format!("{job}/{thing}"))?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

/// iot-jobs-data `JobExecution`: integer timestamps (modelled as `long`) and the document.
fn data_execution(state: &ApiState, e: &Value, with_document: bool) -> ApiResult<Value> {
    let secs = |v: &Value| v.as_f64().map(|f| f as i64);
    let mut out = json!({
        "jobId": e["jobId"], "thingName": e["thingName"], "status": e["status"],
        "statusDetails": e["statusDetails"]["detailsMap"], "queuedAt": secs(&e["queuedAt"]),
        "startedAt": secs(&e["startedAt"]), "lastUpdatedAt": secs(&e["lastUpdatedAt"]),
        "versionNumber": e["versionNumber"], "executionNumber": e["executionNumber"],
    });
    if with_document {
        out["jobDocument"] =
            load_job(state, e["jobId"].as_str().unwrap_or_default())?["document"].clone();
    }
    Ok(out)
}

async fn data_describe(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let with_document = flag(&q, "includeJobDocument");
    let exec = state
        .blocking(move |s| {
            let job = if job == "$next" {
                next_pending(s, &thing)?
            } else {
                job
            };
            data_execution(s, &load_execution(s, &job, &thing)?, with_document)
        })
        .await?;
    Ok(json_ok(json!({ "execution": exec })))
}

fn next_pending(state: &ApiState, thing: &str) -> ApiResult<String> {
    let execs = executions_of_thing(state, thing)?;
    let pick = execs
        .iter()
        .find(|e| e["status"] == "IN_PROGRESS")
        .or_else(|| execs.iter().find(|e| e["status"] == "QUEUED"));
    pick.and_then(|e| e["jobId"].as_str().map(str::to_owned))
        .ok_or_else(|| ApiError::not_found(format!("No pending job execution for thing {thing}")))
}

async fn data_pending(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
) -> ApiResult<Response> {
    let execs = state
        .blocking(move |s| executions_of_thing(s, &thing))
        .await?;
    let pick = |status: &str| -> Vec<Value> {
        execs
            .iter()
            .filter(|e| e["status"] == status)
            .map(|e| {
                json!({ "jobId": e["jobId"], "queuedAt": e["queuedAt"].as_f64().map(|f| f as i64),
                        "lastUpdatedAt": e["lastUpdatedAt"].as_f64().map(|f| f as i64),
                        "versionNumber": e["versionNumber"], "executionNumber": e["executionNumber"] })
            })
            .collect()
    };
    Ok(json_ok(
        json!({ "inProgressJobs": pick("IN_PROGRESS"), "queuedJobs": pick("QUEUED") }),
    ))
}
