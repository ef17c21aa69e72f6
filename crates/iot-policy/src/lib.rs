//! AWS IoT Core policies as a pure library: parse and validate a policy document, then decide whether
//! a connection may connect, publish, subscribe or receive. No I/O, no clock, no storage: the
//! control plane stores documents, the gateway asks [`evaluate`].
//!
//! The rules are AWS's (AWS IoT Core developer guide: "AWS IoT Core policies", "AWS IoT Core policy
//! variables", "Example policies"): statements `Allow` or `Deny` actions on resources; an explicit
//! `Deny` in any attached policy wins, then any `Allow`, else the request is denied by default.
//! Resources are `*` and `?` wildcard patterns (MQTT's `+` / `#` are literal characters in them),
//! with the policy variables `${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`,
//! `${iot:Connection.Thing.IsAttached}`, `${iot:Connection.Thing.ThingTypeName}`,
//! `${iot:Connection.Thing.Attributes[name]}` and the X.509 ones (`${iot:Certificate.Subject.CommonName}`,
//! ...), in `Resource` and in `Condition`.
//!
//! # How the gateway calls it
//! Build one [`RequestContext`] per connection (client id; the attached thing named like the client
//! id, if the certificate has one; the certificate's policy variables from
//! `otastream_pki::Certificate::policy_variables`) and a [`ResourceArns`] for the server's region and
//! account, then with the policies attached to the connection's certificate:
//! - **CONNECT**: `evaluate(policies, &ctx, Action::Connect, &arns.client(client_id))`; refuse the
//!   connection (CONNACK "not authorized") unless allowed.
//! - **PUBLISH**: `Action::Publish` on `arns.topic(topic)` (and `Action::RetainPublish` too when the
//!   retain flag is set); AWS disconnects a client that publishes where it may not.
//! - **SUBSCRIBE**: `Action::Subscribe` on `arns.topic_filter(filter)` for each filter, the filter
//!   exactly as sent (`+`, `#` included); a refused filter gets the SUBACK failure code.
//! - **Delivery**: `Action::Receive` on `arns.topic(topic)` before each message goes to a
//!   subscriber; a refused message is not delivered (the decision can be cached per session and
//!   topic until the session's policies change).
//!
//! # Layout
//! - `document.rs`: [`Policy::parse`] (validation, [`MalformedPolicy`]) and the typed statements.
//! - `pattern.rs`: wildcard templates with variables, the glob match.
//! - `condition.rs`: the `Condition` operators (`StringEquals`, `StringNotEquals`, `StringLike`,
//!   `StringNotLike`, the `IgnoreCase` and `IfExists` forms, `Bool`, `Null`).
//! - `context.rs`: [`Action`], [`ResourceArns`], [`RequestContext`], [`Thing`].
//! - `builtin.rs`: [`DEV_THING_POLICY_DOCUMENT`], the policy `otastream dev-cert` attaches (the
//!   gateway's former fixed rule).
//!
//! # Example
//! ```
//! use otastream_iot_policy::{Action, Decision, Policy, RequestContext, ResourceArns, Thing, evaluate};
//!
//! let policy = Policy::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow",
//!     "Action": "iot:Connect",
//!     "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"
//!   }]
//! }"#)?;
//! let arns = ResourceArns::new("us-east-1", "123456789012");
//! let ctx = RequestContext::new("sensor-1").with_thing(Thing { name: "sensor-1".into(), ..Thing::default() });
//! assert_eq!(evaluate([&policy], &ctx, Action::Connect, &arns.client("sensor-1")), Decision::Allow);
//! let stranger = RequestContext::new("sensor-1");
//! assert_eq!(evaluate([&policy], &stranger, Action::Connect, &arns.client("sensor-1")), Decision::ImplicitDeny);
//! # Ok::<(), otastream_iot_policy::MalformedPolicy>(())
//! ```

mod builtin;
mod condition;
mod context;
mod document;
mod pattern;

pub use builtin::{DEV_THING_POLICY_DOCUMENT, DEV_THING_POLICY_NAME};
pub use context::{Action, RequestContext, ResourceArns, Thing};
pub use document::{Policy, VERSION_2008_10_17, VERSION_2012_10_17};

use document::{Effect, Pattern, Patterns, Statement};

/// A policy document AWS would refuse with `MalformedPolicyException`: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct MalformedPolicy {
    /// The element at fault, e.g. `Statement[1]` or `Version`.
    pub at: String,
    /// What is wrong with it.
    pub reason: String,
}

impl MalformedPolicy {
    pub(crate) fn new(at: &str, reason: impl Into<String>) -> Self {
        Self {
            at: at.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The outcome of [`evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A statement denies it (whatever else allows it).
    ExplicitDeny,
    /// No statement allows it: AWS's default deny.
    ImplicitDeny,
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(self) -> bool {
        self == Self::Allow
    }
}

/// Decides `action` on `resource` (a full ARN, see [`ResourceArns`]) for the connection `ctx`, under
/// all of `policies` together: explicit deny over allow, default deny.
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
    ctx: &RequestContext,
    action: Action,
    resource: &str,
) -> Decision {
    let mut allowed = false;
    for statement in policies.into_iter().flat_map(|p| &p.statements) {
        if statement.applies(ctx, action, resource) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

impl Statement {
    fn applies(&self, ctx: &RequestContext, action: Action, resource: &str) -> bool {
        self.actions.matches(ctx, action.lowercase_name())
            && self.resources.matches(ctx, resource)
            && self.conditions.iter().all(|c| c.holds(ctx))
    }
}

impl Patterns {
    fn matches(&self, ctx: &RequestContext, text: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(ctx, text)) != self.except
    }
}

impl Pattern {
    fn matches(&self, ctx: &RequestContext, text: &str) -> bool {
        match self {
            Self::Whole(template) => template.matches(ctx, text),
            Self::Arn(fields) => {
                let mut parts = text.splitn(fields.len(), ':');
                fields
                    .iter()
                    .all(|field| parts.next().is_some_and(|part| field.matches(ctx, part)))
            }
        }
    }
}
