//! Small fleets against a real otastream server started in-process on 127.0.0.1 port 0: the
//! report must add up (completed + failed = devices, bytes = completed × image size) and the
//! server must never answer one request twice, with and without loss and reboots.

use clap::Parser;
use otastream::server::{self, RunningServer, ServerConfig};
use otastream_loadgen::report::Report;
use otastream_loadgen::{Config, fleet};

struct TestServer {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

async fn start_server() -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server::start(ServerConfig::ephemeral(dir.path()))
        .await
        .expect("server starts");
    TestServer { server, _dir: dir }
}

fn config(args: &[String]) -> Config {
    let cfg = Config::parse_from(
        [
            "loadgen",
            "--quiet",
            "--duration-limit",
            "60",
            "--connect-rate",
            "2000",
        ]
        .into_iter()
        .map(String::from)
        .chain(args.iter().cloned()),
    );
    cfg.validate().expect("valid config");
    cfg
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// The invariants of any run in which every device should finish.
fn assert_consistent(r: &Report, devices: u64, image: u64) {
    assert_eq!(r.completed + r.failed, r.devices, "{}: {r:?}", r.target);
    assert_eq!(
        (r.devices, r.completed),
        (devices, devices),
        "{}: {:?}",
        r.target,
        r.failures
    );
    assert_eq!(r.bytes, r.completed * image, "{}", r.target);
    assert_eq!(r.blocks, r.completed * image.div_ceil(4096), "{}", r.target);
    assert_eq!(r.server_duplicate_answers, 0, "{}", r.target);
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.max >= r.latency_ms.p99);
    assert!(r.device_completion_s.max > 0.0);
    assert!(r.blocks_per_s > 0.0 && r.elapsed_s > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_devices_download_a_stream_made_through_the_control_plane_and_the_tcp_baseline() {
    let t = start_server().await;
    let http = t.server.http_addr;
    let image = 64 * 1024;
    let cfg = config(&args(&format!(
        "--mqtt {} --http {http} --devices 50 --image-size {image} --blocks-per-request 4 \
         --server-pid {} --baseline tcp --source-addresses 4",
        t.server.mqtt_addr,
        std::process::id()
    )));
    let reports = fleet::run_all(&cfg).await.expect("run");
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].target.as_str(), reports[1].target.as_str()),
        ("otastream", "tcp")
    );
    for r in &reports {
        assert_consistent(r, 50, image);
        assert_eq!(
            (r.retries, r.duplicate_blocks, r.dropped_replies),
            (0, 0, 0)
        );
        assert_eq!(r.requests, 50 * 4, "16 blocks at 4 per request");
    }
    // The server is sampled; the TCP responder shares loadgen's own process and is not.
    assert!(reports[0].server_rss_bytes.is_some_and(|b| b > 0));
    assert!(reports[0].server_cpu_s.is_some());
    assert_eq!(reports[1].server_rss_bytes, None);
    // Every block the server sent was a block some device still needed.
    assert_eq!(
        t.server.gateway.metrics().blocks_served(),
        reports[0].blocks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_loss_and_reboots_every_device_completes_without_duplicate_answers() {
    let t = start_server().await;
    let image = 32 * 1024;
    for format in ["--cbor", "--json"] {
        // The stream is created in the server's data directory (no control plane needed).
        let cfg = config(&args(&format!(
            "--mqtt {} --data-dir {} --devices 50 --image-size {image} {format} \
             --loss 5 --reboot 30 --retry-ms 200 --seed 7 --thing-prefix f{}",
            t.server.mqtt_addr,
            t.server.data_dir.display(),
            &format[2..]
        )));
        let r = fleet::run_all(&cfg).await.expect("run").remove(0);
        assert_consistent(&r, 50, image);
        assert!(r.dropped_replies > 0, "5 % of 400 replies: {r:?}");
        assert!(r.retries > 0 && r.reboots > 0, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_fleet_never_asks_faster_than_the_offered_rate() {
    let t = start_server().await;
    let image = 16 * 1024;
    let rate = 2_000;
    let cfg = config(&args(&format!(
        "--mqtt {} --data-dir {} --devices 40 --image-size {image} --rate {rate} \
         --thing-prefix metered",
        t.server.mqtt_addr,
        t.server.data_dir.display(),
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_consistent(&r, 40, image);
    assert_eq!(r.offered_rate, Some(rate));
    // 160 requests at 2,000/s cannot all be out before 80 ms, however fast the machine: permits
    // come at the rate, plus at most one 100 µs tick's worth banked.
    assert_eq!(r.requests, 160);
    assert!(
        r.elapsed_s >= (r.requests - 1) as f64 / f64::from(rate),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_spread_over_three_processes_reports_as_one() {
    let t = start_server().await;
    let image = 32 * 1024;
    let mut cfg = config(&args(&format!(
        "--mqtt {} --http {} --devices 60 --image-size {image} --processes 3 \
         --loss 5 --retry-ms 200 --rate 20000 --thing-prefix sharded",
        t.server.mqtt_addr, t.server.http_addr,
    )));
    cfg.shard_exe = Some(env!("CARGO_BIN_EXE_otastream-loadgen").into());
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!(r.processes, 3);
    assert_consistent(&r, 60, image);
    assert!(r.dropped_replies > 0 && r.retries > 0, "{r:?}");
    // Every block the server sent reached a device of some shard and was counted once: new,
    // again (asked twice) or dropped on purpose.
    let served = t.server.gateway.metrics().blocks_served();
    assert_eq!(
        served,
        r.blocks + r.duplicate_blocks + r.dropped_replies,
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_of_a_shard_process_that_dies_count_as_failed() {
    let t = start_server().await;
    let mut cfg = config(&args(&format!(
        "--mqtt {} --http {} --devices 20 --image-size 8KiB --processes 2 --thing-prefix lost",
        t.server.mqtt_addr, t.server.http_addr,
    )));
    // A "shard" that reads nothing and exits at once.
    cfg.shard_exe = Some("/bin/true".into());
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!((r.devices, r.completed, r.failed), (20, 0, 20));
    assert_eq!(r.failures.get(otastream_loadgen::shard::LOST), Some(&20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_devices_stay_connected_and_the_server_is_sampled() {
    let t = start_server().await;
    let cfg = config(&args(&format!(
        "--mqtt {} --mode idle --hold 1 --devices 40 --server-pid {}",
        t.server.mqtt_addr,
        std::process::id()
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!(
        (r.completed, r.failed, r.blocks),
        (40, 0, 0),
        "{:?}",
        r.failures
    );
    assert!(r.elapsed_s >= 1.0);
    assert!(r.server_rss_per_device_bytes.is_some());
    assert!(r.server_rss_connected_bytes.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stream_fails_every_device_with_a_rejection() {
    let t = start_server().await;
    let cfg = config(&args(&format!(
        "--mqtt {} --stream no-such-stream --devices 5 --image-size 8KiB",
        t.server.mqtt_addr
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!((r.completed, r.failed), (0, 5));
    assert_eq!(r.failures.get("rejected"), Some(&5), "{:?}", r.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_download_over_mutual_tls_with_one_certificate_each() {
    let t = start_server().await;
    let certs = tempfile::tempdir().expect("tempdir");
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, &t.server.pki.ca_cert_pem).expect("write CA");
    for i in 0..10 {
        let thing = format!("tls-{i:05}");
        let (cert, key) = t.server.pki.issue_device_cert(&thing).expect("device cert");
        std::fs::write(certs.path().join(format!("{thing}.cert.pem")), cert).expect("cert");
        std::fs::write(certs.path().join(format!("{thing}.key.pem")), key).expect("key");
    }
    let dir = certs.path().display();
    let image = 16 * 1024;
    let cfg = config(&args(&format!(
        "--mqtts {} --data-dir {} --devices 10 --thing-prefix tls --image-size {image} \
         --ca {} --cert {dir}/{{thing}}.cert.pem --key {dir}/{{thing}}.key.pem",
        t.server.mqtts_addr,
        t.server.data_dir.display(),
        ca.display()
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_consistent(&r, 10, image);

    // A device without certificate files fails alone, as a connect failure.
    let cfg = config(&args(&format!(
        "--mqtts {} --stream none --devices 1 --thing-prefix nocert --image-size {image} \
         --ca {} --cert {dir}/{{thing}}.cert.pem --key {dir}/{{thing}}.key.pem",
        t.server.mqtts_addr,
        ca.display()
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!(r.failures.get("connect"), Some(&1), "{:?}", r.failures);

    // Whole OTA jobs over mTLS: the agents present their thing's certificate.
    for i in 0..3 {
        let thing = format!("tlsota-{i:05}");
        let (cert, key) = t.server.pki.issue_device_cert(&thing).expect("device cert");
        std::fs::write(certs.path().join(format!("{thing}.cert.pem")), cert).expect("cert");
        std::fs::write(certs.path().join(format!("{thing}.key.pem")), key).expect("key");
    }
    let cfg = config(&args(&format!(
        "--mqtts {} --http {} --mode ota --devices 3 --thing-prefix tlsota --image-size {image} \
         --ca {} --cert {dir}/{{thing}}.cert.pem --key {dir}/{{thing}}.key.pem",
        t.server.mqtts_addr,
        t.server.http_addr,
        ca.display()
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_eq!((r.completed, r.failed), (3, 0), "{:?}", r.failures);
    assert_eq!(r.reboots, 3, "each agent activated its new image");
    assert!(r.blocks >= 3 * 4 && r.job_requests >= 2 * 3, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_download_over_http_ranges_with_loss_and_reboots() {
    let t = start_server().await;
    let http = t.server.http_addr;
    let image = 64 * 1024 + 100;
    let cfg = config(&args(&format!(
        "--mqtt {} --http {http} --protocol http --devices 20 --image-size {image} \
         --blocks-per-request 2 --loss 10 --reboot 50 --seed 3 --source-addresses 3",
        t.server.mqtt_addr
    )));
    let r = fleet::run_all(&cfg).await.expect("run").remove(0);
    assert_consistent(&r, 20, image);
    assert!(r.dropped_replies > 0 && r.reboots > 0, "{r:?}");
    assert_eq!(
        r.retries, r.dropped_replies,
        "each dropped range is asked again"
    );
    assert_eq!(r.requests, 20 * 9 + r.retries, "17 blocks in ranges of 2");
    assert_eq!(
        t.server.gateway.metrics().blocks_served(),
        0,
        "nothing went over MQTT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_runs_its_signed_ota_job_to_succeeded() {
    let t = start_server().await;
    let image = 64 * 1024;
    // In this process, then spread over two shard processes (the OTA plan travels with them).
    for processes in [1, 2] {
        let mut cfg = config(&args(&format!(
            "--mqtt {} --http {} --mode ota --devices 20 --image-size {image} \
             --blocks-per-request 4 --thing-prefix ota{processes} --processes {processes}",
            t.server.mqtt_addr, t.server.http_addr
        )));
        cfg.shard_exe = Some(env!("CARGO_BIN_EXE_otastream-loadgen").into());
        let r = fleet::run_all(&cfg).await.expect("run").remove(0);
        assert_eq!(r.processes, processes);
        assert_eq!((r.completed, r.failed), (20, 0), "{:?}", r.failures);
        assert!(r.blocks >= 20 * 16 && r.bytes >= 20 * image, "{r:?}");
        assert!(r.latency_ms.p50 > 0.0 && r.device_completion_s.max > 0.0);
        // Each device rebooted once to activate the new image (the self-test handshake).
        assert_eq!(r.reboots, 20);
        // Every agent asked for its job when it connected, again after the activation reboot,
        // and once more after each restarted download.
        assert!(r.job_requests >= 2 * 20 + r.restarts, "{r:?}");
    }
}
