//! Whole jobs over the HTTP data path against the simulated S3 face.

use otastream_device::{AppVersion, DeviceConfig, Event, Protocol};

use crate::sim::{Signer, Sim, test_image};

fn http_sim(signer: &Signer, size: usize) -> Sim {
    let mut cfg = DeviceConfig::new(crate::sim::THING);
    cfg.code_signing_cert_pem = Some(signer.cert_pem.clone());
    cfg.keep_image = true;
    let mut sim = Sim::new(cfg, test_image(size));
    let sig = signer.sign_b64(&sim.image);
    sim.jobs.document = Some(sim.http_document(&sig));
    sim
}

/// One Range request per block, strictly sequential, the last one ending at `size − 1`; the
/// image verifies and the job succeeds after the self test.
#[test]
fn http_job_downloads_by_ranges() {
    let signer = Signer::new();
    let mut sim = http_sim(&signer, 10_000);
    sim.connect();
    sim.run();
    assert_eq!(sim.http_ranges, [(0, 4095), (4096, 8191), (8192, 9999)]);
    assert!(sim.events.iter().any(|e| matches!(
        e,
        Event::JobReceived {
            protocol: Protocol::Http,
            ..
        }
    )));
    assert_eq!(sim.agent.stats().blocks, 3);
    assert!(sim.last_update().contains("SUCCEEDED"));
    assert_eq!(sim.agent.running_version(), AppVersion::new(0, 0, 2));
}

/// 403 (an expired presigned URL) makes the agent fetch the job document again; the same job id
/// keeps its blocks and continues with the fresh URL. 500 waits for the request timer.
#[test]
fn http_errors_refresh_the_url_or_retry() {
    let signer = Signer::new();
    let mut sim = http_sim(&signer, 10_000);
    sim.http_failures.extend([206, 403, 500]);
    sim.connect();
    sim.run();
    assert_eq!(
        sim.http_ranges,
        [
            (0, 4095),
            (4096, 8191),
            (4096, 8191),
            (4096, 8191),
            (8192, 9999)
        ]
    );
    assert_eq!(
        sim.agent.stats().job_requests,
        3,
        "initial, URL refresh, after activation"
    );
    assert_eq!(sim.agent.stats().retries, 1);
    assert_eq!(sim.agent.stats().restarts, 0);
    assert_eq!(sim.agent.stats().blocks, 3);
    assert!(sim.last_update().contains("SUCCEEDED"));
}

/// A 206 body shorter than the block fails the job like bad data (`0xe0`).
#[test]
fn short_range_body_fails_the_job() {
    let signer = Signer::new();
    let mut sim = http_sim(&signer, 10_000);
    sim.http_short_bodies = 1;
    sim.connect();
    sim.run();
    assert_eq!(
        sim.jobs.updates,
        [r#"{"status":"FAILED","statusDetails":{"reason":"0x000000e0: 0x00000000"}}"#]
    );
    assert_eq!(sim.http_ranges, [(0, 4095)]);
    assert_eq!(sim.agent.stats().blocks, 0);
}
