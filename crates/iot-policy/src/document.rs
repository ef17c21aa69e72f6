//! Parsing and validating a policy document into a [`Policy`]: what AWS answers with
//! `MalformedPolicyException` is a [`MalformedPolicy`] here, with the element and the reason.

use serde_json::{Map, Value};

use crate::MalformedPolicy;
use crate::condition::{self, Condition};
use crate::pattern::Template;

/// The policy language version with policy variables.
pub const VERSION_2012_10_17: &str = "2012-10-17";
/// The older version: accepted, but `${...}` is literal text in it (IAM's rule).
pub const VERSION_2008_10_17: &str = "2008-10-17";

/// A parsed, validated policy document. Parse once (on CreatePolicy / when loading), evaluate often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(crate) statements: Vec<Statement>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or (for `NotAction` / `NotResource`) everything except them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Patterns {
    pub(crate) except: bool,
    pub(crate) patterns: Vec<Pattern>,
}

/// An action pattern (lowercased, no variables) or a resource pattern (`*` or an ARN split into its
/// six fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    Whole(Template),
    Arn(Vec<Template>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) actions: Patterns,
    pub(crate) resources: Patterns,
    pub(crate) conditions: Vec<Condition>,
}

const ARN_FIELDS: usize = 6;

impl Policy {
    /// Parses and validates a policy document (the `policyDocument` of `CreatePolicy`).
    pub fn parse(document: &str) -> Result<Self, MalformedPolicy> {
        let value: Value = serde_json::from_str(document)
            .map_err(|e| MalformedPolicy::new("document", format!("not valid JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(MalformedPolicy::new("document", "must be a JSON object"));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(MalformedPolicy::new(
                    "document",
                    format!("unknown element {key}"),
                ));
            }
        }
        let variables = match top.get("Version") {
            None => false,
            Some(Value::String(v)) if v == VERSION_2012_10_17 => true,
            Some(Value::String(v)) if v == VERSION_2008_10_17 => false,
            Some(other) => {
                return Err(MalformedPolicy::new(
                    "Version",
                    format!(
                        "must be \"{VERSION_2012_10_17}\" or \"{VERSION_2008_10_17}\", not {other}"
                    ),
                ));
            }
        };
        if let Some(id) = top.get("Id")
            && !id.is_string()
        {
            return Err(MalformedPolicy::new("Id", "must be a string"));
        }
        let statements = match top.get("Statement") {
            None => return Err(MalformedPolicy::new("document", "Statement is missing")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(MalformedPolicy::new("Statement", "must not be empty"));
            }
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => {
                return Err(MalformedPolicy::new(
                    "Statement",
                    "must be an object or an array of objects",
                ));
            }
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| parse_statement(s, variables, &format!("Statement[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Self { statements })
    }
}

fn parse_statement(value: &Value, variables: bool, at: &str) -> Result<Statement, MalformedPolicy> {
    let Value::Object(fields) = value else {
        return Err(MalformedPolicy::new(at, "must be an object"));
    };
    for key in fields.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
            | "Condition" => {}
            "Principal" | "NotPrincipal" => {
                return Err(MalformedPolicy::new(
                    at,
                    format!(
                        "{key} is not allowed: an AWS IoT policy applies to the principals it is attached to"
                    ),
                ));
            }
            _ => return Err(MalformedPolicy::new(at, format!("unknown element {key}"))),
        }
    }
    if fields.get("Sid").is_some_and(|sid| !sid.is_string()) {
        return Err(MalformedPolicy::new(at, "Sid must be a string"));
    }
    let effect = match fields.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            return Err(MalformedPolicy::new(
                at,
                format!("Effect must be \"Allow\" or \"Deny\", not \"{other}\""),
            ));
        }
        None => {
            return Err(MalformedPolicy::new(
                at,
                "Effect is missing or not a string",
            ));
        }
    };
    let actions = one_of(fields, "Action", "NotAction", at, |text| {
        parse_action(text).map_err(|reason| MalformedPolicy::new(at, reason))
    })?;
    let resources = one_of(fields, "Resource", "NotResource", at, |text| {
        parse_resource(text, variables).map_err(|reason| MalformedPolicy::new(at, reason))
    })?;
    let conditions = match fields.get("Condition") {
        Some(block) => condition::parse_block(block, variables, at)?,
        None => Vec::new(),
    };
    Ok(Statement {
        effect,
        actions,
        resources,
        conditions,
    })
}

/// Exactly one of `name` / `not_name`, a string or a non-empty array of strings.
fn one_of(
    fields: &Map<String, Value>,
    name: &str,
    not_name: &str,
    at: &str,
    parse: impl Fn(&str) -> Result<Pattern, MalformedPolicy>,
) -> Result<Patterns, MalformedPolicy> {
    let (except, key, value) = match (fields.get(name), fields.get(not_name)) {
        (Some(v), None) => (false, name, v),
        (None, Some(v)) => (true, not_name, v),
        (Some(_), Some(_)) => {
            return Err(MalformedPolicy::new(
                at,
                format!("has both {name} and {not_name}"),
            ));
        }
        (None, None) => return Err(MalformedPolicy::new(at, format!("{name} is missing"))),
    };
    let texts: Vec<&str> = match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| MalformedPolicy::new(at, format!("{key} must hold strings only")))?,
        _ => {
            return Err(MalformedPolicy::new(
                at,
                format!("{key} must be a string or a non-empty array of strings"),
            ));
        }
    };
    let patterns = texts.into_iter().map(parse).collect::<Result<_, _>>()?;
    Ok(Patterns { except, patterns })
}

/// `*` or `vendor:action`, either part possibly with wildcards (`iot:*`, `iot:Pub*`).
fn parse_action(text: &str) -> Result<Pattern, String> {
    let valid = text == "*"
        || text.split_once(':').is_some_and(|(vendor, action)| {
            !vendor.is_empty()
                && !action.is_empty()
                && vendor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                && action
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        });
    if !valid {
        return Err(format!(
            "Action \"{text}\" must be \"*\" or \"vendor:Action\", e.g. \"iot:Publish\""
        ));
    }
    Ok(Pattern::Whole(Template::parse(
        &text.to_ascii_lowercase(),
        false,
    )))
}

/// `*` or an ARN `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, fields possibly with wildcards.
fn parse_resource(text: &str, variables: bool) -> Result<Pattern, String> {
    let template = Template::parse(text, variables);
    if template.is_star() {
        return Ok(Pattern::Whole(template));
    }
    let fields = template.split_fields(ARN_FIELDS);
    if !text.starts_with("arn:") || fields.len() < ARN_FIELDS {
        return Err(format!(
            "Resource \"{text}\" must be \"*\" or an ARN such as arn:aws:iot:REGION:ACCOUNT:topic/NAME"
        ));
    }
    Ok(Pattern::Arn(fields))
}
