//! iot-jobs-data (the HTTP device face of the jobs engine): DescribeJobExecution (`$next` too),
//! GetPendingJobExecutions, StartNextPendingJobExecution, UpdateJobExecution. Paths collide
//! with the iot control plane, so these routes are reached only with the `iot-jobs-data` scope.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use otastream_jobs::request::{DescribeRequest, StartNextRequest, UpdateRequest, parse_body};
use serde::Serialize;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok};
use crate::jobs_hub::{ApplyAs, Plane, data_plane_error};
use crate::util::{QueryMap, flag, now_ms};
use crate::validate;

/// Routes of the iot-jobs-data scope.
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/things/{thing}/jobs", get(get_pending))
        .route(
            "/things/{thing}/jobs/{job}",
            get(describe).put(start_next).post(update),
        )
}

fn to_json(value: impl Serialize) -> ApiResult<Response> {
    serde_json::to_value(value)
        .map(json_ok)
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn describe(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    let execution_number = match q.get("executionNumber") {
        Some(n) => Some(
            n.parse::<u64>()
                .map_err(|_| ApiError::invalid("executionNumber must be an integer"))?,
        ),
        None => None,
    };
    let include = q
        .get("includeJobDocument")
        .map(|_| flag(&q, "includeJobDocument"));
    let req = DescribeRequest {
        execution_number,
        include_job_document: include,
    };
    let out = state
        .jobs
        .read(|e| e.describe_job_execution(&thing, &job, &req, now_ms()))
        .map_err(data_plane_error)?;
    to_json(out)
}

async fn get_pending(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    to_json(state.jobs.read(|e| e.get_pending_job_executions(&thing)))
}

async fn start_next(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    if job != "$next" {
        return Err(ApiError::invalid(
            "Only PUT /things/{thingName}/jobs/$next is an operation",
        ));
    }
    let req: StartNextRequest = parse_body(&body).map_err(data_plane_error)?;
    let out = state
        .blocking(move |s| {
            s.jobs.apply_as(Plane::Data, |e| {
                e.handle_start_next_pending_job_execution(&thing, &req, now_ms())
            })
        })
        .await?;
    to_json(out)
}

async fn update(
    State(state): State<ApiState>,
    Path((thing, job)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    validate::resource_id("jobId", &job, 64)?;
    let req: UpdateRequest = parse_body(&body).map_err(data_plane_error)?;
    let out = state
        .blocking(move |s| {
            s.jobs.apply_as(Plane::Data, |e| {
                e.handle_update_job_execution(&thing, &job, &req, now_ms())
            })
        })
        .await?;
    to_json(out)
}
