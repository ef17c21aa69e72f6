//! OTA updates over MQTT, end to end: created with the real `aws` CLI (S3 with versioning, the
//! dev ACM certificate, signer, things, a thing group, `create-ota-update`), delivered by the
//! gateway's Jobs API and streams to simulated AWS OTA agents, and observed back through the CLI.

mod ota_support;

use base64::Engine;
use ota_support::{BUCKET, DEADLINE, OtaServer, UPDATED, assert_updated, firmware, thing_arns};
use otastream_device::status::code;
use otastream_device::{Event, FailReason, FinalStatus};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A SNAPSHOT update to a thing group: every member downloads the signed image (verified
/// against the certificate from `aws acm get-certificate`), runs the self test (the server must
/// hand `self_test: ready` back after the reboot), and the CLI sees the job complete with the
/// agent's final `accepted  v…` statusDetails. One device keeps the agent's defaults (one block
/// per request, progress every 64 blocks; 10 % seeded loss and a 300 ms retry make it slower)
/// and gets a second job while it downloads: neither its own progress updates nor the new job
/// may repeat notify-next (the agent would restart from block 0).
#[test]
fn a_thing_group_updates_over_mqtt_with_the_self_test_round_trip() {
    group_update_over_mqtt(&OtaServer::start());
}

/// The same update with metadata in PostgreSQL and the image in SeaweedFS (blocks come from the
/// node's local image cache).
#[test]
fn a_thing_group_updates_over_mqtt_on_postgres_and_s3() {
    group_update_over_mqtt(&OtaServer::start_on_postgres());
}

fn group_update_over_mqtt(ota: &OtaServer) {
    let (fw, signer_job) = ota.signed_firmware("fw/app.bin", 300 * 1024 + 123, 1);
    let fleet = ota.create_things("mqtt", 3);
    let group = ota.create_group("fleet", &fleet);
    let info = ota.create_ota(
        "ota_mqtt",
        OtaServer::signed_file(&signer_job),
        &[group],
        &["MQTT"],
        json!({ "targetSelection": "SNAPSHOT" }),
    );
    assert_eq!(info["awsIotJobId"], "AFR_OTA-ota_mqtt");

    let devices = fleet
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut cfg = ota.device(t);
            if i == 0 {
                // Slowed by a little seeded loss, so the second job lands mid-download.
                cfg.blocks_per_request = 1;
                cfg.faults.drop_data_percent = 10.0;
                cfg.faults.seed = 7;
                cfg.request_wait_ms = 300;
            }
            ota.spawn_device(cfg, DEADLINE)
        })
        .collect();
    let second = thing_arns(&fleet[..1]);
    ota.aws(&[
        "iot",
        "create-job",
        "--job-id",
        "second",
        "--targets",
        &second[0],
        "--document",
        r#"{"operation":"later"}"#,
    ]);
    for report in ota.reports(devices) {
        assert_updated(&report);
        assert_eq!(report.sha256, Some(Sha256::digest(&fw).into()));
        // The agent only goes `active` after its reboot if the document it fetches then carries
        // the `self_test: ready` / `updatedBy` statusDetails it published before: the server
        // kept and returned them.
        let self_test: Vec<&Event> = report
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Verified { .. }
                        | Event::SelfTestReady
                        | Event::Rebooted { .. }
                        | Event::SelfTestActive
                )
            })
            .collect();
        assert_eq!(
            self_test,
            [
                &Event::Verified { checked: true },
                &Event::SelfTestReady,
                &Event::Rebooted { version: UPDATED },
                &Event::SelfTestActive,
            ],
            "{report:?}"
        );

        let exec = ota.execution("AFR_OTA-ota_mqtt", &report.thing_name);
        assert_eq!(exec["status"], "SUCCEEDED", "{exec}");
        let details = &exec["statusDetails"]["detailsMap"];
        assert_eq!(details["reason"], "accepted  v0.0.2", "{exec}");
        assert_eq!(details["updatedBy"], "  v0.0.1", "{exec}");
    }

    let job = ota.wait_job("AFR_OTA-ota_mqtt", "COMPLETED");
    let counts = &job["jobProcessDetails"];
    assert_eq!(counts["numberOfSucceededThings"], 3, "{job}");
    assert_eq!(counts["numberOfQueuedThings"], 0, "{job}");
    assert_eq!(counts["numberOfInProgressThings"], 0, "{job}");
    assert_eq!(job["targetSelection"], "SNAPSHOT", "{job}");
    let info = ota.cli("iot get-ota-update --ota-update-id ota_mqtt")["otaUpdateInfo"].clone();
    assert_eq!(info["otaUpdateStatus"], "CREATE_COMPLETE", "{info}");
    // The second job waits for the device's next turn.
    assert_eq!(ota.execution("second", &fleet[0])["status"], "QUEUED");
}

/// A DER ECDSA signature that is well formed but signs nothing: r = 0x11…, s = 0x22….
fn wrong_signature() -> String {
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend([0x11; 32]);
    der.extend([0x02, 0x20]);
    der.extend([0x22; 32]);
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// customCodeSigning with a signature that does not match the image: the agent downloads,
/// rejects the signature and reports FAILED with its reason, which the CLI shows.
#[test]
fn a_wrong_signature_fails_the_execution() {
    let ota = OtaServer::start();
    let fw = firmware(40 * 1024, 2);
    let version = ota.upload("fw/bad.bin", &fw);
    let one = ota.create_things("badsig", 1);
    let files = json!([{ "fileName": "/device/firmware.bin", "fileType": 0,
        "fileLocation": { "s3Location": { "bucket": BUCKET, "key": "fw/bad.bin", "version": version } },
        "codeSigning": { "customCodeSigning": {
            "signature": { "inlineDocument": wrong_signature() },
            "certificateChain": { "certificateName": "otasigner.crt", "inlineDocument": "dev" },
            "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA" } } }]);
    ota.create_ota("ota_badsig", files, &thing_arns(&one), &["MQTT"], json!({}));

    let report = ota.run_device(ota.device(&one[0]), DEADLINE);
    let FinalStatus::Failed { reason } = &report.status else {
        panic!("expected FAILED: {report:?}");
    };
    assert!(
        matches!(reason, FailReason::WithValue { main, .. } if *main == code::PAL_SIGNATURE_CHECK_FAILED),
        "{report:?}"
    );
    assert!(report.final_status_acked, "{report:?}");

    let exec = ota.execution("AFR_OTA-ota_badsig", "badsig-0");
    assert_eq!(exec["status"], "FAILED", "{exec}");
    assert_eq!(
        exec["statusDetails"]["detailsMap"]["reason"],
        reason.to_string(),
        "{exec}"
    );
    let job = ota.wait_job("AFR_OTA-ota_badsig", "COMPLETED");
    assert_eq!(job["jobProcessDetails"]["numberOfFailedThings"], 1, "{job}");
}

/// A CONTINUOUS update to a group: a thing added to the group later (while its device is already
/// waiting for work) gets its own execution and updates; the job stays IN_PROGRESS.
#[test]
fn a_continuous_update_reaches_a_thing_added_to_the_group_later() {
    let ota = OtaServer::start();
    let (_, signer_job) = ota.signed_firmware("fw/cont.bin", 30 * 1024, 6);
    let fleet = ota.create_things("cont", 2);
    let group = ota.create_group("cont-fleet", &fleet[..1]);
    ota.create_ota(
        "ota_cont",
        OtaServer::signed_file(&signer_job),
        &[group],
        &["MQTT"],
        json!({ "targetSelection": "CONTINUOUS" }),
    );
    assert_eq!(
        ota.execution("AFR_OTA-ota_cont", &fleet[0])["status"],
        "QUEUED"
    );
    ota.cli_err(
        "ResourceNotFoundException",
        &format!(
            "iot describe-job-execution --job-id AFR_OTA-ota_cont --thing-name {}",
            fleet[1]
        ),
    );

    let devices = fleet
        .iter()
        .map(|t| ota.spawn_device(ota.device(t), DEADLINE))
        .collect();
    ota.cli(&format!(
        "iot add-thing-to-thing-group --thing-group-name cont-fleet --thing-name {}",
        fleet[1]
    ));
    for report in ota.reports(devices) {
        assert_updated(&report);
        let exec = ota.execution("AFR_OTA-ota_cont", &report.thing_name);
        assert_eq!(exec["status"], "SUCCEEDED", "{exec}");
    }
    let job = ota.job("AFR_OTA-ota_cont");
    assert_eq!(job["status"], "IN_PROGRESS", "{job}");
    assert_eq!(job["targetSelection"], "CONTINUOUS", "{job}");
    assert_eq!(
        job["jobProcessDetails"]["numberOfSucceededThings"], 2,
        "{job}"
    );
}
