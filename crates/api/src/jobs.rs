//! iot jobs control plane over the shared jobs engine: CreateJob, DescribeJob, ListJobs,
//! CancelJob, DeleteJob (force), GetJobDocument, DescribeJobExecution,
//! ListJobExecutionsForJob/ForThing, CancelJobExecution, DeleteJobExecution.
//!
//! Every state change goes through [`crate::jobs_hub::JobsHandle::apply`], so records are
//! persisted before devices hear about them. Targets must name existing things or groups.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{delete, get, put};
use bytes::Bytes;
use otastream_jobs::control::timestamp_secs;
use otastream_jobs::execution::{ExecutionStatus, JobExecution, StatusDetails};
use otastream_jobs::model::{JobSpec, TargetResolver};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::jobs_hub::{ApplyAs, Plane};
use crate::util::{QueryMap, flag, matches_query, now_ms, paginate, with_token};
use crate::{iot_things, validate};

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

/// Thing groups as the engine sees them (members of child groups included).
pub(crate) struct StoreGroups<'a>(pub(crate) &'a ApiState);

impl TargetResolver for StoreGroups<'_> {
    fn group_members(&self, group: &str) -> Option<Vec<String>> {
        iot_things::things_in_group(self.0, group, true).ok()
    }
}

/// Checks that every target names an existing thing or thing group.
fn check_targets(state: &ApiState, targets: &[String]) -> ApiResult<()> {
    for target in targets {
        if let Some((_, group)) = target.split_once(":thinggroup/") {
            iot_things::things_in_group(state, group, false)?;
        } else {
            iot_things::load_thing(
                state,
                target
                    .split_once(":thing/")
                    .map_or(target.as_str(), |(_, n)| n),
            )?;
        }
    }
    Ok(())
}

/// Creates a job from a CreateJob-shaped body (`targets`, `document`, configs); also used by
/// CreateOTAUpdate. Returns the job ARN.
pub(crate) fn create_job_record(state: &ApiState, id: &str, mut body: Value) -> ApiResult<String> {
    let arn = state.config.arn("iot", &format!("job/{id}"));
    validate::description(body["description"].as_str())?;
    if let Some(sel) = body["targetSelection"].as_str() {
        validate::one_of("targetSelection", sel, &["CONTINUOUS", "SNAPSHOT"])?;
    }
    if body.get("document").and_then(Value::as_str).is_none() {
        return Err(ApiError::invalid(
            "document is required (documentSource is not supported)",
        ));
    }
    body["jobId"] = json!(id);
    body["jobArn"] = json!(arn);
    if let Value::Object(map) = &mut body {
        map.retain(|_, v| !v.is_null());
    }
    let spec: JobSpec =
        serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("Invalid job: {e}")))?;
    check_targets(state, &spec.targets)?;
    let resolver = StoreGroups(state);
    state.jobs.apply_as(Plane::Control, |engine| {
        Ok(((), engine.handle_create_job(spec, &resolver, now_ms())?))
    })?;
    Ok(arn)
}

async fn create_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 64)?;
    let body: Value = parse_json(&body)?;
    let description = body["description"].clone();
    let (job, job_id) = (id.clone(), id);
    let arn = state
        .blocking(move |s| create_job_record(s, &job, body))
        .await?;
    Ok(json_ok(
        json!({ "jobArn": arn, "jobId": job_id, "description": description }),
    ))
}

/// DescribeJob's `job`, or `ResourceNotFoundException`.
fn job_view(state: &ApiState, id: &str) -> ApiResult<Value> {
    let view = state
        .jobs
        .read(|e| e.describe_job(id))
        .ok_or_else(|| ApiError::not_found(format!("Job {id} does not exist")))?;
    serde_json::to_value(view).map_err(|e| ApiError::internal(e.to_string()))
}

async fn describe_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 64)?;
    Ok(json_ok(json!({ "job": job_view(&state, &id)? })))
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
    let ids: Vec<String> = state
        .jobs
        .read(|e| e.jobs().map(|j| j.spec.job_id.clone()).collect());
    let mut rows = Vec::new();
    for id in ids {
        let Ok(j) = job_view(&state, &id) else {
            continue;
        };
        let keep = matches_query(&j, &q, &["status", "targetSelection"])
            && group_arn.as_ref().is_none_or(|g| {
                j["targets"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!(g)))
            });
        if keep {
            rows.push(json!({ "jobArn": j["jobArn"], "jobId": j["jobId"], "targetSelection": j["targetSelection"],
                "status": j["status"], "createdAt": j["createdAt"], "lastUpdatedAt": j["lastUpdatedAt"],
                "completedAt": j["completedAt"] }));
        }
    }
    let (page, next) = paginate(rows, &q, 250)?;
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
    validate::resource_id("jobId", &id, 64)?;
    let req: CancelJob = parse_json(&body)?;
    validate::description(req.comment.as_deref())?;
    let force = flag(&q, "force");
    let job = id.clone();
    state
        .blocking(move |s| {
            s.jobs.apply_as(Plane::Control, |e| {
                Ok((
                    (),
                    e.handle_cancel_job(&job, force, req.reason_code, req.comment, now_ms())?,
                ))
            })
        })
        .await?;
    let view = job_view(&state, &id)?;
    Ok(json_ok(
        json!({ "jobArn": view["jobArn"], "jobId": id, "description": view["description"] }),
    ))
}

/// DeleteJob (also used by DeleteOTAUpdate with `forceDeleteAWSJob`).
pub(crate) fn delete_job_record(state: &ApiState, id: &str, force: bool) -> ApiResult<()> {
    state.jobs.apply_as(Plane::Control, |e| {
        Ok(((), e.handle_delete_job(id, force, now_ms())?))
    })
}

async fn delete_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &id, 64)?;
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
    validate::resource_id("jobId", &id, 64)?;
    let doc = state
        .jobs
        .read(|e| e.job(&id).map(|j| j.spec.document.clone()));
    let doc = doc.ok_or_else(|| ApiError::not_found(format!("Job {id} does not exist")))?;
    Ok(json_ok(json!({ "document": doc })))
}

/// The iot `JobExecution` shape (timestamps in epoch seconds).
fn execution_view(state: &ApiState, e: &JobExecution) -> Value {
    json!({
        "jobId": e.job_id, "status": e.status, "thingArn": state.config.arn("iot", &format!("thing/{}", e.thing_name)),
        "statusDetails": { "detailsMap": e.status_details }, "queuedAt": timestamp_secs(e.queued_at),
        "startedAt": e.started_at.map(timestamp_secs), "lastUpdatedAt": timestamp_secs(e.last_updated_at),
        "executionNumber": e.execution_number, "versionNumber": e.version_number,
    })
}

fn summary(e: &JobExecution) -> Value {
    json!({ "status": e.status, "queuedAt": timestamp_secs(e.queued_at), "startedAt": e.started_at.map(timestamp_secs),
            "lastUpdatedAt": timestamp_secs(e.last_updated_at), "executionNumber": e.execution_number })
}

fn status_filter(q: &QueryMap) -> ApiResult<Option<ExecutionStatus>> {
    q.get("status")
        .map(|s| {
            ExecutionStatus::parse(s).ok_or_else(|| {
                ApiError::invalid(format!("status '{s}' is not a job execution status"))
            })
        })
        .transpose()
}

async fn describe_execution(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &job, 64)?;
    validate::thing_name("thingName", &thing)?;
    let view = state
        .jobs
        .read(|e| e.execution(&job, &thing).map(|x| execution_view(&state, x)));
    let view = view.ok_or_else(|| {
        ApiError::not_found(format!("No execution of job {job} on thing {thing}"))
    })?;
    Ok(json_ok(json!({ "execution": view })))
}

async fn list_for_job(
    State(state): State<ApiState>,
    Path(job): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &job, 64)?;
    let status = status_filter(&q)?;
    let rows = state.jobs.read(|e| {
        e.job(&job)?;
        Some(
            e.executions_for_job(&job)
                .into_iter()
                .filter(|x| status.is_none_or(|s| x.status == s))
                .map(|x| json!({ "thingArn": state.config.arn("iot", &format!("thing/{}", x.thing_name)), "jobExecutionSummary": summary(x) }))
                .collect::<Vec<_>>(),
        )
    });
    let rows = rows.ok_or_else(|| ApiError::not_found(format!("Job {job} does not exist")))?;
    let (page, next) = paginate(rows, &q, 250)?;
    Ok(json_ok(with_token(
        json!({ "executionSummaries": page }),
        next,
    )))
}

async fn list_for_thing(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    let status = status_filter(&q)?;
    let rows: Vec<Value> = state.jobs.read(|e| {
        e.executions_for_thing(&thing)
            .into_iter()
            .filter(|x| {
                status.is_none_or(|s| x.status == s)
                    && q.get("jobId").is_none_or(|j| *j == x.job_id)
            })
            .map(|x| json!({ "jobId": x.job_id, "jobExecutionSummary": summary(x) }))
            .collect()
    });
    let (page, next) = paginate(rows, &q, 250)?;
    Ok(json_ok(with_token(
        json!({ "executionSummaries": page }),
        next,
    )))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CancelExecution {
    expected_version: Option<u64>,
    status_details: Option<StatusDetails>,
}

async fn cancel_execution(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &job, 64)?;
    validate::thing_name("thingName", &thing)?;
    let req: CancelExecution = parse_json(&body)?;
    let force = flag(&q, "force");
    state
        .blocking(move |s| {
            s.jobs.apply_as(Plane::Control, |e| {
                let actions = e.handle_cancel_job_execution(
                    &job,
                    &thing,
                    force,
                    req.expected_version,
                    req.status_details,
                    now_ms(),
                )?;
                Ok(((), actions))
            })
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn delete_execution(
    State(state): State<ApiState>,
    Path((thing, job, number)): Path<(String, String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::resource_id("jobId", &job, 64)?;
    validate::thing_name("thingName", &thing)?;
    let number: u64 = number
        .parse()
        .map_err(|_| ApiError::invalid("executionNumber must be a non-negative integer"))?;
    let force = flag(&q, "force");
    state
        .blocking(move |s| {
            s.jobs.apply_as(Plane::Control, |e| {
                Ok((
                    (),
                    e.handle_delete_job_execution(&job, &thing, number, force, now_ms())?,
                ))
            })
        })
        .await?;
    Ok(json_ok(json!({})))
}
