//! iot thing principals: AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals,
//! ListPrincipalThings. The principal (a certificate ARN) travels in the `x-amzn-principal` header.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::error::{ApiError, ApiResult, json_ok};
use crate::iot_things::load_thing;
use crate::util::{QueryMap, paginate, with_token};
use crate::{ApiState, iot_policies, validate};

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/things/{thing}/principals",
            get(list_thing_principals)
                .put(attach_thing_principal)
                .delete(detach_thing_principal),
        )
        .route("/principals/things", get(list_principal_things))
}

fn principal(headers: &HeaderMap) -> ApiResult<String> {
    headers
        .get("x-amzn-principal")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid("principal (x-amzn-principal) is required"))
}

async fn attach_thing_principal(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    let principal = principal(&headers)?;
    state
        .blocking(move |s| {
            load_thing(s, &thing)?;
            iot_policies::check_target(s, &principal)?;
            Ok(s.store.attach_thing_principal(&thing, &principal)?)
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn detach_thing_principal(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    let principal = principal(&headers)?;
    state
        .blocking(move |s| {
            load_thing(s, &thing)?;
            s.store.detach_thing_principal(&thing, &principal)?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn list_thing_principals(
    State(state): State<ApiState>,
    Path(thing): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &thing)?;
    let principals = state
        .blocking(move |s| {
            load_thing(s, &thing)?;
            Ok(s.store.thing_principals(&thing)?)
        })
        .await?;
    let (page, next) = paginate(principals, &q, 250)?;
    Ok(json_ok(with_token(json!({ "principals": page }), next)))
}

async fn list_principal_things(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let principal = principal(&headers)?;
    let things = state
        .blocking(move |s| Ok(s.store.principal_things(&principal)?))
        .await?;
    let (page, next) = paginate(things, &q, 250)?;
    Ok(json_ok(with_token(json!({ "things": page }), next)))
}
