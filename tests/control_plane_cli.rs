//! The seed workflow (shared/seed/ota-update-with-aws-cli.md) with the real `aws` CLI against the
//! `otastream serve` binary: one HTTP port for s3, acm, signer, iot and iot-jobs-data; then
//! SIGKILL and a restart on the same data directory, which must still hold every acknowledged write.

mod control_plane_support;

use control_plane_support::{ROLE, Serve};
use serde_json::{Value, json};

#[test]
fn seed_workflow_against_otastream_serve() {
    seed_workflow(None);
}

/// The same workflow with metadata in PostgreSQL and object bytes in SeaweedFS: the restart after
/// SIGKILL finds every acknowledged write in them.
#[test]
fn seed_workflow_against_otastream_serve_on_postgres_and_s3() {
    let stack = otastream_testkit::Stack::start()
        .expect("PostgreSQL and SeaweedFS (.ci/run installs them)");
    seed_workflow(Some(&stack));
}

fn seed_workflow(stack: Option<&otastream_testkit::Stack>) {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let server = Serve::start_on(data.path(), home.path(), stack, &[]);
    let fw: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (version, job_id, _) = server.upload_and_sign("ota-bucket", &fw);
    let signed = server.aws(&format!("signer describe-signing-job --job-id {job_id}"));
    let key = signed["signedObject"]["s3"]["key"].as_str().expect("key");
    let stream = server.json_file(
        "stream.json",
        &json!([{ "fileId": 7, "s3Location": { "bucket": "ota-bucket", "key": key } }]),
    );
    server.aws(&format!(
        "iot create-stream --stream-id fw --files {stream} --role-arn {ROLE}"
    ));
    server.aws("iot create-thing --thing-name dev1");
    let files = server.json_file(
        "ota.json",
        &json!([{ "fileName": "fw.bin", "fileLocation": { "stream": { "streamId": "fw", "fileId": 7 } },
                  "codeSigning": { "awsSignerJobId": job_id } }]),
    );
    server.aws(&format!(
        "iot create-ota-update --ota-update-id u1 --targets arn:aws:iot:us-east-1:123456789012:thing/dev1 \
         --protocols MQTT --files {files} --role-arn {ROLE}"
    ));
    let ota = server.wait_for("iot get-ota-update --ota-update-id u1", |u| {
        u["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING"
    });
    assert_eq!(
        ota["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE",
        "{ota}"
    );
    let doc = server.aws("iot get-job-document --job-id AFR_OTA-u1");
    let doc: Value =
        serde_json::from_str(doc["document"].as_str().expect("document")).expect("json");
    assert_eq!(doc["afr_ota"]["streamname"], "fw");
    assert_eq!(doc["afr_ota"]["files"][0]["filesize"], fw.len());
    // The device side (iot-jobs-data on the same port) sees the QUEUED execution.
    let pending = server.aws("iot-jobs-data get-pending-job-executions --thing-name dev1");
    assert_eq!(pending["queuedJobs"][0]["jobId"], "AFR_OTA-u1", "{pending}");

    // SIGKILL right after the last acknowledged write, restart on the same directory.
    server.kill();
    let server = Serve::start_on(data.path(), home.path(), stack, &[]);
    server.aws(&format!(
        "s3api get-object --bucket ota-bucket --key fw.bin --version-id {version} back.bin"
    ));
    assert_eq!(
        std::fs::read(home.path().join("back.bin")).expect("back"),
        fw
    );
    assert_eq!(
        server.aws("iot describe-stream --stream-id fw")["streamInfo"]["files"][0]["fileId"],
        7
    );
    let ota = server.aws("iot get-ota-update --ota-update-id u1");
    assert_eq!(ota["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE");
    let pending = server.aws("iot-jobs-data get-pending-job-executions --thing-name dev1");
    assert_eq!(pending["queuedJobs"][0]["jobId"], "AFR_OTA-u1", "{pending}");
    assert_eq!(
        server.aws("acm list-certificates")["CertificateSummaryList"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    server.aws("iot delete-ota-update --ota-update-id u1 --force-delete-aws-job");
    let err = server
        .try_aws("iot describe-job --job-id AFR_OTA-u1")
        .expect_err("job deleted");
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");
    let err = server
        .try_aws_with("wrong", "iot list-things")
        .expect_err("wrong secret");
    assert!(err.contains("(InvalidSignatureException)"), "{err}");
    server.kill();
}

/// `/metrics` is the unsigned Prometheus scrape only: a signed S3 request for a bucket named
/// `metrics` (path style `GET /metrics`) still reaches the control plane.
#[test]
fn a_bucket_named_metrics_is_not_shadowed_by_the_metrics_endpoint() {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let server = Serve::start(data.path(), home.path());
    server.aws("s3api create-bucket --bucket metrics");
    std::fs::write(home.path().join("f.bin"), b"hello").expect("scratch file");
    server.aws("s3api put-object --bucket metrics --key k --body f.bin");
    let listed = server.aws("s3api list-objects-v2 --bucket metrics");
    assert_eq!(listed["Contents"][0]["Key"], "k", "{listed}");

    let addr = server.endpoint.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).expect("read");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("otastream_gateway_connections_open"),
        "{reply}"
    );
}
