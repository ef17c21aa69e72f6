//! iot things and thing groups: CreateThing, DescribeThing, ListThings, DeleteThing,
//! CreateThingGroup, DescribeThingGroup, AddThingToThingGroup, RemoveThingFromThingGroup,
//! ListThingsInThingGroup.
//!
//! Stored through the backend's [`otastream_store::ThingRepo`] as typed [`Thing`] and
//! [`ThingGroup`] records plus membership rows; the AWS JSON shapes are built here.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use otastream_store::{Thing, ThingGroup};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::jobs::StoreGroups;
use crate::jobs_hub::Plane;
use crate::util::{QueryMap, epoch_seconds, now_ms, paginate, with_token};
use crate::{ApiState, found, validate};

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
pub(crate) fn load_thing(state: &ApiState, name: &str) -> ApiResult<Thing> {
    found(state.store.get_thing(name)?, "Thing", name)
}

/// `DescribeThing` / `ListThings` JSON of a thing.
fn thing_json(t: &Thing) -> Value {
    json!({
        "thingName": t.name, "thingArn": t.arn, "thingId": t.id, "thingTypeName": t.type_name,
        "attributes": t.attributes, "version": t.version,
    })
}

/// `DescribeThingGroup` JSON of a group.
fn group_json(g: &ThingGroup) -> Value {
    json!({
        "thingGroupName": g.name, "thingGroupArn": g.arn, "thingGroupId": g.id, "version": g.version,
        "thingGroupProperties": g.properties,
        "thingGroupMetadata": { "parentGroupName": g.parent, "creationDate": epoch_seconds(g.created_ms) },
    })
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
    let thing = Thing {
        arn: thing_arn(&state, &name),
        name,
        id: uuid::Uuid::new_v4().to_string(),
        type_name: req.thing_type_name,
        attributes: req.attribute_payload.unwrap_or_default().attributes,
        version: 1,
    };
    let thing = state
        .blocking(move |s| {
            if let Some(existing) = s.store.get_thing(&thing.name)? {
                // Same name and configuration succeeds again (the model says so).
                let same = existing.type_name == thing.type_name
                    && existing.attributes == thing.attributes;
                return if same {
                    Ok(existing)
                } else {
                    Err(ApiError::already_exists(
                        format!("Thing {} already exists", thing.name),
                        &thing.name,
                        &thing.arn,
                    ))
                };
            }
            s.store.create_thing(&thing)?;
            Ok(thing)
        })
        .await?;
    Ok(json_ok(
        json!({ "thingName": thing.name, "thingArn": thing.arn, "thingId": thing.id }),
    ))
}

async fn describe_thing(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingName", &name)?;
    let thing = state.blocking(move |s| load_thing(s, &name)).await?;
    let mut doc = thing_json(&thing);
    doc["defaultClientId"] = json!(thing.name);
    Ok(json_ok(doc))
}

async fn list_things(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let things = state.blocking(|s| Ok(s.store.list_things()?)).await?;
    let things: Vec<Value> = things
        .iter()
        .filter(
            |t| match (q.get("attributeName"), q.get("attributeValue")) {
                (Some(n), Some(v)) => t.attributes.get(n) == Some(v),
                (Some(n), None) => t.attributes.contains_key(n),
                _ => true,
            },
        )
        .filter(|t| {
            q.get("thingTypeName")
                .is_none_or(|ty| t.type_name.as_ref() == Some(ty))
        })
        .map(|t| {
            let mut doc = thing_json(t);
            if let Value::Object(map) = &mut doc {
                map.remove("thingId");
            }
            doc
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
            s.store.delete_thing(&name)?;
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

fn load_group(state: &ApiState, name: &str) -> ApiResult<ThingGroup> {
    found(state.store.get_thing_group(name)?, "Thing group", name)
}

async fn create_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    validate::thing_name("thingGroupName", &name)?;
    let req: CreateGroup = parse_json(&body)?;
    let group = ThingGroup {
        arn: group_arn(&state, &name),
        name,
        id: uuid::Uuid::new_v4().to_string(),
        version: 1,
        properties: req.thing_group_properties.unwrap_or_else(|| json!({})),
        parent: req.parent_group_name,
        created_ms: now_ms(),
    };
    let group = state
        .blocking(move |s| {
            if let Some(parent) = &group.parent {
                load_group(s, parent)?;
            }
            if s.store.get_thing_group(&group.name)?.is_some() {
                return Err(ApiError::already_exists(
                    format!("Thing group {} already exists", group.name),
                    &group.name,
                    &group.arn,
                ));
            }
            s.store.create_thing_group(&group)?;
            Ok(group)
        })
        .await?;
    Ok(json_ok(json!({
        "thingGroupName": group.name, "thingGroupArn": group.arn, "thingGroupId": group.id
    })))
}

async fn describe_group(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    validate::thing_name("thingGroupName", &name)?;
    let group = state.blocking(move |s| load_group(s, &name)).await?;
    Ok(json_ok(group_json(&group)))
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
            s.store.add_thing_to_group(&group, &thing)?;
            // CONTINUOUS jobs targeting the group reach the new member.
            s.jobs.apply(&s.store, Plane::Control, |e| {
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
            s.store.remove_thing_from_group(&group, &thing)?;
            let groups = StoreGroups(s);
            s.jobs.apply(&s.store, Plane::Control, |e| {
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
        let all = state.store.list_thing_groups()?;
        let mut i = 0;
        while i < groups.len() {
            for g in &all {
                if g.parent.as_ref() == Some(&groups[i]) && !groups.contains(&g.name) {
                    groups.push(g.name.clone());
                }
            }
            i += 1;
        }
    }
    let mut things: Vec<String> = Vec::new();
    for g in &groups {
        for t in state.store.things_in_group(g)? {
            if !things.contains(&t) {
                things.push(t);
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
