//! What one policy decision costs the gateway (it makes one per PUBLISH, SUBSCRIBE filter and
//! delivered message): the built-in dev policy, and a fleet policy with thing variables and a Deny.
//! `cargo bench -p otastream-iot-policy` (a few seconds).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use otastream_iot_policy::{
    Action, DEV_THING_POLICY_DOCUMENT, Policy, RequestContext, ResourceArns, Thing, evaluate,
};

const FLEET_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:Connect",
   "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}",
   "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}},
  {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
   "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/*",
                "arn:aws:iot:us-east-1:123456789012:topic/fleet/${iot:Connection.Thing.ThingName}/*"]},
  {"Effect": "Allow", "Action": "iot:Subscribe",
   "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"},
  {"Effect": "Deny", "Action": "iot:Publish",
   "Resource": "arn:aws:iot:us-east-1:123456789012:topic/fleet/*/admin"}]}"#;

fn bench(c: &mut Criterion) {
    let dev = Policy::parse(DEV_THING_POLICY_DOCUMENT).expect("dev policy");
    let fleet = Policy::parse(FLEET_POLICY).expect("fleet policy");
    let ctx = RequestContext::new("thermostat-0042").with_thing(Thing {
        name: "thermostat-0042".into(),
        ..Thing::default()
    });
    let arns = ResourceArns::new("us-east-1", "123456789012");
    let own_data = arns.topic("$aws/things/thermostat-0042/streams/fw-v2/data/cbor");
    let other = arns.topic("$aws/things/thermostat-0043/jobs/notify-next");
    let ordinary = arns.topic("fleet/thermostat-0042/telemetry");

    c.bench_function("dev policy: receive own stream data (allow)", |b| {
        b.iter(|| {
            evaluate(
                [&dev],
                black_box(&ctx),
                Action::Receive,
                black_box(&own_data),
            )
        })
    });
    c.bench_function("dev policy: publish to another thing (deny)", |b| {
        b.iter(|| evaluate([&dev], black_box(&ctx), Action::Publish, black_box(&other)))
    });
    c.bench_function("fleet + dev policies: publish telemetry (allow)", |b| {
        b.iter(|| {
            evaluate(
                [&fleet, &dev],
                black_box(&ctx),
                Action::Publish,
                black_box(&ordinary),
            )
        })
    });
    c.bench_function("parse the fleet policy", |b| {
        b.iter(|| Policy::parse(black_box(FLEET_POLICY)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
