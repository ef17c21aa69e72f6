//! The `Condition` block: `{ "<Operator>": { "<key>": "<value>" | ["<value>", ...] } }`.
//!
//! IAM's rules (IAM User Guide, "IAM JSON policy elements: Condition operators"): every operator of a
//! block and every key of an operator must hold (AND); the values of one key are alternatives (OR); a
//! negated operator (`StringNotEquals`, `StringNotLike`, ...) holds when none matches. A key the
//! request does not have makes a positive operator false and a negated one true; `...IfExists`
//! makes a missing key true; `Null: {"key": "true"}` holds when the key is missing.

use serde_json::Value;

use crate::MalformedPolicy;
use crate::context::{RequestContext, Variable};
use crate::pattern::Template;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Bool,
}

/// One `operator: { key: values }` test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    test: Test,
    key: Variable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Test {
    /// A comparison; `negated` for the `...Not...` forms.
    Compare {
        operator: Operator,
        negated: bool,
        if_exists: bool,
        values: Vec<Template>,
    },
    /// `Null`: whether the key is missing (`true`) or present (`false`).
    Null(bool),
}

/// Parses a statement's `Condition` object (`at` names it in errors).
pub(crate) fn parse_block(
    block: &Value,
    variables: bool,
    at: &str,
) -> Result<Vec<Condition>, MalformedPolicy> {
    let Value::Object(operators) = block else {
        return Err(MalformedPolicy::new(at, "Condition must be an object"));
    };
    let mut conditions = Vec::new();
    for (operator_name, keys) in operators {
        let Value::Object(keys) = keys else {
            return Err(MalformedPolicy::new(
                at,
                format!("Condition operator {operator_name} must map keys to values"),
            ));
        };
        for (key, values) in keys {
            let values = strings(values).ok_or_else(|| {
                MalformedPolicy::new(
                    at,
                    format!("Condition {operator_name} {key}: values must be strings, booleans or numbers"),
                )
            })?;
            let test = parse_test(operator_name, &values, variables).ok_or_else(|| {
                MalformedPolicy::new(
                    at,
                    format!("unsupported Condition operator {operator_name}"),
                )
            })?;
            conditions.push(Condition {
                test,
                key: Variable::parse(key),
            });
        }
    }
    Ok(conditions)
}

fn parse_test(name: &str, values: &[String], variables: bool) -> Option<Test> {
    if name == "Null" {
        let missing = match values {
            [one] if one.eq_ignore_ascii_case("true") => true,
            [one] if one.eq_ignore_ascii_case("false") => false,
            _ => return None,
        };
        return Some(Test::Null(missing));
    }
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (name, false),
    };
    let (operator, negated) = match base {
        "StringEquals" => (Operator::StringEquals, false),
        "StringNotEquals" => (Operator::StringEquals, true),
        "StringEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Operator::StringEqualsIgnoreCase, true),
        "StringLike" => (Operator::StringLike, false),
        "StringNotLike" => (Operator::StringLike, true),
        "Bool" => (Operator::Bool, false),
        _ => return None,
    };
    let values = values
        .iter()
        .map(|v| match operator {
            Operator::StringLike => Template::parse(v, variables),
            // Only StringLike has wildcards; the others compare literally after substitution.
            _ => Template::parse(&escape_wildcards(v), variables),
        })
        .collect();
    Some(Test::Compare {
        operator,
        negated,
        if_exists,
        values,
    })
}

/// `*` and `?` written as the literal forms `$(*)` / `$(?)`, so that [`Template`] keeps them literal.
fn escape_wildcards(value: &str) -> String {
    value.replace('*', "$(*)").replace('?', "$(?)")
}

/// A JSON string, bool or number, or an array of them, as strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => None,
        other => one(other).map(|s| vec![s]),
    }
}

impl Condition {
    /// Whether this test holds for the connection.
    pub(crate) fn holds(&self, ctx: &RequestContext) -> bool {
        let actual = ctx.value(&self.key);
        match &self.test {
            Test::Null(missing) => actual.is_none() == *missing,
            Test::Compare {
                operator,
                negated,
                if_exists,
                values,
            } => {
                let Some(actual) = actual else {
                    return *if_exists || *negated;
                };
                let any = values.iter().any(|v| compare(*operator, v, ctx, actual));
                any != *negated
            }
        }
    }
}

fn compare(operator: Operator, expected: &Template, ctx: &RequestContext, actual: &str) -> bool {
    match operator {
        Operator::StringEquals | Operator::StringLike => expected.matches(ctx, actual),
        Operator::StringEqualsIgnoreCase => expected.matches_ignoring_case(ctx, actual),
        Operator::Bool => expected
            .as_literal()
            .is_some_and(|value| value.eq_ignore_ascii_case(actual)),
    }
}
