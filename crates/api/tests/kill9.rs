//! Durability: the control plane (`otastream-control-plane`, a separate process) is killed with
//! SIGKILL right after a workflow's last acknowledged write; a new process on the same data
//! directory must show every acknowledged object, stream, profile, signing job, OTA update,
//! job and execution (the jobs engine restored from the store), and an OTA update and a signing
//! job cut short are finished on restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{AKID, Cli, SECRET, firmware};
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";

/// Starts the server process on a free loopback port; returns it and the port.
fn spawn(data: &Path) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_otastream-control-plane"))
        .arg(data)
        .arg("127.0.0.1:0")
        .env("OTASTREAM_ACCESS_KEY_ID", AKID)
        .env("OTASTREAM_SECRET_ACCESS_KEY", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("listening on <addr>");
    (child, port)
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let fw = firmware(64 * 1024, 5);
    std::fs::write(home.path().join("fw.bin"), &fw).expect("firmware");

    let (mut first, port) = spawn(data.path());
    let cli = Cli::new(port, home.path());
    cli.cli("s3 mb s3://durable");
    cli.cli(
        "s3api put-bucket-versioning --bucket durable --versioning-configuration Status=Enabled",
    );
    let version =
        cli.cli("s3api put-object --bucket durable --key fw.bin --body fw.bin")["VersionId"]
            .clone();
    let version = version.as_str().expect("version").to_owned();
    let cert =
        cli.cli("acm list-certificates")["CertificateSummaryList"][0]["CertificateArn"].clone();
    let cert = cert.as_str().expect("dev cert").to_owned();
    cli.cli(&format!("signer put-signing-profile --profile-name durable_p --platform-id AmazonFreeRTOS-Default --signing-material certificateArn={cert} --signing-parameters certname=c.crt"));
    let source = format!("s3={{bucketName=durable,key=fw.bin,version={version}}}");
    let job = cli.aws(&[
        "signer",
        "start-signing-job",
        "--profile-name",
        "durable_p",
        "--source",
        &source,
        "--destination",
        "s3={bucketName=durable,prefix=signed/}",
    ]);
    let job_id = job["jobId"].as_str().expect("job").to_owned();
    cli.wait_for(
        "signing",
        || cli.cli(&format!("signer describe-signing-job --job-id {job_id}")),
        |j| j["status"] == "Succeeded",
    );
    cli.cli("iot create-thing --thing-name dev1");
    let files = cli.json_file("s.json", &json!([{ "fileId": 0, "s3Location": { "bucket": "durable", "key": format!("signed/{job_id}") } }]));
    cli.aws(&[
        "iot",
        "create-stream",
        "--stream-id",
        "st",
        "--files",
        &files,
        "--role-arn",
        ROLE,
    ]);
    cli.cli("iot update-stream --stream-id st --description second");
    let ota = cli.json_file("o.json", &json!([{ "fileName": "fw.bin", "fileLocation": { "stream": { "streamId": "st", "fileId": 0 } },
        "codeSigning": { "awsSignerJobId": job_id } }]));
    cli.aws(&[
        "iot",
        "create-ota-update",
        "--ota-update-id",
        "u1",
        "--targets",
        "arn:aws:iot:us-east-1:123456789012:thing/dev1",
        "--files",
        &ota,
        "--role-arn",
        ROLE,
    ]);
    cli.wait_for(
        "ota",
        || cli.cli("iot get-ota-update --ota-update-id u1"),
        |u| u["otaUpdateInfo"]["otaUpdateStatus"] == "CREATE_COMPLETE",
    );
    cli.aws(&[
        "iot",
        "create-job",
        "--job-id",
        "last",
        "--targets",
        "dev1",
        "--document",
        "{\"op\":\"reboot\"}",
    ]);
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");

    // An update whose creation was cut short: still CREATE_PENDING in the store.
    {
        use otastream_store::OtaRepo;
        let store = otastream_store::Store::open(data.path()).expect("reopen");
        let mut pending = store
            .get_ota_update("u1")
            .expect("read")
            .expect("u1 stored");
        pending.id = "u_cut".into();
        pending.status = otastream_store::OtaUpdateStatus::CreatePending;
        (pending.job_id, pending.job_arn) = (None, None);
        store.create_ota_update(&pending).expect("write");
        // And a signing job cut short after its 200: InProgress, nothing signed yet.
        use otastream_store::SignerRepo;
        let mut signing = store
            .get_signing_job(&job_id)
            .expect("read")
            .expect("job stored");
        signing.id = "cut-signing-job".into();
        signing.status = otastream_store::SigningStatus::InProgress;
        (signing.signed, signing.completed_ms) = (None, None);
        store.create_signing_job(&signing).expect("write");
    }

    let (mut second, port) = spawn(data.path());
    let cli = Cli::new(port, home.path());
    let resumed = cli.wait_for(
        "resumed update",
        || cli.cli("iot get-ota-update --ota-update-id u_cut"),
        |u| u["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING",
    );
    assert_eq!(
        resumed["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE",
        "{resumed}"
    );
    assert_eq!(resumed["otaUpdateInfo"]["awsIotJobId"], "AFR_OTA-u_cut");
    let signed = cli.wait_for(
        "resumed signing job",
        || cli.cli("signer describe-signing-job --job-id cut-signing-job"),
        |j| j["status"] != "InProgress",
    );
    assert_eq!(signed["status"], "Succeeded", "{signed}");
    assert_eq!(
        signed["signedObject"]["s3"]["key"], "signed/cut-signing-job",
        "{signed}"
    );
    cli.cli(&format!(
        "s3api get-object --bucket durable --key fw.bin --version-id {version} back.bin"
    ));
    assert_eq!(
        std::fs::read(home.path().join("back.bin")).expect("back"),
        fw
    );
    assert_eq!(
        cli.cli("s3api get-bucket-versioning --bucket durable")["Status"],
        "Enabled"
    );
    assert_eq!(
        cli.cli("acm list-certificates")["CertificateSummaryList"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        cli.cli("signer get-signing-profile --profile-name durable_p")["status"],
        "Active"
    );
    assert_eq!(
        cli.cli(&format!("signer describe-signing-job --job-id {job_id}"))["status"],
        "Succeeded"
    );
    assert_eq!(
        cli.cli("iot describe-stream --stream-id st")["streamInfo"]["streamVersion"],
        2
    );
    assert_eq!(
        cli.cli("iot get-ota-update --ota-update-id u1")["otaUpdateInfo"]["otaUpdateStatus"],
        "CREATE_COMPLETE"
    );
    let doc = cli.cli("iot get-job-document --job-id AFR_OTA-u1");
    assert!(
        doc["document"]
            .as_str()
            .is_some_and(|d| d.contains("\"streamname\":\"st\"")),
        "{doc}"
    );
    let execs = cli.cli("iot list-job-executions-for-thing --thing-name dev1");
    let jobs: Vec<&str> = execs["executionSummaries"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["jobId"].as_str())
        .collect();
    assert_eq!(jobs.len(), 3, "{execs}");
    assert!(
        jobs.contains(&"AFR_OTA-u1") && jobs.contains(&"last"),
        "{execs}"
    );
    cli.cli_err(
        "InvalidStateTransitionException",
        "iot delete-job --job-id last",
    );
    second.kill().expect("stop");
    second.wait().expect("reaped");
}
