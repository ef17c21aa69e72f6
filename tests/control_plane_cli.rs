//! The seed workflow (shared/seed/ota-update-with-aws-cli.md) with the real `aws` CLI against the
//! `otastream serve` binary: one HTTP port for s3, acm, signer, iot and iot-jobs-data; then
//! SIGKILL and a restart on the same data directory, which must still hold every acknowledged write.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_otastream");
const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";
const AKID: &str = "AKIACONTROLPLANETEST1";
const SECRET: &str = "control-plane-test-secret";

/// `otastream serve` on loopback port 0; returns the process and its HTTP address.
fn serve(data: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtts",
            "127.0.0.1:0",
        ])
        .args([
            "--access-key-id",
            AKID,
            "--secret-access-key",
            SECRET,
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn otastream serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let http = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("http="))
        .expect("http=<addr>")
        .to_owned();
    (child, format!("http://{http}"))
}

/// One `aws` command (whitespace-separated arguments) with an isolated HOME; its JSON output.
fn aws(endpoint: &str, home: &Path, line: &str) -> Result<Value, String> {
    let out = Command::new("aws")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(
            ["PYENV_ROOT", "PYENV_VERSION", "LANG"]
                .iter()
                .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
        )
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_ACCESS_KEY_ID", AKID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .current_dir(home)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .args(line.split_whitespace())
        .output()
        .expect("the aws CLI is installed (pip install awscli)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or(Value::Null)
    })
}

fn wait_for(what: &str, mut get: impl FnMut() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = get();
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never finished: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn seed_workflow_against_otastream_serve() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let (mut server, ep) = serve(data.path());
    let home = home.path();
    let run = |line: &str| aws(&ep, home, line).unwrap_or_else(|e| panic!("aws {line}: {e}"));
    let fw: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(home.join("fw.bin"), &fw).expect("firmware");

    run("s3 mb s3://ota-bucket");
    run(
        "s3api put-bucket-versioning --bucket ota-bucket --versioning-configuration Status=Enabled",
    );
    let version =
        run("s3api put-object --bucket ota-bucket --key fw.bin --body fw.bin")["VersionId"].clone();
    let cert = run("acm list-certificates")["CertificateSummaryList"][0]["CertificateArn"].clone();
    let (version, cert) = (
        version.as_str().expect("version"),
        cert.as_str().expect("dev cert"),
    );
    run(&format!(
        "signer put-signing-profile --profile-name p1 --platform AmazonFreeRTOS-Default \
         --signing-material certificateArn={cert} --signing-parameters certname=ota.crt"
    ));
    let job = run(&format!(
        "signer start-signing-job --profile-name p1 --source s3={{bucketName=ota-bucket,key=fw.bin,version={version}}} \
         --destination s3={{bucketName=ota-bucket,prefix=SignedImages/}}"
    ));
    let job_id = job["jobId"].as_str().expect("job id").to_owned();
    let signed = wait_for(
        "signing",
        || run(&format!("signer describe-signing-job --job-id {job_id}")),
        |j| j["status"] != "InProgress",
    );
    assert_eq!(signed["status"], "Succeeded", "{signed}");
    let key = signed["signedObject"]["s3"]["key"]
        .as_str()
        .expect("key")
        .to_owned();
    std::fs::write(
        home.join("stream.json"),
        json!([{ "fileId": 7, "s3Location": { "bucket": "ota-bucket", "key": key } }]).to_string(),
    )
    .expect("stream.json");
    run(&format!(
        "iot create-stream --stream-id fw --files file://stream.json --role-arn {ROLE}"
    ));
    run("iot create-thing --thing-name dev1");
    let files = json!([{ "fileName": "fw.bin", "fileLocation": { "stream": { "streamId": "fw", "fileId": 7 } },
                        "codeSigning": { "awsSignerJobId": job_id } }]);
    std::fs::write(home.join("ota.json"), files.to_string()).expect("ota.json");
    run(&format!(
        "iot create-ota-update --ota-update-id u1 --targets arn:aws:iot:us-east-1:123456789012:thing/dev1 \
         --protocols MQTT --files file://ota.json --role-arn {ROLE}"
    ));
    let ota = wait_for(
        "ota",
        || run("iot get-ota-update --ota-update-id u1"),
        |u| u["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING",
    );
    assert_eq!(
        ota["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE",
        "{ota}"
    );
    let doc = run("iot get-job-document --job-id AFR_OTA-u1");
    let doc: Value =
        serde_json::from_str(doc["document"].as_str().expect("document")).expect("json");
    assert_eq!(doc["afr_ota"]["streamname"], "fw");
    assert_eq!(doc["afr_ota"]["files"][0]["filesize"], fw.len());
    // The device side (iot-jobs-data on the same port) sees the QUEUED execution.
    let pending = run("iot-jobs-data get-pending-job-executions --thing-name dev1");
    assert_eq!(pending["queuedJobs"][0]["jobId"], "AFR_OTA-u1", "{pending}");

    // SIGKILL right after the last acknowledged write, restart on the same directory.
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    let (mut server, ep) = serve(data.path());
    let run = |line: &str| aws(&ep, home, line).unwrap_or_else(|e| panic!("aws {line}: {e}"));
    run(&format!(
        "s3api get-object --bucket ota-bucket --key fw.bin --version-id {version} back.bin"
    ));
    assert_eq!(std::fs::read(home.join("back.bin")).expect("back"), fw);
    assert_eq!(
        run("iot describe-stream --stream-id fw")["streamInfo"]["files"][0]["fileId"],
        7
    );
    let ota = run("iot get-ota-update --ota-update-id u1");
    assert_eq!(ota["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_COMPLETE");
    let pending = run("iot-jobs-data get-pending-job-executions --thing-name dev1");
    assert_eq!(pending["queuedJobs"][0]["jobId"], "AFR_OTA-u1", "{pending}");
    assert_eq!(
        run("acm list-certificates")["CertificateSummaryList"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    run("iot delete-ota-update --ota-update-id u1 --force-delete-aws-job");
    let err = aws(&ep, home, "iot describe-job --job-id AFR_OTA-u1").expect_err("job deleted");
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");
    // A wrong secret is refused by the real server too.
    let wrong = Command::new("aws")
        .env("AWS_ACCESS_KEY_ID", AKID)
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .args(["--endpoint-url", &ep, "iot", "list-things"])
        .output()
        .expect("aws");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("(InvalidSignatureException)"));
    server.kill().expect("stop");
    server.wait().expect("reaped");
}
