//! What a decision is about: the [`Action`], the resource ARN ([`ResourceArns`]) and the connection
//! the policy variables and condition keys are read from ([`RequestContext`], [`Variable`]).

use std::collections::BTreeMap;

/// The MQTT actions the device gateway authorizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `iot:Connect`, on `client/<clientId>`.
    Connect,
    /// `iot:Publish`, on `topic/<topic>`.
    Publish,
    /// `iot:RetainPublish`, on `topic/<topic>`: a PUBLISH with the retain flag needs this as well.
    RetainPublish,
    /// `iot:Subscribe`, on `topicfilter/<filter>` (the filter as sent, `+` and `#` included).
    Subscribe,
    /// `iot:Receive`, on `topic/<topic>`: delivering a message to a subscriber.
    Receive,
}

impl Action {
    /// The IAM action name, e.g. `iot:Publish`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "iot:Connect",
            Self::Publish => "iot:Publish",
            Self::RetainPublish => "iot:RetainPublish",
            Self::Subscribe => "iot:Subscribe",
            Self::Receive => "iot:Receive",
        }
    }

    /// The name lowercased, as action patterns are compared (IAM action names ignore case).
    pub(crate) fn lowercase_name(self) -> &'static str {
        match self {
            Self::Connect => "iot:connect",
            Self::Publish => "iot:publish",
            Self::RetainPublish => "iot:retainpublish",
            Self::Subscribe => "iot:subscribe",
            Self::Receive => "iot:receive",
        }
    }
}

/// Builds the resource ARNs of one region and account: `arn:aws:iot:REGION:ACCOUNT:...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceArns {
    prefix: String,
}

impl ResourceArns {
    /// ARNs in `region` of `account` (e.g. `us-east-1`, `123456789012`).
    pub fn new(region: &str, account: &str) -> Self {
        Self {
            prefix: format!("arn:aws:iot:{region}:{account}:"),
        }
    }

    /// `...:client/<client_id>` for [`Action::Connect`].
    pub fn client(&self, client_id: &str) -> String {
        format!("{}client/{client_id}", self.prefix)
    }

    /// `...:topic/<topic>` for [`Action::Publish`], [`Action::RetainPublish`], [`Action::Receive`].
    pub fn topic(&self, topic: &str) -> String {
        format!("{}topic/{topic}", self.prefix)
    }

    /// `...:topicfilter/<filter>` for [`Action::Subscribe`].
    pub fn topic_filter(&self, filter: &str) -> String {
        format!("{}topicfilter/{filter}", self.prefix)
    }
}

/// The thing a connection acts as: in AWS IoT, the thing whose name is the connection's client id,
/// when that thing is attached to the connection's certificate (`AttachThingPrincipal`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Thing {
    /// `iot:Connection.Thing.ThingName`.
    pub name: String,
    /// `iot:Connection.Thing.ThingTypeName`, when the thing has a type.
    pub type_name: Option<String>,
    /// `iot:Connection.Thing.Attributes[<name>]`.
    pub attributes: BTreeMap<String, String>,
}

/// The facts about one connection that policy variables and condition keys read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// `iot:ClientId`: the MQTT client id of the connection.
    pub client_id: String,
    /// The attached thing named like the client id, if any. `iot:Connection.Thing.IsAttached` is
    /// `true` exactly when this is `Some`; without it the thing variables are unresolvable, so a
    /// statement naming them matches nothing (AWS: "access denied").
    pub thing: Option<Thing>,
    /// The X.509 certificate policy variables of the connection's certificate, keyed by the name
    /// after `iot:Certificate.` (`Subject.CommonName`, `Issuer.Organization`, ...; see
    /// `otastream_pki::Certificate::policy_variables`). Empty on a connection without one.
    pub certificate: BTreeMap<String, String>,
}

impl RequestContext {
    /// A connection with client id `client_id` and no attached thing.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            thing: None,
            certificate: BTreeMap::new(),
        }
    }

    /// The same connection acting as the attached thing `thing`.
    pub fn with_thing(mut self, thing: Thing) -> Self {
        self.thing = Some(thing);
        self
    }

    /// The same connection authenticated with a certificate of these policy variables.
    pub fn with_certificate(mut self, variables: BTreeMap<String, String>) -> Self {
        self.certificate = variables;
        self
    }

    /// The value of a variable / condition key, `None` when it has none for this connection.
    pub(crate) fn value(&self, variable: &Variable) -> Option<&str> {
        let thing = self.thing.as_ref();
        match variable {
            Variable::ClientId => Some(&self.client_id),
            Variable::ThingName => thing.map(|t| t.name.as_str()),
            Variable::IsAttached => Some(if thing.is_some() { "true" } else { "false" }),
            Variable::ThingTypeName => thing.and_then(|t| t.type_name.as_deref()),
            Variable::ThingAttribute(name) => {
                thing.and_then(|t| t.attributes.get(name).map(String::as_str))
            }
            Variable::Certificate(name) => self
                .certificate
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str()),
            Variable::Unknown(_) => None,
        }
    }
}

/// A policy variable or condition key that the engine knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Variable {
    /// `iot:ClientId`
    ClientId,
    /// `iot:Connection.Thing.ThingName`
    ThingName,
    /// `iot:Connection.Thing.IsAttached`
    IsAttached,
    /// `iot:Connection.Thing.ThingTypeName`
    ThingTypeName,
    /// `iot:Connection.Thing.Attributes[<name>]`
    ThingAttribute(String),
    /// `iot:Certificate.<name>`, e.g. `Subject.CommonName`.
    Certificate(String),
    /// Any other name: never has a value here (so it matches nothing), as an unresolvable variable.
    Unknown(String),
}

impl Variable {
    /// Parses a name such as `iot:ClientId` (ignoring ASCII case, as IAM does; attribute names keep
    /// theirs).
    pub(crate) fn parse(name: &str) -> Self {
        const ATTRIBUTES: &str = "iot:connection.thing.attributes[";
        const CERTIFICATE: &str = "iot:certificate.";
        let name = name.trim();
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "iot:clientid" => Self::ClientId,
            "iot:connection.thing.thingname" => Self::ThingName,
            "iot:connection.thing.isattached" => Self::IsAttached,
            "iot:connection.thing.thingtypename" => Self::ThingTypeName,
            _ if lower.starts_with(ATTRIBUTES) && lower.ends_with(']') => {
                Self::ThingAttribute(name[ATTRIBUTES.len()..name.len() - 1].to_owned())
            }
            _ if lower.starts_with(CERTIFICATE) => {
                Self::Certificate(name[CERTIFICATE.len()..].to_owned())
            }
            _ => Self::Unknown(name.to_owned()),
        }
    }
}
