//! The PostgreSQL + S3 backend losing its dependencies while a server runs: control-plane calls
//! answer AWS-shaped `ServiceUnavailable`, devices keep downloading the image the node already
//! cached, nothing acknowledged is lost, and the server recovers by itself once PostgreSQL and
//! the S3 service are back.

mod gateway_support;
mod ota_support;

use std::time::Duration;

use gateway_support::Device;
use ota_support::{BUCKET, DEADLINE, OtaServer, assert_updated, thing_arns};
use otastream_chunker::Format;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// How long the server gets to notice a dependency is back (bounded retries).
const RECOVERY: Duration = Duration::from_secs(60);

#[test]
fn postgres_and_s3_outages_answer_unavailable_cached_images_keep_serving_and_the_server_recovers() {
    let mut ota = OtaServer::start_on_postgres();
    let (fw, signer_job) = ota.signed_firmware("fw/outage.bin", 60 * 1024 + 17, 9);
    let things = ota.create_things("outage", 2);
    ota.create_ota(
        "ota_outage",
        OtaServer::signed_file(&signer_job),
        &thing_arns(&things),
        &["MQTT"],
        json!({}),
    );
    let doc = ota.cli("iot get-job-document --job-id AFR_OTA-ota_outage");
    let doc: Value = serde_json::from_str(doc["document"].as_str().expect("doc")).expect("json");
    let stream = doc["afr_ota"]["streamname"]
        .as_str()
        .expect("stream")
        .to_owned();
    // The first device updates while everything is up: the node caches the stream's image.
    assert_updated(&ota.run_device(ota.device(&things[0]), DEADLINE));

    // PostgreSQL stops.
    ota.stack.as_mut().expect("stack").pg.pause();
    ota.cli_err("ServiceUnavailableException", "iot list-things");
    let image = download(&ota, &things[1], &stream, fw.len());
    assert_eq!(
        Sha256::digest(&image),
        Sha256::digest(&fw),
        "cached image served"
    );

    // PostgreSQL is back; then the S3 service stops.
    ota.stack
        .as_mut()
        .expect("stack")
        .pg
        .resume()
        .expect("PostgreSQL back");
    wait_until_served(&ota, "iot list-things");
    ota.stack.as_mut().expect("stack").s3.pause();
    // Object bytes already cached on this node are still served (content-addressed, immutable);
    // a new upload needs the S3 service and is refused, nothing stored.
    let body = ota.json_file("new.json", &json!({ "firmware": "next" }));
    let body = body.trim_start_matches("file://");
    let put = format!("s3api put-object --bucket {BUCKET} --key fw/new.bin --body {body}");
    ota.cli_err("ServiceUnavailable", &put);
    ota.cli_err(
        "404",
        &format!("s3api head-object --bucket {BUCKET} --key fw/new.bin"),
    );
    let image = download(&ota, &things[1], &stream, fw.len());
    assert_eq!(
        Sha256::digest(&image),
        Sha256::digest(&fw),
        "cached image served"
    );
    ota.stack
        .as_mut()
        .expect("stack")
        .s3
        .resume()
        .expect("S3 back");
    wait_until_served(&ota, &put);

    // Everything acknowledged before is still there: the first execution, the second device's
    // queued one (which now completes), the object.
    let first = ota.execution("AFR_OTA-ota_outage", &things[0]);
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_updated(&ota.run_device(ota.device(&things[1]), DEADLINE));
    let job = ota.wait_job("AFR_OTA-ota_outage", "COMPLETED");
    assert_eq!(
        job["jobProcessDetails"]["numberOfSucceededThings"], 2,
        "{job}"
    );
}

/// Downloads the stream's file 0 as `thing` over plain MQTT (blocks of 1 KiB, 8 per request).
fn download(ota: &OtaServer, thing: &str, stream: &str, size: usize) -> Vec<u8> {
    let addr = ota.server().mqtt_addr;
    ota.block_on(async {
        let mut device = Device::tcp(addr, thing).await.expect("connect");
        let (image, _requests) = device
            .download(stream, Format::Cbor, size, 1024, Some(8))
            .await
            .expect("download");
        image
    })
}

/// Retries `line` (bounded by [`RECOVERY`]) until the CLI succeeds.
fn wait_until_served(ota: &OtaServer, line: &str) {
    let deadline = std::time::Instant::now() + RECOVERY;
    loop {
        let args: Vec<&str> = line.split_whitespace().collect();
        let (rc, _, err) = ota.aws_with_secret(ota_support::SECRET, &args);
        if rc == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recovered after {RECOVERY:?}: {err}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
