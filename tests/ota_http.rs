//! OTA update over HTTP, end to end: the afr_ota document a device fetches over MQTT carries a
//! freshly presigned S3 URL, and the agent downloads the signed image with Range GETs (it only
//! accepts 206 Partial Content).

mod ota_support;

use ota_support::{DEADLINE, OtaServer, assert_updated, http_get, thing_arns};
use otastream_device::{Event, Protocol};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[test]
fn an_update_over_http_downloads_the_signed_image_through_a_presigned_url() {
    http_update(&OtaServer::start());
}

/// The same update with metadata in PostgreSQL and the image in SeaweedFS.
#[test]
fn an_update_over_http_on_postgres_and_s3() {
    http_update(&OtaServer::start_on_postgres());
}

fn http_update(ota: &OtaServer) {
    let (fw, signer_job) = ota.signed_firmware("fw/http.bin", 70 * 1024 + 5, 3);
    let one = ota.create_things("http", 1);
    let thing = &one[0];
    ota.create_ota(
        "ota_http",
        OtaServer::signed_file(&signer_job),
        &thing_arns(&one),
        &["HTTP"],
        json!({ "awsJobPresignedUrlConfig": { "expiresInSec": 600 } }),
    );

    // What the device will get: a presigned GET URL that answers a Range with 206.
    let described = ota.cli(&format!(
        "iot-jobs-data describe-job-execution --job-id AFR_OTA-ota_http --thing-name {thing} --include-job-document"
    ));
    let doc: Value = serde_json::from_str(
        described["execution"]["jobDocument"]
            .as_str()
            .expect("document"),
    )
    .expect("json document");
    let file = &doc["afr_ota"]["files"][0];
    assert_eq!(file["auth_scheme"], "aws.s3.presigned", "{doc}");
    let url = file["update_data_url"].as_str().expect("presigned url");
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    let (status, head, body) = http_get(url, &[("Range", "bytes=0-4095")]);
    assert_eq!((status, body.as_slice()), (206, &fw[..4096]), "{head}");

    let mut cfg = ota.device(thing);
    cfg.preferred_protocol = Protocol::Http;
    let report = ota.run_device(cfg, DEADLINE);
    assert_updated(&report);
    assert!(
        report.events.iter().any(|e| matches!(
            e,
            Event::JobReceived { protocol: Protocol::Http, file_size, .. } if *file_size == fw.len() as u64
        )),
        "{report:?}"
    );
    assert_eq!(report.sha256, Some(Sha256::digest(&fw).into()));

    let exec = ota.execution("AFR_OTA-ota_http", thing);
    assert_eq!(exec["status"], "SUCCEEDED", "{exec}");
    assert_eq!(
        exec["statusDetails"]["detailsMap"]["reason"],
        "accepted  v0.0.2"
    );
    let job = ota.wait_job("AFR_OTA-ota_http", "COMPLETED");
    assert_eq!(
        job["jobProcessDetails"]["numberOfSucceededThings"], 1,
        "{job}"
    );
}
