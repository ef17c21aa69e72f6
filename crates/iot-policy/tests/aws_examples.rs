//! The AWS IoT Core developer guide's example policies, each with requests it must allow and deny.
//! Pages (docs.aws.amazon.com/iot/latest/developerguide/): connect-policy.html ("Connect policy
//! examples"), pub-sub-policy.html ("Publish/Subscribe policy examples"), connect-and-pub.html
//! ("Connect and publish policy examples"), thing-policy-examples.html ("Thing policy examples").
//! The policies follow those pages; the requests and expected decisions are ours.

use std::collections::BTreeMap;

use otastream_iot_policy::{
    Action, Decision, Policy, RequestContext, ResourceArns, Thing, evaluate,
};

use Action::{Connect, Publish, Receive, Subscribe};
use Decision::{Allow, ExplicitDeny, ImplicitDeny};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

fn arns() -> ResourceArns {
    ResourceArns::new(REGION, ACCOUNT)
}

/// A connection with client id `client` acting as the attached thing of the same name.
fn thing(client: &str) -> RequestContext {
    RequestContext::new(client).with_thing(Thing {
        name: client.into(),
        ..Thing::default()
    })
}

/// A connection with client id `client` and no attached thing.
fn unattached(client: &str) -> RequestContext {
    RequestContext::new(client)
}

/// The resource of `action` on `name` (a client id, topic or topic filter).
fn resource(action: Action, name: &str) -> String {
    match action {
        Connect => arns().client(name),
        Subscribe => arns().topic_filter(name),
        _ => arns().topic(name),
    }
}

/// `Statement` entries, wrapped into a 2012-10-17 document.
fn policy(statements: &str) -> Policy {
    let document = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
    Policy::parse(&document).unwrap_or_else(|e| panic!("{e}\n{document}"))
}

fn check(page: &str, policy: &Policy, cases: &[(RequestContext, Action, &str, Decision)]) {
    for (ctx, action, name, expected) in cases {
        let decision = evaluate([policy], ctx, *action, &resource(*action, name));
        assert_eq!(
            decision,
            *expected,
            "{page}: {} on {name:?} by client {:?} (thing {:?})",
            action.name(),
            ctx.client_id,
            ctx.thing.as_ref().map(|t| &t.name)
        );
    }
}

#[test]
fn connect_deny_listed_clients_allow_attached_things() {
    let p = policy(
        r#"{"Effect": "Deny", "Action": ["iot:Connect"], "Resource": [
              "arn:aws:iot:us-east-1:123456789012:client/client1",
              "arn:aws:iot:us-east-1:123456789012:client/client2"]},
           {"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}"#,
    );
    check(
        "connect-policy",
        &p,
        &[
            (thing("sensor-7"), Connect, "sensor-7", Allow),
            // A thing named client1 is attached, but client1 is denied explicitly.
            (thing("client1"), Connect, "client1", ExplicitDeny),
            (unattached("client2"), Connect, "client2", ExplicitDeny),
            // No thing attached: the variable has no value and IsAttached is false.
            (unattached("sensor-7"), Connect, "sensor-7", ImplicitDeny),
            // Claiming another thing's name as client id.
            (thing("sensor-7"), Connect, "sensor-8", ImplicitDeny),
            (thing("sensor-7"), Publish, "sensor-7", ImplicitDeny),
        ],
    );
}

#[test]
fn connect_one_fixed_client_id() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1"]}"#,
    );
    check(
        "connect-policy",
        &p,
        &[
            (unattached("client1"), Connect, "client1", Allow),
            (unattached("client11"), Connect, "client11", ImplicitDeny),
            (unattached("Client1"), Connect, "Client1", ImplicitDeny),
        ],
    );
    // Another account or region is another resource.
    let other = ResourceArns::new("eu-west-1", ACCOUNT).client("client1");
    assert_eq!(
        evaluate([&p], &unattached("client1"), Connect, &other),
        ImplicitDeny
    );
}

#[test]
fn pub_sub_on_one_specific_topic() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/clientId1"]},
           {"Effect": "Allow", "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/some_specific_topic"]},
           {"Effect": "Allow", "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/some_specific_topic"]},
           {"Effect": "Allow", "Action": ["iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/some_specific_topic"]}"#,
    );
    let c = || unattached("clientId1");
    check(
        "pub-sub-policy: specific topics",
        &p,
        &[
            (c(), Connect, "clientId1", Allow),
            (c(), Publish, "some_specific_topic", Allow),
            (c(), Subscribe, "some_specific_topic", Allow),
            (c(), Receive, "some_specific_topic", Allow),
            (c(), Publish, "some_specific_topic/sub", ImplicitDeny),
            (c(), Subscribe, "some_specific_topic/#", ImplicitDeny),
            (c(), Subscribe, "#", ImplicitDeny),
            (c(), Receive, "other_topic", ImplicitDeny),
        ],
    );
}

#[test]
fn pub_sub_on_topics_with_a_prefix() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/topic_prefix*"]},
           {"Effect": "Allow", "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/topic_prefix*"]}"#,
    );
    let c = || unattached("c");
    check(
        "pub-sub-policy: prefix",
        &p,
        &[
            (c(), Publish, "topic_prefix", Allow),
            (c(), Publish, "topic_prefix_extra/a/b", Allow),
            (c(), Receive, "topic_prefix/x", Allow),
            // `*` in the policy covers MQTT wildcards in the filter: they are just characters.
            (c(), Subscribe, "topic_prefix/#", Allow),
            (c(), Subscribe, "topic_prefix/+/status", Allow),
            (c(), Publish, "other/topic_prefix", ImplicitDeny),
            (c(), Subscribe, "+/topic_prefix", ImplicitDeny),
        ],
    );
}

#[test]
fn pub_sub_on_each_devices_own_topics() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]},
           {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*"]},
           {"Effect": "Allow", "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*"]}"#,
    );
    let a = || thing("thing-a");
    check(
        "pub-sub-policy: per device",
        &p,
        &[
            (a(), Connect, "thing-a", Allow),
            (a(), Publish, "things/thing-a/telemetry", Allow),
            (a(), Subscribe, "things/thing-a/#", Allow),
            (a(), Receive, "things/thing-a/cmd", Allow),
            // Another thing's topics, in every direction.
            (a(), Publish, "things/thing-b/telemetry", ImplicitDeny),
            (a(), Subscribe, "things/thing-b/#", ImplicitDeny),
            (a(), Subscribe, "things/+/telemetry", ImplicitDeny),
            (a(), Receive, "things/thing-b/cmd", ImplicitDeny),
            // Without an attached thing nothing resolves.
            (
                unattached("thing-a"),
                Publish,
                "things/thing-a/telemetry",
                ImplicitDeny,
            ),
        ],
    );
}

#[test]
fn pub_sub_with_a_thing_attribute_in_the_topic() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.Attributes[attributeName]}/*"]}"#,
    );
    let with_attribute = RequestContext::new("t1").with_thing(Thing {
        name: "t1".into(),
        type_name: None,
        attributes: BTreeMap::from([("attributeName".to_owned(), "plant-9".to_owned())]),
    });
    check(
        "pub-sub-policy: thing attribute",
        &p,
        &[
            (with_attribute.clone(), Publish, "plant-9/line-2", Allow),
            (with_attribute, Publish, "plant-8/line-2", ImplicitDeny),
            (thing("t1"), Publish, "plant-9/line-2", ImplicitDeny),
        ],
    );
}

#[test]
fn deny_publishing_and_receiving_below_a_topic() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/department/*"]},
           {"Effect": "Allow", "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/department/*"]},
           {"Effect": "Deny", "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/department/admins"]},
           {"Effect": "Deny", "Action": ["iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/department/admins/*"]}"#,
    );
    let c = || unattached("c");
    check(
        "pub-sub-policy: deny subtopics",
        &p,
        &[
            (c(), Publish, "department/finance", Allow),
            (c(), Publish, "department/admins", ExplicitDeny),
            (c(), Publish, "department/admins/x", Allow),
            (c(), Receive, "department/finance", Allow),
            (c(), Receive, "department/admins/secret", ExplicitDeny),
            // Subscribing to everything is allowed; the Deny on Receive still filters delivery.
            (c(), Subscribe, "department/#", Allow),
        ],
    );
}

#[test]
fn mqtt_wildcards_in_topicfilter_resources_are_literal() {
    let p = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Subscribe"], "Resource": [
              "arn:aws:iot:us-east-1:123456789012:topicfilter/sensors/#",
              "arn:aws:iot:us-east-1:123456789012:topicfilter/sensors/+/temperature"]},
           {"Effect": "Allow", "Action": ["iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/sensors/*"]}"#,
    );
    let c = || unattached("c");
    check(
        "pub-sub-policy: MQTT wildcards",
        &p,
        &[
            (c(), Subscribe, "sensors/#", Allow),
            (c(), Subscribe, "sensors/+/temperature", Allow),
            // `#` and `+` are not wildcards in a policy: these filters are other strings.
            (c(), Subscribe, "sensors/room1", ImplicitDeny),
            (c(), Subscribe, "sensors/room1/temperature", ImplicitDeny),
            (c(), Subscribe, "sensors/+", ImplicitDeny),
            (c(), Receive, "sensors/room1/temperature", Allow),
            // `#` in a topic resource does not stand for the levels below.
            (c(), Publish, "sensors/room1", ImplicitDeny),
        ],
    );
}

#[test]
fn connect_and_publish_as_the_thing_or_the_client_id() {
    let registered = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:Connection.Thing.ThingName}"]},
           {"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]}"#,
    );
    check(
        "connect-and-pub: registered",
        &registered,
        &[
            (thing("dev-1"), Connect, "dev-1", Allow),
            (thing("dev-1"), Publish, "dev-1", Allow),
            (thing("dev-1"), Publish, "dev-2", ImplicitDeny),
            (unattached("dev-1"), Connect, "dev-1", ImplicitDeny),
        ],
    );
    let unregistered = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}"]},
           {"Effect": "Allow", "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1"]}"#,
    );
    check(
        "connect-and-pub: unregistered",
        &unregistered,
        &[
            (unattached("client1"), Connect, "client1", Allow),
            (unattached("client1"), Publish, "client1", Allow),
            (unattached("client1"), Publish, "client2", ImplicitDeny),
            // A client id is substituted literally: `*` does not become a wildcard.
            (unattached("*"), Publish, "anything", ImplicitDeny),
            (unattached("*"), Publish, "*", Allow),
        ],
    );
}

#[test]
fn thing_policies_with_conditions() {
    let attached = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": ["*"],
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}}}"#,
    );
    check(
        "thing-policy-examples: IsAttached",
        &attached,
        &[
            (thing("any"), Connect, "any", Allow),
            (unattached("any"), Connect, "any", ImplicitDeny),
        ],
    );
    let typed = policy(
        r#"{"Effect": "Allow", "Action": ["iot:Publish"],
            "Resource": "arn:aws:iot:us-east-1:123456789012:topic/device/stats",
            "Condition": {
              "StringEquals": {
                "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
                "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name"},
              "Bool": {"iot:Connection.Thing.IsAttached": "true"}}}"#,
    );
    let device = |type_name: Option<&str>, value: &str| {
        RequestContext::new("d").with_thing(Thing {
            name: "d".into(),
            type_name: type_name.map(str::to_owned),
            attributes: BTreeMap::from([("attributeName".to_owned(), value.to_owned())]),
        })
    };
    check(
        "thing-policy-examples: type and attribute",
        &typed,
        &[
            (
                device(Some("Thing_Type_Name"), "attributeValue"),
                Publish,
                "device/stats",
                Allow,
            ),
            (
                device(Some("Thing_Type_Name"), "other"),
                Publish,
                "device/stats",
                ImplicitDeny,
            ),
            (
                device(None, "attributeValue"),
                Publish,
                "device/stats",
                ImplicitDeny,
            ),
            (
                device(Some("Other_Type"), "attributeValue"),
                Publish,
                "device/stats",
                ImplicitDeny,
            ),
            (unattached("d"), Publish, "device/stats", ImplicitDeny),
        ],
    );
}
