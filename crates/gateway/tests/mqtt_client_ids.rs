//! Client ids as AWS IoT takes them, over a real socket: any UTF-8 client id up to 128
//! characters not starting with `$`. On the plain port a client id that is not a thing name
//! connects an application client for ordinary topics only.

mod support;

use otastream_gateway::GatewayConfig;
use rumqttc::{QoS, SubscribeReasonCode};
use support::{Client, TestGateway, raw_connect, raw_exchange};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_that_are_not_thing_names_exchange_ordinary_messages() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let mut sub = Client::connect(gw.addr, "clean retained", |_| {}).await;
    let ack = sub.subscribe("suite/#", QoS::AtLeastOnce).await;
    assert_eq!(
        ack.return_codes,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    // Not a thing: no reserved topic, not even one named after the client id.
    let ack = sub
        .subscribe(
            "$aws/things/clean retained/jobs/notify-next",
            QoS::AtMostOnce,
        )
        .await;
    assert_eq!(ack.return_codes, [SubscribeReasonCode::Failure]);

    let long_id = "ü/".repeat(64); // 128 characters, 192 bytes
    let publisher = Client::connect(gw.addr, &long_id, |_| {}).await;
    publisher
        .client
        .publish("suite/a", QoS::AtLeastOnce, false, b"hello".to_vec())
        .await
        .expect("publish");
    let got = sub.next_publish().await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("suite/a", &b"hello"[..])
    );
    // Both are live sessions, keyed by client id, next to a thing that keeps its own.
    let _thing = Client::connect(gw.addr, "dev-1", |_| {}).await;
    assert_eq!(gw.gateway.connected_things(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_aws_refuses_get_return_code_2() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let too_long = "x".repeat(129);
    for id in ["", "$dollar", too_long.as_str()] {
        let answer = raw_exchange(gw.addr, &raw_connect("MQTT", 4, 0x02, id, &[])).await;
        assert_eq!(answer, [0x20, 2, 0, 2], "client id {id:?}");
    }
}
