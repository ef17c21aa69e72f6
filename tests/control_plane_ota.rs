//! The whole product, end to end: the user's `aws` CLI uploads, signs (dev ACM certificate),
//! streams and creates OTA updates against `otastream serve`; simulated AWS OTA agents
//! (`otastream-device`, verifying the signature with the certificate from `acm get-certificate`)
//! receive the jobs over MQTT, download over MQTT streams and over HTTP (presigned S3 range GETs),
//! and the CLI then shows their executions SUCCEEDED.

mod control_plane_support;

use control_plane_support::{ROLE, Serve};
use otastream_device::{DeviceConfig, FinalStatus, Protocol, RunOptions, run_device_with};
use serde_json::json;
use sha2::Digest;

fn device(thing: &str, cert_pem: &str, protocol: Protocol) -> DeviceConfig {
    let mut cfg = DeviceConfig::new(thing);
    cfg.code_signing_cert_pem = Some(cert_pem.to_owned());
    cfg.preferred_protocol = protocol;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_created_updates_reach_devices_over_mqtt_and_http() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let server = Serve::start(data.path(), home.path());
    let fw: Vec<u8> = (0..48_000u32)
        .map(|i| (i.wrapping_mul(31) % 253) as u8)
        .collect();
    let setup = tokio::task::block_in_place(|| {
        let (_, job_id, cert) = server.upload_and_sign("fleet-bucket", &fw);
        let pem =
            server.aws(&format!("acm get-certificate --certificate-arn {cert}"))["Certificate"]
                .clone();
        for thing in ["mqtt_dev", "http_dev"] {
            server.aws(&format!("iot create-thing --thing-name {thing}"));
        }
        // Variant "awsSignerJobId without fileLocation": otastream streams the signed object.
        let files = server.json_file(
            "ota.json",
            &json!([{ "fileName": "/fw/app.bin", "codeSigning": { "awsSignerJobId": job_id } }]),
        );
        for (id, thing, protocol) in [
            ("to_mqtt", "mqtt_dev", "MQTT"),
            ("to_http", "http_dev", "HTTP"),
        ] {
            server.aws(&format!(
                "iot create-ota-update --ota-update-id {id} --targets arn:aws:iot:us-east-1:123456789012:thing/{thing} \
                 --protocols {protocol} --files {files} --role-arn {ROLE}"
            ));
            let ota = server.wait_for(&format!("iot get-ota-update --ota-update-id {id}"), |u| {
                u["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING"
            });
            assert_eq!(
                ota["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE",
                "{ota}"
            );
        }
        pem.as_str().expect("certificate pem").to_owned()
    });

    let opts = RunOptions {
        deadline: std::time::Duration::from_secs(90),
        ..RunOptions::default()
    };
    let (mqtt, http) = tokio::join!(
        run_device_with(
            device("mqtt_dev", &setup, Protocol::Mqtt),
            server.mqtt,
            None,
            opts.clone()
        ),
        run_device_with(
            device("http_dev", &setup, Protocol::Http),
            server.mqtt,
            None,
            opts
        ),
    );
    let expected: [u8; 32] = sha2::Sha256::digest(&fw).into();
    for report in [&mqtt, &http] {
        assert!(
            matches!(report.status, FinalStatus::Succeeded { .. }),
            "{}: {:?}\n{:?}",
            report.thing_name,
            report.status,
            report.events
        );
        assert_eq!(report.sha256, Some(expected), "{}", report.thing_name);
    }
    tokio::task::block_in_place(|| {
        for (job, thing) in [
            ("AFR_OTA-to_mqtt", "mqtt_dev"),
            ("AFR_OTA-to_http", "http_dev"),
        ] {
            let exec = server.aws(&format!(
                "iot describe-job-execution --job-id {job} --thing-name {thing}"
            ));
            assert_eq!(exec["execution"]["status"], "SUCCEEDED", "{exec}");
            assert_eq!(
                server.aws(&format!("iot describe-job --job-id {job}"))["job"]["status"],
                "COMPLETED"
            );
        }
    });
    server.kill();
}
