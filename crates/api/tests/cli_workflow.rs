//! The seed workflow (shared/seed/ota-update-with-aws-cli.md) with the real `aws` CLI, command
//! for command: upload, sign, stream, every create-ota-update files variant, list/get, delete.

mod common;

use base64::Engine;
use common::{TestServer, firmware, http_get};
use p256::ecdsa::signature::Verifier;
use serde_json::{Value, json};

const BUCKET: &str = "ota-bucket";
const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";

/// Checks a base64 DER ECDSA signature over `data` against the ACM certificate.
fn assert_signed(server: &TestServer, cert_arn: &str, data: &[u8], signature_b64: &str) {
    let cert = server.cli(&format!("acm get-certificate --certificate-arn {cert_arn}"));
    let pem = cert["Certificate"].as_str().expect("certificate pem");
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let x509 = pem.parse_x509().expect("x509");
    let key =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&x509.public_key().subject_public_key.data)
            .expect("p256 key");
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_b64)
        .expect("base64 signature");
    let sig = p256::ecdsa::Signature::from_der(&der).expect("DER signature");
    key.verify(data, &sig)
        .expect("signature verifies with the certificate");
}

fn ota_complete(server: &TestServer, id: &str) -> Value {
    server.wait_for(
        id,
        || server.cli(&format!("iot get-ota-update --ota-update-id {id}")),
        |v| v["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING",
    )["otaUpdateInfo"]
        .clone()
}

fn afr_ota(server: &TestServer, ota_id: &str) -> Value {
    let doc = server.cli(&format!("iot get-job-document --job-id AFR_OTA-{ota_id}"));
    let doc: Value = serde_json::from_str(doc["document"].as_str().expect("document string"))
        .expect("json document");
    doc["afr_ota"].clone()
}

fn create_ota(
    server: &TestServer,
    id: &str,
    files: &Value,
    targets: &[&str],
    protocols: &[&str],
) -> Value {
    let path = server.scratch(&format!("{id}.json"));
    std::fs::write(&path, files.to_string()).expect("write files json");
    let files_arg = format!("file://{}", path.display());
    let mut args = vec![
        "iot",
        "create-ota-update",
        "--ota-update-id",
        id,
        "--files",
        &files_arg,
        "--role-arn",
        ROLE,
    ];
    args.push("--targets");
    args.extend_from_slice(targets);
    args.push("--protocols");
    args.extend_from_slice(protocols);
    let out = server.aws(&args);
    assert_eq!(out["otaUpdateStatus"], "CREATE_PENDING");
    assert_eq!(out["awsIotJobId"], format!("AFR_OTA-{id}"));
    assert_eq!(
        out["otaUpdateArn"],
        format!("arn:aws:iot:us-east-1:123456789012:otaupdate/{id}")
    );
    let info = ota_complete(server, id);
    assert_eq!(info["otaUpdateStatus"], "CREATE_COMPLETE", "{id}: {info}");
    info
}

#[test]
fn seed_workflow_with_the_aws_cli() {
    let server = TestServer::start();
    let fw = firmware(300 * 1024, 7);
    std::fs::write(server.scratch("firmware.bin"), &fw).expect("write firmware");

    // S3: bucket with versioning, upload, the exact version.
    server.cli(&format!("s3 mb s3://{BUCKET}"));
    server.aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        BUCKET,
        "--versioning-configuration",
        "Status=Enabled",
    ]);
    assert_eq!(
        server.aws(&["s3api", "get-bucket-versioning", "--bucket", BUCKET])["Status"],
        "Enabled"
    );
    server.cli(&format!("s3 cp firmware.bin s3://{BUCKET}/fw/app.bin"));
    let versions = server.aws(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        BUCKET,
        "--prefix",
        "fw/",
    ]);
    let version = versions["Versions"][0]["VersionId"]
        .as_str()
        .expect("version id")
        .to_owned();
    assert_eq!(version.len(), 32);

    // ACM: the dev code-signing certificate is there on first start.
    let certs = server.cli("acm list-certificates");
    let cert_arn = certs["CertificateSummaryList"][0]["CertificateArn"]
        .as_str()
        .expect("dev cert")
        .to_owned();
    assert!(cert_arn.starts_with("arn:aws:acm:us-east-1:123456789012:certificate/"));
    let described = server.cli(&format!(
        "acm describe-certificate --certificate-arn {cert_arn}"
    ));
    assert_eq!(described["Certificate"]["KeyAlgorithm"], "EC_prime256v1");

    // Signer: platforms, profile (the guide's `--platform` prefix form), signing job.
    let platforms = server.cli("signer list-signing-platforms");
    let ids: Vec<&str> = platforms["platforms"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["platformId"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["AmazonFreeRTOS-Default", "AmazonFreeRTOS-TI-CC3220SF"]
    );
    let material = format!("certificateArn={cert_arn}");
    let profile = server.cli(&format!("signer put-signing-profile --profile-name ota_profile --signing-material {material} --platform AmazonFreeRTOS-Default --signing-parameters certname=otasigner.crt"));
    assert_eq!(
        profile["arn"],
        "arn:aws:signer:us-east-1:123456789012:/signing-profiles/ota_profile"
    );
    let source = format!("s3={{bucketName={BUCKET},key=fw/app.bin,version={version}}}");
    let dest = format!("s3={{bucketName={BUCKET},prefix=SignedImages/}}");
    let started = server.cli(&format!(
        "signer start-signing-job --source {source} --destination {dest} --profile-name ota_profile"
    ));
    let job_id = started["jobId"].as_str().expect("job id").to_owned();
    let job = server.wait_for(
        "signing job",
        || server.cli(&format!("signer describe-signing-job --job-id {job_id}")),
        |j| j["status"] != "InProgress",
    );
    assert_eq!(job["status"], "Succeeded", "{job}");
    let signed_key = job["signedObject"]["s3"]["key"]
        .as_str()
        .expect("signed key")
        .to_owned();
    assert_eq!(signed_key, format!("SignedImages/{job_id}"));
    server.cli(&format!("s3 cp s3://{BUCKET}/{signed_key} signed.bin"));
    assert_eq!(
        std::fs::read(server.scratch("signed.bin")).expect("signed image"),
        fw
    );
    assert_eq!(
        server.cli("signer list-signing-jobs")["jobs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Things and a group as targets.
    server.cli("iot create-thing --thing-name dev1");
    server.cli("iot create-thing --thing-name dev2");
    server.cli("iot create-thing-group --thing-group-name fleet");
    server.cli("iot add-thing-to-thing-group --thing-group-name fleet --thing-name dev2");
    let members = server.cli("iot list-things-in-thing-group --thing-group-name fleet");
    assert_eq!(members["things"], json!(["dev2"]));
    let thing_arn = "arn:aws:iot:us-east-1:123456789012:thing/dev1";
    let group_arn = "arn:aws:iot:us-east-1:123456789012:thinggroup/fleet";

    // Stream of the signed image (stream.json from the guide).
    let stream_json =
        json!([{ "fileId": 123, "s3Location": { "bucket": BUCKET, "key": signed_key } }]);
    std::fs::write(server.scratch("stream.json"), stream_json.to_string()).expect("stream.json");
    let created = server.aws(&[
        "iot",
        "create-stream",
        "--stream-id",
        "fw_stream",
        "--description",
        "signed app",
        "--files",
        "file://stream.json",
        "--role-arn",
        ROLE,
    ]);
    assert_eq!(created["streamVersion"], 1);
    let updated = server.aws(&[
        "iot",
        "update-stream",
        "--stream-id",
        "fw_stream",
        "--description",
        "signed app v1",
    ]);
    assert_eq!(updated["streamVersion"], 2);
    let info = server.cli("iot describe-stream --stream-id fw_stream")["streamInfo"].clone();
    assert_eq!(info["files"][0]["fileId"], 123);
    assert_eq!(info["description"], "signed app v1");
    assert_eq!(
        server.cli("iot list-streams")["streams"][0]["streamId"],
        "fw_stream"
    );

    // Variant 1: existing stream + awsSignerJobId.
    let v1 = json!([{ "fileName": "firmware.bin", "fileLocation": { "stream": { "streamId": "fw_stream", "fileId": 123 } },
                      "codeSigning": { "awsSignerJobId": job_id } }]);
    create_ota(&server, "ota_v1", &v1, &[thing_arn], &["MQTT"]);
    let doc = afr_ota(&server, "ota_v1");
    assert_eq!(doc["streamname"], "fw_stream");
    let file = &doc["files"][0];
    assert_eq!(
        (file["fileid"].clone(), file["filesize"].clone()),
        (json!(123), json!(fw.len()))
    );
    assert_eq!(
        (file["filepath"].clone(), file["certfile"].clone()),
        (json!("firmware.bin"), json!("otasigner.crt"))
    );
    assert_signed(
        &server,
        &cert_arn,
        &fw,
        file["sig-sha256-ecdsa"].as_str().expect("signature"),
    );

    // Variant 2: existing stream + customCodeSigning (the CLI base64-encodes the blob).
    let v2 = json!([{ "fileName": "firmware.bin", "fileLocation": { "stream": { "streamId": "fw_stream", "fileId": 123 } },
        "codeSigning": { "customCodeSigning": { "signature": { "inlineDocument": "MEUCIQDcustomsig==" },
            "certificateChain": { "certificateName": "/certs/custom.pem", "inlineDocument": "chain" },
            "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA" } } }]);
    create_ota(&server, "ota_v2", &v2, &[group_arn], &["MQTT", "HTTP"]);
    let file = afr_ota(&server, "ota_v2")["files"][0].clone();
    assert_eq!(file["sig-sha256-ecdsa"], "MEUCIQDcustomsig==");
    assert_eq!(file["certfile"], "/certs/custom.pem");
    assert_eq!(file["auth_scheme"], "aws.s3.presigned");

    // HTTP data path: the device's copy of the document carries a fresh presigned URL.
    let described = server.cli("iot-jobs-data describe-job-execution --job-id AFR_OTA-ota_v2 --thing-name dev2 --include-job-document");
    let device_doc: Value = serde_json::from_str(
        described["execution"]["jobDocument"]
            .as_str()
            .expect("document"),
    )
    .expect("json");
    let url = device_doc["afr_ota"]["files"][0]["update_data_url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(
        url.starts_with(&server.endpoint()) && url.contains("X-Amz-Signature="),
        "{url}"
    );
    let (status, head, body) = http_get(&url, &[("Range", "bytes=4096-8191")]);
    assert_eq!(status, 206, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-range: bytes 4096-8191/{}", fw.len())),
        "{head}"
    );
    assert_eq!(body, fw[4096..8192]);
    let at = url.find("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let flipped = if &url[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &url[..at], &url[at + 1..]);
    assert_eq!(http_get(&tampered, &[]).0, 403);
    // The device takes the job: the control plane sees the execution move.
    let started = server.cli("iot-jobs-data start-next-pending-job-execution --thing-name dev2");
    assert_eq!(started["execution"]["status"], "IN_PROGRESS");
    let exec = server.cli("iot describe-job-execution --job-id AFR_OTA-ota_v2 --thing-name dev2");
    assert_eq!(exec["execution"]["status"], "IN_PROGRESS");

    // Variant 3: s3Location + startSigningJobParameter with a new profile: otastream signs and streams.
    let v3 = json!([{ "fileName": "/device/app.bin", "fileVersion": "1",
        "fileLocation": { "s3Location": { "bucket": BUCKET, "key": "fw/app.bin", "version": version } },
        "codeSigning": { "startSigningJobParameter": { "signingProfileName": "ota_new_profile",
            "signingProfileParameter": { "certificateArn": cert_arn, "platform": "AmazonFreeRTOS-Default", "certificatePathOnDevice": "/certs/dev.pem" },
            "destination": { "s3Destination": { "bucket": BUCKET, "prefix": "SignedImages/" } } } } }]);
    let info = create_ota(&server, "ota_v3", &v3, &[thing_arn], &["MQTT"]);
    assert!(
        info["otaUpdateFiles"][0]["codeSigning"]["awsSignerJobId"].is_string(),
        "{info}"
    );
    let doc = afr_ota(&server, "ota_v3");
    let own_stream = doc["streamname"].as_str().expect("stream").to_owned();
    assert!(own_stream.starts_with("AFR_OTA-"), "{doc}");
    assert_eq!(
        (
            doc["files"][0]["certfile"].clone(),
            doc["files"][0]["fileid"].clone()
        ),
        (json!("/certs/dev.pem"), json!(0))
    );
    assert_signed(
        &server,
        &cert_arn,
        &fw,
        doc["files"][0]["sig-sha256-ecdsa"]
            .as_str()
            .expect("signature"),
    );
    server.cli("signer get-signing-profile --profile-name ota_new_profile");

    // Variant 4: existing profile only; awsSignerJobId without fileLocation; s3Location + customCodeSigning.
    let v4 = json!([{ "fileName": "app.bin", "fileLocation": { "s3Location": { "bucket": BUCKET, "key": "fw/app.bin", "version": version } },
        "codeSigning": { "startSigningJobParameter": { "signingProfileName": "ota_profile",
            "destination": { "s3Destination": { "bucket": BUCKET } } } } }]);
    create_ota(&server, "ota_v4", &v4, &[thing_arn], &["MQTT"]);
    assert_eq!(
        afr_ota(&server, "ota_v4")["files"][0]["certfile"],
        "otasigner.crt"
    );
    let v5 = json!([{ "fileName": "app.bin", "fileVersion": "1", "codeSigning": { "awsSignerJobId": job_id } }]);
    create_ota(&server, "ota_v5", &v5, &[thing_arn], &["HTTP"]);
    let doc = afr_ota(&server, "ota_v5");
    assert!(
        doc.get("streamname").is_none() && doc["files"][0]["update_data_url"].is_string(),
        "{doc}"
    );
    let v6 = json!([{ "fileName": "app.bin", "fileLocation": { "s3Location": { "bucket": BUCKET, "key": "fw/app.bin" } },
        "codeSigning": { "customCodeSigning": { "signature": { "inlineDocument": "c2ln" },
            "certificateChain": { "certificateName": "cert.pem", "inlineDocument": "x" }, "hashAlgorithm": "SHA1", "signatureAlgorithm": "RSA" } } }]);
    create_ota(&server, "ota_v6", &v6, &[thing_arn], &["MQTT"]);
    assert_eq!(
        afr_ota(&server, "ota_v6")["files"][0]["sig-sha1-rsa"],
        "c2ln"
    );

    // Listing, jobs and QUEUED executions.
    assert_eq!(
        server.cli("iot list-ota-updates")["otaUpdates"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    let done = server.cli("iot list-ota-updates --ota-update-status CREATE_COMPLETE");
    assert_eq!(done["otaUpdates"].as_array().map(Vec::len), Some(6));
    let job = server.cli("iot describe-job --job-id AFR_OTA-ota_v2")["job"].clone();
    assert_eq!(
        (
            job["status"].clone(),
            job["jobProcessDetails"]["numberOfInProgressThings"].clone()
        ),
        (json!("IN_PROGRESS"), json!(1))
    );
    let execs = server.cli("iot list-job-executions-for-job --job-id AFR_OTA-ota_v2");
    assert_eq!(
        execs["executionSummaries"][0]["thingArn"],
        "arn:aws:iot:us-east-1:123456789012:thing/dev2"
    );
    let for_thing =
        server.cli("iot list-job-executions-for-thing --thing-name dev1 --status QUEUED");
    assert_eq!(
        for_thing["executionSummaries"].as_array().map(Vec::len),
        Some(5)
    );
    let exec = server.cli("iot describe-job-execution --job-id AFR_OTA-ota_v1 --thing-name dev1");
    assert_eq!(exec["execution"]["status"], "QUEUED");

    // Deleting: without force the AWS job stays; with the flags the job and our own stream go.
    server.aws_err(
        "InvalidStateTransitionException",
        &["iot", "delete-job", "--job-id", "AFR_OTA-ota_v1"],
    );
    server.cli("iot delete-ota-update --ota-update-id ota_v1");
    server.cli("iot delete-job --job-id AFR_OTA-ota_v1 --force");
    server.aws_err(
        "ResourceNotFoundException",
        &["iot", "get-ota-update", "--ota-update-id", "ota_v1"],
    );
    server
        .cli("iot delete-ota-update --ota-update-id ota_v3 --delete-stream --force-delete-aws-job");
    server.aws_err(
        "ResourceNotFoundException",
        &["iot", "describe-stream", "--stream-id", &own_stream],
    );
    server.aws_err(
        "ResourceNotFoundException",
        &["iot", "describe-job", "--job-id", "AFR_OTA-ota_v3"],
    );
    // The user's stream survives --delete-stream and cannot go while an update uses it.
    server
        .cli("iot delete-ota-update --ota-update-id ota_v2 --delete-stream --force-delete-aws-job");
    server.cli("iot describe-stream --stream-id fw_stream");
    server.cli("iot delete-stream --stream-id fw_stream");
    server.aws_err(
        "ResourceNotFoundException",
        &["iot", "describe-stream", "--stream-id", "fw_stream"],
    );
}
