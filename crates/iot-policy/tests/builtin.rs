//! The built-in dev policy allows exactly what the gateway's fixed per-thing rule allowed
//! (crates/gateway/src/policy.rs: own `$aws/things/T/...`, every ordinary topic, no other `$` topic).

use otastream_iot_policy::{
    Action, DEV_THING_POLICY_DOCUMENT, Decision, Policy, RequestContext, ResourceArns, Thing,
    evaluate,
};

fn dev1() -> RequestContext {
    RequestContext::new("dev1").with_thing(Thing {
        name: "dev1".into(),
        ..Thing::default()
    })
}

#[test]
fn the_dev_policy_is_the_former_fixed_rule() {
    let policy = Policy::parse(DEV_THING_POLICY_DOCUMENT).expect("the built-in policy parses");
    // Any region and account: the server's own are configurable.
    for arns in [
        ResourceArns::new("us-east-1", "123456789012"),
        ResourceArns::new("eu-central-1", "000000000000"),
    ] {
        let may = |ctx: &RequestContext, action: Action, name: &str| {
            let resource = match action {
                Action::Connect => arns.client(name),
                Action::Subscribe => arns.topic_filter(name),
                _ => arns.topic(name),
            };
            evaluate([&policy], ctx, action, &resource) == Decision::Allow
        };
        assert!(may(&dev1(), Action::Connect, "dev1"));
        assert!(!may(&dev1(), Action::Connect, "dev2"));
        assert!(!may(&RequestContext::new("dev1"), Action::Connect, "dev1"));

        for topic in [
            "$aws/things/dev1/streams/s1/get/cbor",
            "$aws/things/dev1/jobs/notify-next",
            "fleet/a/b",
            "x",
        ] {
            for action in [Action::Publish, Action::Receive, Action::RetainPublish] {
                assert!(may(&dev1(), action, topic), "{action:?} {topic}");
            }
        }
        for filter in ["$aws/things/dev1/jobs/#", "#", "+/status", "fleet/#"] {
            assert!(may(&dev1(), Action::Subscribe, filter), "{filter}");
        }
        for name in [
            "$aws/things/dev2/streams/s1/get/cbor",
            "$aws/things/dev1x/streams/s1/get/cbor",
            "$aws/things/dev1",
            "$aws/things/dev1/",
            "$aws/things/+/streams/s1/data/cbor",
            "$SYS/broker/load",
            "$aws/rules/r1",
        ] {
            assert!(!may(&dev1(), Action::Subscribe, name), "subscribe {name}");
            assert!(!may(&dev1(), Action::Publish, name), "publish {name}");
            assert!(!may(&dev1(), Action::Receive, name), "receive {name}");
        }
        // Without an attached thing only ordinary topics remain.
        let stranger = RequestContext::new("dev1");
        assert!(!may(
            &stranger,
            Action::Publish,
            "$aws/things/dev1/jobs/get"
        ));
        assert!(may(&stranger, Action::Publish, "fleet/a"));
    }
}
