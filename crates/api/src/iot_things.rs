//! iot things and thing groups: CreateThing, DescribeThing, ListThings, DeleteThing,
//! CreateThingGroup, DescribeThingGroup, AddThingToThingGroup, RemoveThingFromThingGroup,
//! ListThingsInThingGroup.
//!
//! Stored as JSON resources: `thing/<name>`, `thing-group/<name>` and membership rows
//! `thing-group-member/<group>/<thing>` whose parent is the group.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::jobs::StoreGroups;
use crate::jobs_hub::{ApplyAs, Plane};
use crate::util::{QueryMap, epoch_seconds, now_ms, paginate, with_token};
use crate::validate;

const THING: &str = "thing";
const GROUP: &str = "thing-group";
const MEMBER: &str = "thing-group-member";

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/things", get(list_things))
        .route(
            "/things/{thing}",
            get(describe_thing).post(create_thing).delete(delete_thing),
        )
        .route(
            "/thing-groups/addThingToThingGroup",
            put(add_thing_to_group),
        )
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(remove_thing_from_group),
        )
        .route(
            "/thing-groups/{group}",
            get(describe_group).post(create_group),
        )
        .route("/thing-groups/{group}/things", get(list_things_in_group))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateThing {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
}

#[derive(Deserialize, Default)]
struct AttributePayload {
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

fn thing_arn(state: &ApiState, name: &str) -> String {
    state.config.arn("iot", &format!("thing/{name}"))
}

/// The stored thing, or `ResourceNotFoundException`.
pub(crate) fn load_thing(state: &ApiState, name: &str) -> ApiResult<Value> {
    state.load(THING, name, "Thing")
}

async fn create_thing(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &name)?;
    let req: CreateThing = parse_json(&body)?;
    if let Some(t) = &req.thing_type_name {
        validate::thing_name("thingTypeName", t)?;
    }
    let arn = thing_arn(&state, &name);
    let doc = json!({
        "thingName": name,
        "thingArn": arn,
        "thingId": uuid::Uuid::new_v4().to_string(),
        "thingTypeName": req.thing_type_name,
        "attributes": req.attribute_payload.unwrap_or_default().attributes,
        "version": 1,
    });
    let doc = state
        .blocking(move |s| {
            if let Some(existing) = s.store.get_resource(THING, &name)? {
                // Same name and configuration succeeds again (the model says so).
                let same = existing["thingTypeName"] == doc["thingTypeName"]
                    && existing["attributes"] == doc["attributes"];
                return if same {
                    Ok(existing)
                } else {
                    Err(ApiError::already_exists(
                        format!("Thing {name} already exists"),
                        &name,
                        &arn,
                    ))
                };
            }
            s.store.insert_resource(THING, &name, None, &doc)?;
            Ok(doc)
        })
        .await?;
    Ok(json_ok(
        json!({ "thingName": doc["thingName"], "thingArn": doc["thingArn"], "thingId": doc["thingId"] }),
    ))
}

async fn describe_thing(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &name)?;
    let mut doc = state.blocking(move |s| load_thing(s, &name)).await?;
    doc["defaultClientId"] = doc["thingName"].clone();
    Ok(json_ok(doc))
}

async fn list_things(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let things = state.list_all(THING).await?;
    let things: Vec<Value> = things
        .into_iter()
        .filter(
            |t| match (q.get("attributeName"), q.get("attributeValue")) {
                (Some(n), Some(v)) => t["attributes"][n.as_str()] == json!(v),
                (Some(n), None) => t["attributes"].get(n.as_str()).is_some(),
                _ => true,
            },
        )
        .filter(|t| {
            q.get("thingTypeName")
                .is_none_or(|ty| t["thingTypeName"] == json!(ty))
        })
        .map(|mut t| {
            if let Value::Object(map) = &mut t {
                map.remove("thingId");
            }
            t
        })
        .collect();
    let (page, next) = paginate(things, &q, 250)?;
    Ok(json_ok(with_token(json!({ "things": page }), next)))
}

async fn delete_thing(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &name)?;
    state
        .blocking(move |s| {
            s.store.transaction(|tx| {
                tx.delete_resource(THING, &name)?;
                for (group, _) in tx.list_resources(GROUP, None)? {
                    tx.delete_resource(MEMBER, &format!("{group}/{name}"))?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateGroup {
    parent_group_name: Option<String>,
    thing_group_properties: Option<Value>,
}

fn group_arn(state: &ApiState, name: &str) -> String {
    state.config.arn("iot", &format!("thinggroup/{name}"))
}

fn load_group(state: &ApiState, name: &str) -> ApiResult<Value> {
    state.load(GROUP, name, "Thing group")
}

async fn create_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::thing_name("thingGroupName", &name)?;
    let req: CreateGroup = parse_json(&body)?;
    let arn = group_arn(&state, &name);
    let doc = json!({
        "thingGroupName": name,
        "thingGroupArn": arn,
        "thingGroupId": uuid::Uuid::new_v4().to_string(),
        "version": 1,
        "thingGroupProperties": req.thing_group_properties.unwrap_or_else(|| json!({})),
        "thingGroupMetadata": { "parentGroupName": req.parent_group_name, "creationDate": epoch_seconds(now_ms()) },
    });
    let doc = state
        .blocking(move |s| {
            if let Some(parent) = &req.parent_group_name {
                load_group(s, parent)?;
            }
            if s.store.get_resource(GROUP, &name)?.is_some() {
                return Err(ApiError::already_exists(
                    format!("Thing group {name} already exists"),
                    &name,
                    &arn,
                ));
            }
            s.store.insert_resource(GROUP, &name, None, &doc)?;
            Ok(doc)
        })
        .await?;
    Ok(json_ok(json!({
        "thingGroupName": doc["thingGroupName"], "thingGroupArn": doc["thingGroupArn"], "thingGroupId": doc["thingGroupId"]
    })))
}

async fn describe_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingGroupName", &name)?;
    Ok(json_ok(
        state.blocking(move |s| load_group(s, &name)).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Membership {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
}

impl Membership {
    /// `(group, thing)` from names or ARNs.
    fn names(self) -> ApiResult<(String, String)> {
        let tail = |arn: Option<String>, kind: &str| {
            arn.and_then(|a| a.split_once(kind).map(|(_, n)| n.to_owned()))
        };
        let group = self
            .thing_group_name
            .or_else(|| tail(self.thing_group_arn, ":thinggroup/"));
        let thing = self.thing_name.or_else(|| tail(self.thing_arn, ":thing/"));
        let group = group
            .ok_or_else(|| ApiError::invalid("thingGroupName or thingGroupArn is required"))?;
        let thing = thing.ok_or_else(|| ApiError::invalid("thingName or thingArn is required"))?;
        validate::thing_name("thingGroupName", &group)?;
        validate::thing_name("thingName", &thing)?;
        Ok((group, thing))
    }
}

async fn add_thing_to_group(State(state): State<ApiState>, body: Bytes) -> ApiResult<Response> {
    let (group, thing) = parse_json::<Membership>(&body)?.names()?;
    state
        .blocking(move |s| {
            load_group(s, &group)?;
            load_thing(s, &thing)?;
            let row = json!({ "thingName": thing, "thingGroupName": group });
            s.store
                .put_resource(MEMBER, &format!("{group}/{thing}"), Some(&group), &row)?;
            // CONTINUOUS jobs targeting the group reach the new member.
            s.jobs.apply_as(Plane::Control, |e| {
                Ok(((), e.handle_thing_added_to_group(&thing, &group, now_ms())))
            })
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn remove_thing_from_group(
    State(state): State<ApiState>,
    body: Bytes,
) -> ApiResult<Response> {
    let (group, thing) = parse_json::<Membership>(&body)?.names()?;
    state
        .blocking(move |s| {
            load_group(s, &group)?;
            s.store
                .delete_resource(MEMBER, &format!("{group}/{thing}"))?;
            let groups = StoreGroups(s);
            s.jobs.apply_as(Plane::Control, |e| {
                Ok((
                    (),
                    e.handle_thing_removed_from_group(&thing, &group, &groups, now_ms()),
                ))
            })
        })
        .await?;
    Ok(json_ok(json!({})))
}

/// Thing names in a group (and its child groups when `recursive`), in insertion order.
pub(crate) fn things_in_group(
    state: &ApiState,
    group: &str,
    recursive: bool,
) -> ApiResult<Vec<String>> {
    load_group(state, group)?;
    let mut groups = vec![group.to_owned()];
    if recursive {
        let all = state.store.list_resources(GROUP, None)?;
        let mut i = 0;
        while i < groups.len() {
            for (name, doc) in &all {
                if doc["thingGroupMetadata"]["parentGroupName"] == json!(groups[i])
                    && !groups.contains(name)
                {
                    groups.push(name.clone());
                }
            }
            i += 1;
        }
    }
    let mut things = Vec::new();
    for g in &groups {
        for (_, row) in state.store.list_resources(MEMBER, Some(g))? {
            if let Some(t) = row["thingName"]
                .as_str()
                .filter(|t| !things.iter().any(|x: &String| x == t))
            {
                things.push(t.to_owned());
            }
        }
    }
    Ok(things)
}

async fn list_things_in_group(
    State(state): State<ApiState>,
    Path(group): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    validate::thing_name("thingGroupName", &group)?;
    let recursive = crate::util::flag(&q, "recursive");
    let things = state
        .blocking(move |s| things_in_group(s, &group, recursive))
        .await?;
    let (page, next) = paginate(things, &q, 250)?;
    Ok(json_ok(with_token(json!({ "things": page }), next)))
}
