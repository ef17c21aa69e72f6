//! The jobs dispatch point over a real socket: a [`JobsDriver`] receives a device's
//! `$aws/things/<T>/jobs/...` request and answers through `Gateway::reply` (no subscription
//! needed) and `Gateway::notify` (only to subscribers).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use otastream_gateway::{
    Gateway, GatewayConfig, JobsAdmission, JobsDriver, JobsTopics, Metrics, ReservedTopics,
};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, NetworkOptions, Publish, QoS};
use tokio::sync::mpsc;

/// Answers every request with `<suffix>/accepted` echoing the payload, then notifies (except for
/// `$next/get`: that notification could race the test's SUBSCRIBE, which the device sends right
/// after the answer, and arrive before the next answer).
struct EchoDriver(OnceLock<Gateway>);

impl JobsDriver for EchoDriver {
    fn handle_jobs_request(
        &self,
        thing: &str,
        topic_suffix: &str,
        payload: Bytes,
    ) -> JobsAdmission {
        let gateway = self.0.get().expect("gateway set before serving");
        let base = format!("$aws/things/{thing}/jobs/");
        assert!(gateway.reply(thing, format!("{base}{topic_suffix}/accepted"), payload));
        if topic_suffix == "$next/get" {
            return JobsAdmission::Queued;
        }
        gateway.notify(
            thing,
            format!("{base}notify-next"),
            Bytes::from_static(b"{}"),
        );
        JobsAdmission::Queued
    }
}

async fn device(port: u16, thing: &str) -> (AsyncClient, mpsc::UnboundedReceiver<Publish>) {
    let mut opts = MqttOptions::new(thing, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Incoming::Publish(p)) = event {
                let _ = tx.send(p);
            }
        }
    });
    (client, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Publish>) -> Publish {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a message in time")
        .expect("event loop alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_requests_reach_the_driver_and_its_answers_reach_the_device() {
    let driver = Arc::new(EchoDriver(OnceLock::new()));
    let reserved = ReservedTopics::new().with_handler(Arc::new(JobsTopics::new(driver.clone())));
    let gateway = Gateway::new(GatewayConfig::default(), reserved, Arc::new(Metrics::new()));
    assert!(driver.0.set(gateway.clone()).is_ok());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let serving = gateway.clone();
    tokio::spawn(async move { serving.serve_tcp(listener, std::future::pending()).await });

    let (client, mut rx) = device(port, "dev-j").await;
    // No subscription: the answer still arrives.
    client
        .publish(
            "$aws/things/dev-j/jobs/$next/get",
            QoS::AtLeastOnce,
            false,
            b"{\"clientToken\":\":dev-j\"}".to_vec(),
        )
        .await
        .expect("publish");
    let reply = next(&mut rx).await;
    assert_eq!(reply.topic, "$aws/things/dev-j/jobs/$next/get/accepted");
    assert_eq!(&reply.payload[..], b"{\"clientToken\":\":dev-j\"}");

    client
        .subscribe("$aws/things/dev-j/jobs/notify-next", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    client
        .publish(
            "$aws/things/dev-j/jobs/j1/get",
            QoS::AtMostOnce,
            false,
            b"{}".to_vec(),
        )
        .await
        .expect("publish");
    let reply = next(&mut rx).await;
    assert_eq!(reply.topic, "$aws/things/dev-j/jobs/j1/get/accepted");
    let notify = next(&mut rx).await;
    assert_eq!(
        (notify.topic.as_str(), notify.qos),
        ("$aws/things/dev-j/jobs/notify-next", QoS::AtLeastOnce)
    );
    assert!(!gateway.reply(
        "not-connected",
        "$aws/things/not-connected/jobs/x".into(),
        Bytes::new()
    ));
}
