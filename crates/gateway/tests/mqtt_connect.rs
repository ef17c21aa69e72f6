//! CONNECT validated per MQTT 3.1.1 (and the refusal of versions the gateway does not speak),
//! over a real socket with hand-built packets no client library would send.

mod support;

use otastream_gateway::GatewayConfig;
use support::{TestGateway, put_str, raw_connect, raw_exchange};

/// A 3.1.1 CONNACK refusing with `code`.
fn refused(code: u8) -> [u8; 4] {
    [0x20, 2, 0, code]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reserved_connect_flag_closes_the_connection_without_an_answer() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    for level in [4, 5] {
        let answer = raw_exchange(gw.addr, &raw_connect("MQTT", level, 0x03, "dev-1", &[])).await;
        assert!(answer.is_empty(), "level {level}: got {answer:?}");
    }
    assert_eq!(gw.gateway.connected_things(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_without_a_user_name_is_refused() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let mut password = Vec::new();
    put_str(&mut password, b"secret");
    let answer = raw_exchange(gw.addr, &raw_connect("MQTT", 4, 0x42, "dev-1", &password)).await;
    assert_eq!(answer, refused(4));
    // With a user name it connects.
    let mut login = Vec::new();
    put_str(&mut login, b"user");
    put_str(&mut login, b"secret");
    let mut socket = tokio::net::TcpStream::connect(gw.addr)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    socket
        .write_all(&raw_connect("MQTT", 4, 0xc2, "dev-1", &login))
        .await
        .expect("write");
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).await.expect("connack");
    assert_eq!(connack, [0x20, 2, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_not_spoken_get_return_code_1_never_a_silent_close() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    for (name, level) in [("MQIsdp", 3), ("MQTT", 3), ("MQTT", 6)] {
        let answer = raw_exchange(gw.addr, &raw_connect(name, level, 0x02, "dev-1", &[])).await;
        assert_eq!(answer, refused(1), "{name} level {level}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_packet_that_is_not_connect_is_closed() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    // PINGREQ first; then a SUBSCRIBE announcing more bytes than it sends.
    for bytes in [&[0xc0, 0][..], &[0x82, 0x7f, 0, 1]] {
        assert!(raw_exchange(gw.addr, bytes).await.is_empty(), "{bytes:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_is_refused_with_reason_0x84_while_it_is_not_spoken() {
    let gw = TestGateway::start(GatewayConfig::default()).await;
    let answer = raw_exchange(gw.addr, &raw_connect("MQTT", 5, 0x02, "dev-1", &[])).await;
    assert_eq!(answer, [0x20, 3, 0, 0x84, 0]);
}
