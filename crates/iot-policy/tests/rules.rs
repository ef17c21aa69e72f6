//! The engine's own rules: document validation (`MalformedPolicyException` reasons), action
//! wildcards, several policies together, `Not...` elements, condition operators, wildcard edge cases.

use otastream_iot_policy::{
    Action, Decision, MalformedPolicy, Policy, RequestContext, ResourceArns, Thing, evaluate,
};

const A: &str = "arn:aws:iot:us-east-1:123456789012";

fn arns() -> ResourceArns {
    ResourceArns::new("us-east-1", "123456789012")
}

fn malformed(document: &str) -> MalformedPolicy {
    match Policy::parse(document) {
        Err(e) => e,
        Ok(p) => panic!("accepted {document}: {p:?}"),
    }
}

#[test]
fn malformed_documents_say_where_and_why() {
    let stmt = |body: &str| format!(r#"{{"Version": "2012-10-17", "Statement": {body}}}"#);
    let cases: Vec<(String, &str, &str)> = vec![
        ("{".into(), "document", "not valid JSON"),
        ("[]".into(), "document", "must be a JSON object"),
        (
            r#"{"Version": "2012-10-17"}"#.into(),
            "document",
            "Statement is missing",
        ),
        (
            r#"{"Version": "2019-01-01", "Statement": []}"#.into(),
            "Version",
            "must be",
        ),
        (
            r#"{"Version": "2012-10-17", "Statement": [], "Extra": 1}"#.into(),
            "document",
            "unknown element Extra",
        ),
        (stmt("[]"), "Statement", "must not be empty"),
        (
            stmt("\"Allow\""),
            "Statement",
            "must be an object or an array",
        ),
        (stmt("[1]"), "Statement[0]", "must be an object"),
        (
            stmt(r#"{"Action": "iot:*", "Resource": "*"}"#),
            "Statement[0]",
            "Effect is missing",
        ),
        (
            stmt(r#"{"Effect": "allow", "Action": "iot:*", "Resource": "*"}"#),
            "Statement[0]",
            "Effect must be",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Resource": "*"}"#),
            "Statement[0]",
            "Action is missing",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "iot:*"}"#),
            "Statement[0]",
            "Resource is missing",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Action": "iot:*", "NotAction": "iot:Connect", "Resource": "*"}"#,
            ),
            "Statement[0]",
            "both Action and NotAction",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": [], "Resource": "*"}"#),
            "Statement[0]",
            "non-empty array",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": [1], "Resource": "*"}"#),
            "Statement[0]",
            "strings only",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "Publish", "Resource": "*"}"#),
            "Statement[0]",
            "vendor:Action",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "topic/a"}"#),
            "Statement[0]",
            "must be \"*\" or an ARN",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:us-east-1"}"#),
            "Statement[0]",
            "must be \"*\" or an ARN",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Principal": "*", "Action": "iot:*", "Resource": "*"}"#),
            "Statement[0]",
            "Principal is not allowed",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Colour": "red"}"#),
            "Statement[0]",
            "unknown element Colour",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": []}"#),
            "Statement[0]",
            "Condition must be an object",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"NumericEquals": {"k": "1"}}}"#,
            ),
            "Statement[0]",
            "unsupported Condition operator NumericEquals",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": {"Bool": {"k": {}}}}"#,
            ),
            "Statement[0]",
            "values must be",
        ),
        (
            stmt(
                r#"[{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}, {"Effect": "Deny", "Action": "iot:*"}]"#,
            ),
            "Statement[1]",
            "Resource is missing",
        ),
    ];
    for (document, at, reason) in cases {
        let e = malformed(&document);
        assert_eq!(e.at, at, "{document}: {e}");
        assert!(e.reason.contains(reason), "{document}: {e}");
    }
}

#[test]
fn a_single_statement_object_and_string_elements_are_accepted() {
    let p = Policy::parse(&format!(
        r#"{{"Version": "2012-10-17", "Id": "x", "Statement": {{"Sid": "One", "Effect": "Allow",
             "Action": "iot:Publish", "Resource": "{A}:topic/a"}}}}"#
    ))
    .unwrap();
    let ctx = RequestContext::new("c");
    assert!(evaluate([&p], &ctx, Action::Publish, &arns().topic("a")).is_allowed());
    assert!(!evaluate([&p], &ctx, Action::Publish, &arns().topic("b")).is_allowed());
}

#[test]
fn action_patterns_ignore_case_and_take_wildcards() {
    let ctx = RequestContext::new("c");
    let topic = arns().topic("t");
    let decide = |action_pattern: &str, action: Action| {
        let p = Policy::parse(&format!(
            r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "{action_pattern}", "Resource": "*"}}]}}"#
        ))
        .unwrap();
        evaluate([&p], &ctx, action, &topic)
    };
    assert_eq!(decide("iot:*", Action::Receive), Decision::Allow);
    assert_eq!(decide("*", Action::Subscribe), Decision::Allow);
    assert_eq!(decide("IOT:PUBLISH", Action::Publish), Decision::Allow);
    assert_eq!(decide("iot:Pub*", Action::Publish), Decision::Allow);
    assert_eq!(decide("iot:Pub*", Action::Receive), Decision::ImplicitDeny);
    assert_eq!(decide("iot:?eceive", Action::Receive), Decision::Allow);
    assert_eq!(
        decide("iot:Publish", Action::RetainPublish),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide("iot:*Publish", Action::RetainPublish),
        Decision::Allow
    );
    assert_eq!(
        decide("greengrass:*", Action::Publish),
        Decision::ImplicitDeny
    );
}

#[test]
fn policies_combine_and_one_deny_anywhere_wins() {
    let allow_all = Policy::parse(r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}}"#).unwrap();
    let deny_secret = Policy::parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Deny", "Action": "iot:Receive", "Resource": "{A}:topic/secret/*"}}}}"#
    ))
    .unwrap();
    let ctx = RequestContext::new("c");
    let secret = arns().topic("secret/x");
    assert_eq!(
        evaluate([&allow_all], &ctx, Action::Receive, &secret),
        Decision::Allow
    );
    assert_eq!(
        evaluate([&allow_all, &deny_secret], &ctx, Action::Receive, &secret),
        Decision::ExplicitDeny
    );
    assert_eq!(
        evaluate([&deny_secret, &allow_all], &ctx, Action::Receive, &secret),
        Decision::ExplicitDeny
    );
    assert_eq!(
        evaluate([&deny_secret], &ctx, Action::Publish, &secret),
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluate(
            std::iter::empty(),
            &ctx,
            Action::Connect,
            &arns().client("c")
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_action_and_not_resource_invert_their_lists() {
    let p = Policy::parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [
             {{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}},
             {{"Effect": "Allow", "Action": "iot:Publish", "NotResource": "{A}:topic/forbidden"}}]}}"#
    ))
    .unwrap();
    let ctx = RequestContext::new("c");
    assert!(evaluate([&p], &ctx, Action::Subscribe, &arns().topic_filter("x")).is_allowed());
    assert!(evaluate([&p], &ctx, Action::Publish, &arns().topic("open")).is_allowed());
    assert!(!evaluate([&p], &ctx, Action::Publish, &arns().topic("forbidden")).is_allowed());
}

#[test]
fn condition_operators() {
    let decide = |condition: &str, ctx: &RequestContext| {
        let p = Policy::parse(&format!(
            r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": {condition}}}}}"#
        ))
        .unwrap();
        evaluate([&p], ctx, Action::Connect, &arns().client(&ctx.client_id)).is_allowed()
    };
    let typed = RequestContext::new("Sensor-1").with_thing(Thing {
        name: "Sensor-1".into(),
        type_name: Some("Thermostat".into()),
        ..Thing::default()
    });
    let bare = RequestContext::new("other");
    let cases = [
        // Values of one key are alternatives; keys and operators must all hold.
        (
            r#"{"StringEquals": {"iot:ClientId": ["x", "Sensor-1"]}}"#,
            &typed,
            true,
        ),
        (
            r#"{"StringEquals": {"iot:ClientId": "sensor-1"}}"#,
            &typed,
            false,
        ),
        (
            r#"{"StringEqualsIgnoreCase": {"iot:ClientId": "sensor-1"}}"#,
            &typed,
            true,
        ),
        // StringEquals has no wildcards.
        (
            r#"{"StringEquals": {"iot:ClientId": "Sensor-*"}}"#,
            &typed,
            false,
        ),
        (
            r#"{"StringLike": {"iot:ClientId": "Sensor-*"}}"#,
            &typed,
            true,
        ),
        (
            r#"{"StringNotLike": {"iot:ClientId": "Sensor-*"}}"#,
            &typed,
            false,
        ),
        (
            r#"{"StringNotEquals": {"iot:ClientId": ["a", "b"]}}"#,
            &typed,
            true,
        ),
        (
            r#"{"StringNotEquals": {"iot:ClientId": ["a", "Sensor-1"]}}"#,
            &typed,
            false,
        ),
        (
            r#"{"StringEquals": {"iot:ClientId": "Sensor-1"}, "Bool": {"iot:Connection.Thing.IsAttached": "false"}}"#,
            &typed,
            false,
        ),
        // Variables in condition values.
        (
            r#"{"StringEquals": {"iot:Connection.Thing.ThingName": "${iot:ClientId}"}}"#,
            &typed,
            true,
        ),
        // Missing keys: positive false, negated true, IfExists true, Null tells.
        (
            r#"{"StringEquals": {"iot:Connection.Thing.ThingTypeName": "Thermostat"}}"#,
            &bare,
            false,
        ),
        (
            r#"{"StringNotEquals": {"iot:Connection.Thing.ThingTypeName": "Thermostat"}}"#,
            &bare,
            true,
        ),
        (
            r#"{"StringEqualsIfExists": {"iot:Connection.Thing.ThingTypeName": "Thermostat"}}"#,
            &bare,
            true,
        ),
        (
            r#"{"StringEqualsIfExists": {"iot:Connection.Thing.ThingTypeName": "Lamp"}}"#,
            &typed,
            false,
        ),
        (
            r#"{"Null": {"iot:Connection.Thing.ThingTypeName": "true"}}"#,
            &bare,
            true,
        ),
        (
            r#"{"Null": {"iot:Connection.Thing.ThingTypeName": "true"}}"#,
            &typed,
            false,
        ),
        // JSON booleans are accepted for Bool, as the string forms.
        (
            r#"{"Bool": {"iot:Connection.Thing.IsAttached": true}}"#,
            &typed,
            true,
        ),
        (
            r#"{"Bool": {"iot:Connection.Thing.IsAttached": false}}"#,
            &bare,
            true,
        ),
    ];
    for (condition, ctx, expected) in cases {
        assert_eq!(
            decide(condition, ctx),
            expected,
            "{condition} for {:?}",
            ctx.client_id
        );
    }
}

#[test]
fn wildcards_question_marks_escapes_and_versions() {
    let allow = |resource: &str, version: &str| {
        Policy::parse(&format!(
            r#"{{"Version": "{version}", "Statement": {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{resource}"}}}}"#
        ))
        .unwrap()
    };
    let ctx = RequestContext::new("dev:1");
    let may = |p: &Policy, topic: &str| {
        evaluate([p], &ctx, Action::Publish, &arns().topic(topic)).is_allowed()
    };

    let one_char = allow(&format!("{A}:topic/room?/temp"), "2012-10-17");
    assert!(may(&one_char, "room1/temp"));
    assert!(
        may(&one_char, "roomé/temp"),
        "? is one character, not one byte"
    );
    assert!(!may(&one_char, "room12/temp"));
    assert!(!may(&one_char, "room/temp"));

    // `*` spans levels, and matches the empty string.
    let star = allow(&format!("{A}:topic/a/*/z"), "2012-10-17");
    assert!(may(&star, "a/b/c/z"));
    assert!(may(&star, "a//z"));
    assert!(!may(&star, "a/z"));

    // $(*) is a literal star.
    let literal = allow(&format!("{A}:topic/$(*)"), "2012-10-17");
    assert!(may(&literal, "*"));
    assert!(!may(&literal, "x"));

    // A client id with a colon stays in the last ARN field.
    let own = allow(&format!("{A}:topic/${{iot:ClientId}}"), "2012-10-17");
    assert!(may(&own, "dev:1"));
    // Wildcards in the account field.
    let any_account = allow("arn:aws:iot:us-east-1:*:topic/t", "2012-10-17");
    assert!(may(&any_account, "t"));

    // In 2008-10-17 (and without a Version) `${...}` is literal text.
    let old = allow(&format!("{A}:topic/${{iot:ClientId}}"), "2008-10-17");
    assert!(!may(&old, "dev:1"));
    assert!(may(&old, "${iot:ClientId}"));
}

#[test]
fn certificate_policy_variables() {
    let p = Policy::parse(&format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "iot:Connect",
             "Resource": "{A}:client/${{iot:Certificate.Subject.CommonName}}",
             "Condition": {{"StringEquals": {{"iot:Certificate.Issuer.Organization": "Fixture Corp"}}}}}}}}"#
    ))
    .unwrap();
    let variables = |cn: &str, org: &str| {
        std::collections::BTreeMap::from([
            ("Subject.CommonName".to_owned(), cn.to_owned()),
            ("Issuer.Organization".to_owned(), org.to_owned()),
        ])
    };
    let connect = |ctx: &RequestContext, client: &str| {
        evaluate([&p], ctx, Action::Connect, &arns().client(client))
    };
    let device =
        RequestContext::new("rsa-device").with_certificate(variables("rsa-device", "Fixture Corp"));
    assert_eq!(connect(&device, "rsa-device"), Decision::Allow);
    assert_eq!(connect(&device, "other"), Decision::ImplicitDeny);
    let foreign =
        RequestContext::new("rsa-device").with_certificate(variables("rsa-device", "Elsewhere"));
    assert_eq!(connect(&foreign, "rsa-device"), Decision::ImplicitDeny);
    assert_eq!(
        connect(&RequestContext::new("rsa-device"), "rsa-device"),
        Decision::ImplicitDeny
    );
}
