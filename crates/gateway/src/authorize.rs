//! AWS IoT policies applied to one connection: what [`crate::trust::StoreTrust`] found for a
//! registered certificate ([`Authorization`]: the default versions of the policies attached to it,
//! the things it is attached to, its X.509 policy variables) and, once the client id is known, the
//! per-connection [`Authorizer`] the session asks on CONNECT, PUBLISH, SUBSCRIBE and delivery.
//! The decisions are `otastream_iot_policy::evaluate`'s (explicit deny over allow, default deny).

use std::collections::BTreeMap;
use std::sync::Arc;

use otastream_iot_policy::{Action, Policy, RequestContext, ResourceArns, Thing, evaluate};

/// Everything a registered certificate is granted, as read at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The attached policies' default versions.
    pub policies: Vec<Policy>,
    /// The ARNs of this server's region and account.
    pub arns: ResourceArns,
    /// The things the certificate is attached to (with type and attributes).
    pub attached_things: Vec<Thing>,
    /// `iot:Certificate.*` variables of the certificate.
    pub certificate: BTreeMap<String, String>,
}

/// The policy decisions of one connection. Two pointers, so a session without policies pays 16
/// bytes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    grants: Arc<Authorization>,
    ctx: Box<RequestContext>,
}

impl Authorizer {
    /// The authorizer of a connection with `client_id`: `iot:Connection.Thing.*` is the attached
    /// thing named like the client id, if there is one (AWS's rule).
    pub fn for_client(grants: Arc<Authorization>, client_id: &str) -> Self {
        let mut ctx = RequestContext::new(client_id).with_certificate(grants.certificate.clone());
        if let Some(thing) = grants.attached_things.iter().find(|t| t.name == client_id) {
            ctx = ctx.with_thing(thing.clone());
        }
        Self {
            grants,
            ctx: Box::new(ctx),
        }
    }

    fn allows(&self, action: Action, resource: &str) -> bool {
        evaluate(&self.grants.policies, &self.ctx, action, resource).is_allowed()
    }

    /// `iot:Connect` on `client/<clientId>`.
    pub fn may_connect(&self) -> bool {
        self.allows(
            Action::Connect,
            &self.grants.arns.client(&self.ctx.client_id),
        )
    }

    /// `iot:Publish` on `topic/<topic>` (and `iot:RetainPublish` when `retain`).
    pub fn may_publish(&self, topic: &str, retain: bool) -> bool {
        let resource = self.grants.arns.topic(topic);
        self.allows(Action::Publish, &resource)
            && (!retain || self.allows(Action::RetainPublish, &resource))
    }

    /// `iot:Subscribe` on `topicfilter/<filter>`, the filter as sent.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.allows(Action::Subscribe, &self.grants.arns.topic_filter(filter))
    }

    /// `iot:Receive` on `topic/<topic>`.
    pub fn may_receive(&self, topic: &str) -> bool {
        self.allows(Action::Receive, &self.grants.arns.topic(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The developer guide's "connect as the thing, use its own topics only" example.
    const OWN_TOPICS: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        { "Effect": "Allow", "Action": "iot:Connect",
          "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}" },
        { "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
          "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*" },
        { "Effect": "Allow", "Action": "iot:Subscribe",
          "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*" },
        { "Effect": "Deny", "Action": "iot:Publish",
          "Resource": "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/forbidden" }
      ]
    }"#;

    fn grants(policies: &[&str], things: &[&str]) -> Arc<Authorization> {
        Arc::new(Authorization {
            policies: policies
                .iter()
                .map(|p| Policy::parse(p).expect("valid policy"))
                .collect(),
            arns: ResourceArns::new("us-east-1", "123456789012"),
            attached_things: things
                .iter()
                .map(|t| Thing {
                    name: (*t).to_owned(),
                    ..Thing::default()
                })
                .collect(),
            certificate: BTreeMap::new(),
        })
    }

    #[test]
    fn a_device_is_confined_to_its_own_topics_and_deny_wins() {
        let a = Authorizer::for_client(grants(&[OWN_TOPICS], &["thing-a", "thing-b"]), "thing-a");
        assert!(a.may_connect());
        assert!(a.may_publish("things/thing-a/telemetry", false));
        assert!(a.may_subscribe("things/thing-a/commands"));
        assert!(a.may_receive("things/thing-a/commands"));
        // Another thing's topics, an ordinary topic, a wildcard reaching further: refused.
        assert!(!a.may_publish("things/thing-b/telemetry", false));
        assert!(!a.may_subscribe("things/thing-b/commands"));
        assert!(!a.may_receive("things/thing-b/commands"));
        assert!(!a.may_publish("lobby", false));
        assert!(!a.may_subscribe("things/#"));
        // Explicit deny over the allow of the same topic.
        assert!(!a.may_publish("things/thing-a/forbidden", false));
        // Retained publishes need iot:RetainPublish as well.
        assert!(!a.may_publish("things/thing-a/telemetry", true));
    }

    #[test]
    fn the_thing_variable_needs_an_attached_thing_named_like_the_client_id() {
        let stranger = Authorizer::for_client(grants(&[OWN_TOPICS], &["thing-a"]), "thing-z");
        assert!(!stranger.may_connect(), "thing-z is not attached");
        let none = Authorizer::for_client(grants(&[], &["thing-a"]), "thing-a");
        assert!(!none.may_connect(), "no policy: nothing is allowed");
        assert!(!none.may_receive("things/thing-a/x"));
    }

    #[test]
    fn the_builtin_dev_policy_allows_what_the_fixed_rule_allows() {
        let dev = Authorizer::for_client(
            grants(&[otastream_iot_policy::DEV_THING_POLICY_DOCUMENT], &["t1"]),
            "t1",
        );
        assert!(dev.may_connect());
        assert!(dev.may_subscribe("$aws/things/t1/jobs/notify-next"));
        assert!(dev.may_publish("$aws/things/t1/streams/s/get/cbor", false));
        assert!(dev.may_subscribe("#"));
        assert!(!dev.may_subscribe("$aws/things/t2/jobs/notify-next"));
        assert!(!dev.may_publish("$aws/things/t2/streams/s/get/cbor", false));
    }
}
