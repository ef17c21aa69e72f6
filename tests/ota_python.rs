//! A Jobs client nobody here wrote completes a job against the gateway: the AWS IoT Device SDK
//! v2 for Python (`awsiotsdk`, `awsiot.iotjobs.IotJobsClient` over an awscrt MQTT connection),
//! driven by `tests/ota_python/jobs_client.py`, over plain TCP and over mutual TLS with a dev
//! certificate. The job is created with the `aws` CLI after the client subscribed, and its end is
//! read back through the CLI.

mod ota_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ota_support::{OtaServer, thing_arns};
use serde_json::{Value, json};

/// Runs the SDK client for the existing `thing` (`tls`: the dev CA and a certificate issued for
/// the thing), creates job `job-<thing>` once the client is subscribed, and returns the client's
/// summary line.
fn run_sdk_client(ota: &OtaServer, thing: &str, tls: bool) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ota_python/jobs_client.py"
    );
    let server = ota.server();
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("127.0.0.1");
    if tls {
        let (cert, key) = server
            .pki
            .issue_device_cert(thing)
            .expect("device certificate");
        let files = [
            ("ca.pem", &server.pki.ca_cert_pem),
            ("cert.pem", &cert),
            ("key.pem", &key),
        ];
        for (name, pem) in files {
            std::fs::write(ota.scratch(name), pem).expect("write pem");
        }
        cmd.arg(server.mqtts_addr.port().to_string()).arg(thing);
        cmd.args(files.map(|(name, _)| ota.scratch(name)));
    } else {
        cmd.arg(server.mqtt_addr.port().to_string()).arg(thing);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (pip install awsiotsdk)");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let wait = Duration::from_secs(60);
    let ready = lines.recv_timeout(wait);
    if ready.as_deref() != Ok("READY") {
        let _ = child.kill();
        panic!(
            "the SDK client did not subscribe: {ready:?} {:?}",
            child.wait_with_output()
        );
    }

    let document = json!({ "operation": "update", "url": "https://example.com/fw" });
    let doc_arg = document.to_string();
    let target = &thing_arns(&[thing.to_owned()])[0];
    ota.aws(&[
        "iot",
        "create-job",
        "--job-id",
        &format!("job-{thing}"),
        "--targets",
        target,
        "--document",
        &doc_arg,
    ]);

    let summary = lines.recv_timeout(wait);
    let status = child.wait().expect("python3 exits");
    assert!(status.success(), "the SDK client failed: {summary:?}");
    let summary: Value = serde_json::from_str(&summary.expect("summary line")).expect("json");
    assert_eq!(summary["document"], document, "{summary}");
    summary
}

fn sdk_client_completes_a_job(tls: bool) {
    let ota = OtaServer::start();
    let things = ota.create_things(if tls { "py-tls" } else { "py-tcp" }, 1);
    let thing = &things[0];
    let job = format!("job-{thing}");
    let summary = run_sdk_client(&ota, thing, tls);
    assert_eq!(
        summary,
        json!({
            "announced": job,
            "described": job,
            "document": summary["document"],
            "describe_token": "py-describe",
            "started_status": "IN_PROGRESS",
            "started_version": 2,
            "updated_status": "SUCCEEDED",
            "update_token": "py-update",
            "pending_after": null,
        })
    );

    let exec = ota.execution(&job, thing);
    assert_eq!(exec["status"], "SUCCEEDED", "{exec}");
    assert_eq!(
        exec["statusDetails"]["detailsMap"],
        json!({ "client": "awsiotsdk", "result": "done" }),
        "{exec}"
    );
    let described = ota.wait_job(&job, "COMPLETED");
    assert_eq!(described["jobProcessDetails"]["numberOfSucceededThings"], 1);
}

#[test]
fn the_aws_iot_device_sdk_for_python_completes_a_job_over_tcp() {
    sdk_client_completes_a_job(false);
}

#[test]
fn the_aws_iot_device_sdk_for_python_completes_a_job_over_mutual_tls() {
    sdk_client_completes_a_job(true);
}
