//! Rollout rules of OTA updates, end to end through the CLI: abort criteria cancel a rollout
//! once enough devices failed, and an in-progress timeout moves a silent device's execution to
//! TIMED_OUT (the engine's clock is advanced through its `now` seam instead of waiting).

mod ota_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ota_support::{DEADLINE, OtaServer, assert_updated, thing_arns};
use otastream_device::{Event, FailReason, FinalStatus};
use serde_json::json;

/// Milliseconds since the Unix epoch (the engine's clock).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Abort at 50 % FAILED once 2 things have finished: two devices that do not trust the signing
/// certificate fail, the job is CANCELED with every queued execution, and the devices that come
/// later find no job.
#[test]
fn abort_criteria_cancel_the_rollout_after_enough_failures() {
    let ota = OtaServer::start();
    let (_, signer_job) = ota.signed_firmware("fw/abort.bin", 24 * 1024, 4);
    let fleet = ota.create_things("abort", 4);
    let abort = json!({ "abortCriteriaList": [{ "failureType": "FAILED", "action": "CANCEL",
        "thresholdPercentage": 50, "minNumberOfExecutedThings": 2 }] });
    ota.create_ota(
        "ota_abort",
        OtaServer::signed_file(&signer_job),
        &thing_arns(&fleet),
        &["MQTT"],
        json!({ "awsJobAbortConfig": abort,
                "awsJobExecutionsRolloutConfig": { "maximumPerMinute": 100 } }),
    );

    // One at a time, so the failure that crosses the threshold is the second one.
    let wrong_trust = ota.server().pki.ca_cert_pem.clone();
    for thing in &fleet[..2] {
        let mut cfg = ota.device(thing);
        cfg.code_signing_cert_pem = Some(wrong_trust.clone());
        let report = ota.run_device(cfg, DEADLINE);
        assert!(
            matches!(
                report.status,
                FinalStatus::Failed {
                    reason: FailReason::WithValue { .. }
                }
            ),
            "{report:?}"
        );
        assert!(report.final_status_acked, "{report:?}");
    }

    let job = ota.wait_job("AFR_OTA-ota_abort", "CANCELED");
    let counts = &job["jobProcessDetails"];
    assert_eq!(counts["numberOfFailedThings"], 2, "{job}");
    assert_eq!(counts["numberOfCanceledThings"], 2, "{job}");
    assert_eq!(counts["numberOfQueuedThings"], 0, "{job}");
    for thing in &fleet[2..] {
        assert_eq!(
            ota.execution("AFR_OTA-ota_abort", thing)["status"],
            "CANCELED"
        );
    }
    // A device of the canceled rollout asks for work and gets none.
    let late = ota.run_device(ota.device(&fleet[3]), Duration::from_secs(3));
    assert_eq!(late.status, FinalStatus::DeadlineReached, "{late:?}");
    assert!(late.events.contains(&Event::NoJob), "{late:?}");
    assert_eq!(late.stats.blocks, 0, "{late:?}");
}

/// `inProgressTimeoutInMinutes: 1`: one device completes; another starts its execution through
/// `aws iot-jobs-data start-next-pending-job-execution` and goes silent. One simulated minute
/// later the silent one is TIMED_OUT, the finished one untouched, and the job COMPLETED.
#[test]
fn an_in_progress_timeout_times_out_a_silent_device() {
    let ota = OtaServer::start();
    let (_, signer_job) = ota.signed_firmware("fw/timeout.bin", 20 * 1024, 5);
    let pair = ota.create_things("timeout", 2);
    ota.create_ota(
        "ota_timeout",
        OtaServer::signed_file(&signer_job),
        &thing_arns(&pair),
        &["MQTT"],
        json!({ "awsJobTimeoutConfig": { "inProgressTimeoutInMinutes": 1 } }),
    );

    assert_updated(&ota.run_device(ota.device(&pair[0]), DEADLINE));

    let started = ota.cli(&format!(
        "iot-jobs-data start-next-pending-job-execution --thing-name {}",
        pair[1]
    ));
    assert_eq!(started["execution"]["status"], "IN_PROGRESS", "{started}");
    assert_eq!(
        ota.execution("AFR_OTA-ota_timeout", &pair[1])["status"],
        "IN_PROGRESS"
    );

    // The clock seam: fire the engine's timers as of 61 minutes from now.
    let jobs = ota.server().jobs.clone();
    let later = now_ms() + 61 * 60_000;
    jobs.apply(|engine| Ok(((), engine.handle_timeout(later))))
        .expect("timers applied");

    let exec = ota.execution("AFR_OTA-ota_timeout", &pair[1]);
    assert_eq!(exec["status"], "TIMED_OUT", "{exec}");
    assert_eq!(
        ota.execution("AFR_OTA-ota_timeout", &pair[0])["status"],
        "SUCCEEDED"
    );
    let job = ota.wait_job("AFR_OTA-ota_timeout", "COMPLETED");
    let counts = &job["jobProcessDetails"];
    assert_eq!(counts["numberOfTimedOutThings"], 1, "{job}");
    assert_eq!(counts["numberOfSucceededThings"], 1, "{job}");
    // The device learns it through the Jobs API as well: nothing is pending any more.
    let pending = ota.cli(&format!(
        "iot-jobs-data get-pending-job-executions --thing-name {}",
        pair[1]
    ));
    assert_eq!(pending["inProgressJobs"], json!([]), "{pending}");
    assert_eq!(pending["queuedJobs"], json!([]), "{pending}");
}
