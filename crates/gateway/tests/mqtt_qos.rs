//! Delivered QoS on ordinary topics over a real socket: the lower of the published and the
//! granted QoS (MQTT 3.1.1 §3.8.4).

mod support;

use otastream_gateway::GatewayConfig;
use rumqttc::QoS;
use support::{Client, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_the_lower_of_published_and_granted_qos() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let mut at1 = Client::connect(gw.addr, "sub-qos1", |_| {}).await;
    at1.subscribe("q/#", QoS::AtLeastOnce).await;
    let mut at0 = Client::connect(gw.addr, "sub-qos0", |_| {}).await;
    at0.subscribe("q/#", QoS::AtMostOnce).await;
    let publisher = Client::connect(gw.addr, "publisher", |_| {}).await;
    for (qos, payload) in [(QoS::AtMostOnce, "zero"), (QoS::AtLeastOnce, "one")] {
        publisher
            .client
            .publish("q/t", qos, false, payload)
            .await
            .expect("publish");
        let got = at1.next_publish().await;
        assert_eq!((&got.payload[..], got.qos), (payload.as_bytes(), qos));
        let got = at0.next_publish().await;
        assert_eq!(
            (&got.payload[..], got.qos),
            (payload.as_bytes(), QoS::AtMostOnce)
        );
    }
}
