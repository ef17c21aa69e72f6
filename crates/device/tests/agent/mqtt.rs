//! Whole jobs over MQTT streams against the simulated endpoint.

use otastream_chunker::BlockSize;
use otastream_device::{AppVersion, DeviceConfig, Event, FailReason};
use sha2::{Digest, Sha256};

use crate::sim::{JOB, Signer, Sim, test_image};

fn config(signer: &Signer) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(crate::sim::THING);
    cfg.code_signing_cert_pem = Some(signer.cert_pem.clone());
    cfg.firmware_version = AppVersion::new(0, 0, 10);
    cfg.new_image_version = Some(AppVersion::new(0, 0, 20));
    cfg.keep_image = true;
    cfg
}

/// A `size`-byte firmware job signed by a fresh key the device trusts, default agent settings.
fn firmware_sim(size: usize) -> Sim {
    let signer = Signer::new();
    signed_sim(config(&signer), size, &signer)
}

fn signed_sim(cfg: DeviceConfig, size: usize, signer: &Signer) -> Sim {
    let mut sim = Sim::new(cfg, test_image(size));
    let sig = signer.sign_b64(&sim.image);
    sim.jobs.document = Some(sim.mqtt_document(&sig));
    sim
}

/// A 100 KB firmware job with the agent's defaults: every block once, signature verified, the
/// self-test handshake with the exact status strings of PROTOCOL.md §3.5, version now 0.0.20.
#[test]
fn firmware_job_end_to_end_with_self_test() {
    let mut sim = firmware_sim(100_000);
    sim.connect();
    sim.run();
    let blocks = 100_000u32.div_ceil(4096);
    assert_eq!(sim.agent.stats().blocks, u64::from(blocks));
    assert_eq!(sim.agent.stats().bytes, 100_000);
    assert_eq!(sim.agent.stats().duplicates, 0);
    assert_eq!(
        sim.agent.stats().requests,
        u64::from(blocks),
        "n = 1: one request per block"
    );
    assert_eq!(sim.agent.stats().retries, 0);
    assert_eq!(
        sim.jobs.updates,
        [
            r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/25"}}"#,
            r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"ready","updatedBy":"0x0000000a"}}"#,
            r#"{"status":"IN_PROGRESS","statusDetails":{"self_test":"active","updatedBy":"0x00000014"}}"#,
            r#"{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v0.0.20","updatedBy":"  v0.0.10"}}"#,
        ]
    );
    assert_eq!(sim.agent.running_version(), AppVersion::new(0, 0, 20));
    let sha: [u8; 32] = Sha256::digest(&sim.image).into();
    assert!(
        sim.events
            .contains(&Event::DownloadComplete { sha256: sha })
    );
    assert!(sim.events.contains(&Event::Verified { checked: true }));
    assert!(sim.events.contains(&Event::Succeeded {
        job_id: JOB.to_owned(),
        version: AppVersion::new(0, 0, 20)
    }));
    assert_eq!(sim.agent.stats().reboots, 1, "the activation reboot");
    assert_eq!(sim.agent.poll_timeout(), None, "self-test timer stopped");
}

/// Firmware jobs that end FAILED, each with the C agent's exact reason, leaving the old image
/// running: a signature by another key (PAL `0xe3` after the whole file), a new image reporting
/// the updater's own version (`OtaErrSameFirmwareVersion`, rolled back) or an older one
/// (`OtaErrDowngradeNotAllowed`), and a Jobs service that
/// loses `statusDetails` across the reboot (`OtaErrImageStateMismatch`, PROTOCOL.md §2.8.4).
#[test]
fn failed_firmware_jobs_report_the_agents_reasons() {
    let signer = Signer::new();
    let other = Signer::new();
    // (case, job signed by, build the new image runs as, service drops statusDetails, reason)
    let cases = [
        ("bad signature", &other, 20, false, "0x000000e3: 0x00000000"),
        ("same version", &signer, 10, false, "rejected: 0x00000010"),
        ("downgrade", &signer, 5, false, "rejected: 0x0000000f"),
        (
            "lost statusDetails",
            &signer,
            20,
            true,
            "rejected: 0x00000011",
        ),
    ];
    for (name, job_signer, new_build, omit_details, reason) in cases {
        let mut cfg = config(&signer);
        cfg.new_image_version = Some(AppVersion::new(0, 0, new_build));
        let mut sim = signed_sim(cfg, 10_000, job_signer);
        sim.jobs.omit_status_details = omit_details;
        sim.connect();
        sim.run();
        let expected = format!(r#"{{"status":"FAILED","statusDetails":{{"reason":"{reason}"}}}}"#);
        assert_eq!(sim.last_update(), expected, "{name}");
        assert_eq!(sim.agent.stats().blocks, 3, "{name}");
        assert_eq!(
            sim.agent.running_version(),
            AppVersion::new(0, 0, 10),
            "{name}"
        );
        assert_eq!(
            sim.count(|e| matches!(e, Event::Failed { .. })),
            1,
            "{name}"
        );
    }
}

/// A non-firmware file (`fileType` 2) ends SUCCEEDED right after verification, with the file type
/// in the version slot and no reboot.
#[test]
fn non_firmware_file_succeeds_without_self_test() {
    let mut sim = firmware_sim(10_000);
    let doc = sim.jobs.document.as_mut().unwrap();
    doc["afr_ota"]["files"][0]["fileType"] = serde_json::json!(2);
    sim.connect();
    sim.run();
    assert_eq!(
        sim.jobs.updates,
        [
            r#"{"status":"IN_PROGRESS","statusDetails":{"receive":"1/3"}}"#,
            r#"{"status":"SUCCEEDED","statusDetails":{"reason":"accepted  v0.0.2","updatedBy":"  v0.0.0"}}"#,
        ]
    );
    assert_eq!(sim.agent.stats().reboots, 0);
    assert_eq!(sim.agent.running_version(), AppVersion::new(0, 0, 10));
}

/// No job document after activation within 16 s: roll back.
#[test]
fn self_test_timer_rolls_back() {
    let mut sim = firmware_sim(5_000);
    sim.jobs.forget_job_when_ready = true;
    sim.connect();
    sim.run_messages();
    assert!(
        sim.events.contains(&Event::NoJob),
        "the reply after the activation reboot"
    );
    let deadline = sim.agent.poll_timeout().unwrap();
    sim.run();
    assert_eq!(sim.now, deadline);
    assert!(sim.events.contains(&Event::SelfTestTimedOut));
    assert_eq!(sim.agent.running_version(), AppVersion::new(0, 0, 10));
}

/// Lost data messages: the agent waits for its 10 s request timer and asks again.
#[test]
fn lost_blocks_are_recovered_by_the_request_timer() {
    let mut sim = firmware_sim(40_000);
    sim.lose_once.extend([1, 5]);
    let start = sim.now;
    sim.connect();
    sim.run();
    assert_eq!(sim.agent.stats().retries, 2);
    assert_eq!(sim.agent.stats().blocks, 10);
    assert!(
        sim.now - start >= 20_000,
        "two 10 s waits on the simulated clock"
    );
    assert!(sim.last_update().contains("SUCCEEDED"));
}

/// Every data message sent twice: duplicates are ignored and do not advance the pipeline.
#[test]
fn duplicate_blocks_are_ignored() {
    let mut sim = firmware_sim(40_000);
    sim.duplicate_everything = true;
    sim.connect();
    sim.run();
    assert_eq!(sim.agent.stats().blocks, 10);
    assert_eq!(sim.agent.stats().duplicates, 9);
    assert_eq!(
        sim.agent.stats().stray,
        1,
        "the last block's copy arrives after completion"
    );
    assert_eq!(sim.agent.stats().requests, 10);
    assert!(sim.last_update().contains("SUCCEEDED"));
}

/// A job document mid-download (a server that repeats notify-next) restarts the transfer from
/// block 0 — counted, so end-to-end tests can prove our server never does it.
#[test]
fn job_document_mid_download_restarts_from_block_zero() {
    let mut sim = firmware_sim(40_000);
    sim.connect();
    while sim.agent.stats().blocks < 4 {
        assert!(sim.deliver_one());
    }
    sim.push_notify_next();
    sim.run();
    assert_eq!(sim.agent.stats().restarts, 1);
    assert_eq!(sim.count(|e| matches!(e, Event::DownloadRestarted)), 1);
    assert_eq!(
        sim.agent.stats().blocks,
        15,
        "4 blocks, the one already in flight, then all 10 again"
    );
    assert!(sim.last_update().contains("SUCCEEDED"));
}

/// Fast mode: 32 blocks per request needs ceil(N / 32) requests where n = 1 needs N.
#[test]
fn n1_and_n32_request_counts() {
    let signer = Signer::new();
    for (n, expected) in [(1u32, 300u64), (32, 10)] {
        let mut cfg = config(&signer).fast(n);
        cfg.blocks_per_request = n;
        let mut sim = signed_sim(cfg, 300 * 4096, &signer);
        sim.connect();
        sim.run();
        assert_eq!(sim.agent.stats().requests, expected, "n = {n}");
        assert_eq!(sim.agent.stats().blocks, 300);
        assert_eq!(
            sim.jobs
                .updates
                .iter()
                .filter(|u| u.contains("receive"))
                .count(),
            5,
            "progress at 1, 64, 128, 192, 256"
        );
        assert!(sim.last_update().contains("SUCCEEDED"));
    }
}

/// A server that never answers: the agent gives up after 32 requests without progress.
#[test]
fn momentum_abort_after_32_silent_requests() {
    let mut sim = firmware_sim(40_000);
    sim.lose_once.extend(0..10);
    sim.connect();
    sim.run_messages();
    // From now on every request goes unanswered.
    let mut loop_requests = 0;
    while let Some(deadline) = sim.agent.poll_timeout() {
        sim.now = deadline;
        sim.agent.handle_timeout(sim.now);
        while let Some(t) = sim.agent.poll_transmit() {
            if matches!(
                t,
                otastream_device::Transmit::Publish {
                    kind: otastream_device::PublishKind::StreamRequest,
                    ..
                }
            ) {
                loop_requests += 1;
            }
        }
        while let Some(e) = sim.agent.poll_event() {
            sim.events.push(e);
        }
    }
    assert_eq!(sim.agent.stats().requests, 32);
    assert_eq!(loop_requests, 31, "the first request came before the loop");
    assert!(sim.events.contains(&Event::Failed {
        job_id: Some(JOB.to_owned()),
        reason: FailReason::Aborted(0)
    }));
}

/// Reboot fault: the AWS agent starts the file again; `resume_from_bitmap` continues it.
#[test]
fn reboot_mid_download_restarts_or_resumes() {
    let signer = Signer::new();
    for (resume, blocks) in [(false, 16u64), (true, 10)] {
        let mut cfg = config(&signer);
        cfg.faults.reboot_at_block = Some(6);
        cfg.resume_from_bitmap = resume;
        let mut sim = signed_sim(cfg, 40_000, &signer);
        sim.connect();
        sim.run();
        assert_eq!(sim.agent.stats().blocks, blocks, "resume = {resume}");
        let resumed = sim.events.iter().find_map(|e| match e {
            Event::JobReceived { resumed_blocks, .. } if *resumed_blocks > 0 => {
                Some(*resumed_blocks)
            }
            _ => None,
        });
        assert_eq!(resumed, resume.then_some(6));
        assert!(sim.last_update().contains("SUCCEEDED"), "resume = {resume}");
    }
}

/// Seeded loss over many seeds and both modes: every run rebuilds the exact signed image (the
/// signature check proves it) and succeeds; two runs with the same seed are identical.
#[test]
fn seeded_loss_is_recovered_and_deterministic() {
    let signer = Signer::new();
    let run = |seed: u64, n: u32| {
        let mut cfg = config(&signer).fast(n);
        cfg.blocks_per_request = n;
        cfg.faults.drop_data_percent = 30.0;
        cfg.faults.seed = seed;
        let mut sim = signed_sim(cfg, 64 * 1024 + 100, &signer);
        sim.connect();
        sim.run();
        assert!(
            sim.last_update().contains("SUCCEEDED"),
            "seed {seed}, n {n}"
        );
        assert_eq!(sim.agent.stats().blocks, 17);
        assert_eq!(sim.agent.stats().duplicates, 0);
        sim.agent.stats().clone()
    };
    let mut dropped = 0;
    for seed in 0..40 {
        for n in [1, 8, 32] {
            dropped += run(seed, n).dropped;
        }
    }
    assert!(dropped > 40 * 3 * 17 * 2 / 10, "about 30 % lost: {dropped}");
    assert_eq!(run(42, 8), run(42, 8));
}

/// A plain stream download without jobs (load-test stream mode).
#[test]
fn stream_download_without_a_job() {
    let mut cfg = DeviceConfig::new(crate::sim::THING).fast(4);
    cfg.use_jobs = false;
    cfg.block_size = BlockSize::new(1024).unwrap();
    let mut sim = Sim::new(cfg, test_image(10_000));
    sim.connect();
    assert!(sim.subscriptions.is_empty(), "no jobs topics");
    sim.agent
        .start_stream_download(sim.now, crate::sim::STREAM, 0, 10_000);
    sim.pump();
    sim.run();
    assert_eq!(sim.agent.stats().blocks, 10);
    assert_eq!(sim.agent.stats().requests, 3);
    assert!(sim.jobs.updates.is_empty());
    assert!(matches!(
        sim.events.last(),
        Some(Event::DownloadComplete { .. })
    ));
}

/// A reboot during a job-less stream download restarts it: from block 0 like the AWS agent, or
/// from the bitmap with `resume_from_bitmap` (load tests' `--reboot`).
#[test]
fn reboot_during_stream_download() {
    for (resume, blocks) in [(false, 13u64), (true, 10)] {
        let mut cfg = DeviceConfig::new(crate::sim::THING);
        cfg.use_jobs = false;
        cfg.keep_image = true;
        cfg.resume_from_bitmap = resume;
        cfg.faults.reboot_at_block = Some(3);
        let mut sim = Sim::new(cfg, test_image(40_000));
        sim.connect();
        sim.agent
            .start_stream_download(sim.now, crate::sim::STREAM, 0, 40_000);
        sim.pump();
        sim.run();
        assert_eq!(sim.agent.stats().reboots, 1);
        assert_eq!(sim.agent.stats().blocks, blocks, "resume = {resume}");
        let sha: [u8; 32] = Sha256::digest(&sim.image).into();
        assert!(
            sim.events
                .contains(&Event::DownloadComplete { sha256: sha }),
            "resume = {resume}"
        );
    }
}

/// The JSON streams format (load tests' `--json`): requests on `get/json` with the bitmap as the
/// chunker encodes it, Base64 payloads back on `data/json`; a zero-byte stream completes at once.
#[test]
fn json_streams_and_empty_stream() {
    let mut cfg = DeviceConfig::new(crate::sim::THING).fast(4);
    cfg.use_jobs = false;
    cfg.format = otastream_chunker::Format::Json;
    cfg.keep_image = true;
    let mut sim = Sim::new(cfg, test_image(30_000));
    sim.connect();
    sim.agent
        .start_stream_download(sim.now, crate::sim::STREAM, 0, 30_000);
    sim.pump();
    assert!(sim.subscriptions[0].ends_with("/data/json"));
    sim.run();
    assert_eq!(sim.agent.stats().blocks, 8);
    assert_eq!(sim.agent.stats().requests, 2);
    assert!(
        sim.published
            .iter()
            .all(|(_, t, p)| t.ends_with("/get/json") && p[0] == b'{')
    );
    let sha: [u8; 32] = Sha256::digest(&sim.image).into();
    assert!(
        sim.events
            .contains(&Event::DownloadComplete { sha256: sha })
    );
    sim.agent
        .start_stream_download(sim.now, crate::sim::STREAM, 0, 0);
    sim.pump();
    let empty: [u8; 32] = Sha256::digest([]).into();
    assert_eq!(
        sim.events.last(),
        Some(&Event::DownloadComplete { sha256: empty })
    );
}

/// A job that offers no protocol the document can serve, and a zero-byte file: FAILED with the
/// agent's codes, and no transfer starts.
#[test]
fn unusable_jobs_fail_with_agent_codes() {
    let cases: [(&str, serde_json::Value, &str); 2] = [
        (
            "/afr_ota/protocols",
            serde_json::json!(["HTTP"]),
            "0x0000000d: 0x00000000",
        ),
        (
            "/afr_ota/files/0/filesize",
            serde_json::json!(0),
            "0x0000000c: 0x00000003",
        ),
    ];
    for (pointer, value, reason) in cases {
        let mut sim = Sim::new(DeviceConfig::new(crate::sim::THING), test_image(100));
        let mut doc = sim.mqtt_document("");
        *doc.pointer_mut(pointer).unwrap() = value;
        sim.jobs.document = Some(doc);
        sim.connect();
        sim.run();
        let expected = format!(r#"{{"status":"FAILED","statusDetails":{{"reason":"{reason}"}}}}"#);
        assert_eq!(sim.jobs.updates, [expected], "{pointer}");
        let started = sim.count(|e| matches!(e, Event::JobReceived { .. }));
        assert_eq!(started, 0, "{pointer}");
    }
}
