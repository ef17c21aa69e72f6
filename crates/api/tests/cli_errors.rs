//! One negative case per error class, through the real `aws` CLI: bad input, duplicates,
//! unknown resources, state conflicts, signer failures, and bad or missing signatures.

mod common;

use common::{SECRET, TestServer, firmware};
use serde_json::json;

const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";

fn setup(server: &TestServer) {
    std::fs::write(server.scratch("fw.bin"), firmware(2048, 3)).expect("firmware");
    server.cli("s3 mb s3://errs");
    server.cli("s3 cp fw.bin s3://errs/fw.bin");
    server.cli("iot create-thing --thing-name dev1");
}

#[test]
fn control_plane_errors_have_the_modelled_codes() {
    let server = TestServer::start();
    setup(&server);
    let good = server.json_file(
        "good.json",
        &json!([{ "fileId": 1, "s3Location": { "bucket": "errs", "key": "fw.bin" } }]),
    );
    let stream = |id: &str, files: &str| {
        let args = [
            "iot",
            "create-stream",
            "--stream-id",
            id,
            "--files",
            files,
            "--role-arn",
            ROLE,
        ];
        server.aws_with_secret(SECRET, &args)
    };
    assert_eq!(stream("s1", &good).0, 0);

    // InvalidRequestException: limits the CLI does not check, and files that do not exist.
    let big_id = server.json_file(
        "big.json",
        &json!([{ "fileId": 300, "s3Location": { "bucket": "errs", "key": "fw.bin" } }]),
    );
    let missing = server.json_file(
        "missing.json",
        &json!([{ "fileId": 1, "s3Location": { "bucket": "errs", "key": "nope" } }]),
    );
    for files in [&big_id, &missing] {
        let (rc, _, err) = stream("s2", files);
        assert!(
            rc == 255 && err.contains("(InvalidRequestException)"),
            "{err}"
        );
    }
    server.cli_err(
        "InvalidRequestException",
        "iot create-thing --thing-name bad/name",
    );
    server.cli_err(
        "InvalidRequestException",
        "iot list-streams --max-results 251",
    );
    let ota_files = server.json_file(
        "ota.json",
        &json!([{ "fileName": "f", "fileLocation": { "stream": { "streamId": "s1", "fileId": 1 } },
        "codeSigning": { "awsSignerJobId": "no-such-job" } }]),
    );
    let thing = "arn:aws:iot:us-east-1:123456789012:thing/dev1";
    let ota = |id: &str, protocol: &str| {
        let args = [
            "iot",
            "create-ota-update",
            "--ota-update-id",
            id,
            "--targets",
            thing,
            "--protocols",
            protocol,
            "--files",
            &ota_files,
            "--role-arn",
            ROLE,
        ];
        server.aws_with_secret(SECRET, &args)
    };
    let (rc, _, err) = ota("u1", "COAP");
    assert!(
        rc == 255 && err.contains("(InvalidRequestException)"),
        "{err}"
    );

    // ResourceAlreadyExistsException.
    let (_, _, err) = stream("s1", &good);
    assert!(err.contains("(ResourceAlreadyExistsException)"), "{err}");
    server.cli("iot create-thing-group --thing-group-name g1");
    server.cli_err(
        "ResourceAlreadyExistsException",
        "iot create-thing-group --thing-group-name g1",
    );

    // ResourceNotFoundException, in iot, signer and acm.
    server.cli_err(
        "ResourceNotFoundException",
        "iot describe-stream --stream-id nope",
    );
    server.cli_err(
        "ResourceNotFoundException",
        "iot describe-thing --thing-name nope",
    );
    server.cli_err(
        "ResourceNotFoundException",
        "iot get-ota-update --ota-update-id nope",
    );
    server.cli_err(
        "ResourceNotFoundException",
        "iot describe-job --job-id nope",
    );
    server.cli_err(
        "ResourceNotFoundException",
        "signer get-signing-profile --profile-name nope",
    );
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000";
    server.aws_err(
        "ResourceNotFoundException",
        &["acm", "describe-certificate", "--certificate-arn", arn],
    );

    // An OTA update whose signer job does not exist is accepted, then fails with errorInfo.
    assert_eq!(ota("u1", "MQTT").0, 0);
    let (rc, _, err) = ota("u1", "MQTT");
    assert!(
        rc == 255 && err.contains("(ResourceAlreadyExistsException)"),
        "{err}"
    );
    let info = server.wait_for(
        "u1",
        || server.cli("iot get-ota-update --ota-update-id u1"),
        |v| v["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING",
    );
    assert_eq!(info["otaUpdateInfo"]["otaUpdateStatus"], "CREATE_FAILED");
    assert_eq!(
        info["otaUpdateInfo"]["errorInfo"]["code"],
        "InvalidRequestException"
    );

    // Signer validation, and a job whose certificate is unknown fails with a reason.
    server.cli_err(
        "ValidationException",
        "signer put-signing-profile --profile-name bad-name --platform-id AmazonFreeRTOS-Default --signing-material certificateArn=x",
    );
    server.cli(&format!("signer put-signing-profile --profile-name p_unknown --platform-id AmazonFreeRTOS-Default --signing-material certificateArn={arn}"));
    let head = server.cli("s3api head-object --bucket errs --key fw.bin");
    let version = head["VersionId"].as_str().unwrap_or("null");
    let source = format!("s3={{bucketName=errs,key=fw.bin,version={version}}}");
    let job = server.aws(&[
        "signer",
        "start-signing-job",
        "--profile-name",
        "p_unknown",
        "--source",
        &source,
        "--destination",
        "s3={bucketName=errs,prefix=signed/}",
    ]);
    let id = job["jobId"].as_str().expect("job id");
    let done = server.wait_for(
        "signing",
        || server.cli(&format!("signer describe-signing-job --job-id {id}")),
        |j| j["status"] != "InProgress",
    );
    assert_eq!(done["status"], "Failed");
    assert!(
        done["statusReason"]
            .as_str()
            .is_some_and(|r| r.contains("not found in ACM")),
        "{done}"
    );

    // State conflicts: a job in progress, a stale execution version, a stream in use.
    server.aws(&[
        "iot",
        "create-job",
        "--job-id",
        "j1",
        "--targets",
        thing,
        "--document",
        "{\"op\":\"x\"}",
    ]);
    server.cli_err(
        "ResourceAlreadyExistsException",
        "iot create-job --job-id j1 --targets dev1 --document {}",
    );
    server.cli_err(
        "InvalidStateTransitionException",
        "iot delete-job --job-id j1",
    );
    server.cli_err(
        "VersionConflictException",
        "iot cancel-job-execution --job-id j1 --thing-name dev1 --expected-version 9",
    );
    server.cli("iot cancel-job-execution --job-id j1 --thing-name dev1");
    server.cli_err(
        "InvalidStateTransitionException",
        "iot cancel-job-execution --job-id j1 --thing-name dev1",
    );
    let canceled = server.cli("iot describe-job --job-id j1");
    assert_eq!(canceled["job"]["status"], "COMPLETED", "{canceled}");
    server.cli_err(
        "ResourceNotFoundException",
        "iot delete-job-execution --job-id j1 --thing-name dev1 --execution-number 7",
    );
    server.cli("iot delete-job-execution --job-id j1 --thing-name dev1 --execution-number 1");
    server.cli_err(
        "ResourceNotFoundException",
        "iot describe-job-execution --job-id j1 --thing-name dev1",
    );
    server.cli("iot delete-job --job-id j1");
    let stream_ota = server.json_file(
        "v.json",
        &json!([{ "fileName": "f", "fileLocation": { "stream": { "streamId": "s1", "fileId": 1 } },
        "codeSigning": { "customCodeSigning": { "signature": { "inlineDocument": "c2ln" } } } }]),
    );
    server.aws(&[
        "iot",
        "create-ota-update",
        "--ota-update-id",
        "u2",
        "--targets",
        thing,
        "--files",
        &stream_ota,
        "--role-arn",
        ROLE,
    ]);
    server.cli_err(
        "DeleteConflictException",
        "iot delete-stream --stream-id s1",
    );
}

#[test]
fn unsigned_and_wrongly_signed_requests_are_refused() {
    let server = TestServer::start();
    server.cli("s3 mb s3://sig");
    let wrong = |args: &[&str]| server.aws_with_secret("not-the-secret", args);
    for (args, code) in [
        (&["iot", "list-things"][..], "InvalidSignatureException"),
        (
            &["signer", "list-signing-platforms"][..],
            "InvalidSignatureException",
        ),
        (
            &["acm", "list-certificates"][..],
            "InvalidSignatureException",
        ),
        (
            &["s3api", "list-objects-v2", "--bucket", "sig"][..],
            "SignatureDoesNotMatch",
        ),
    ] {
        let (rc, _, err) = wrong(args);
        assert!(
            rc == 255 && err.contains(&format!("({code})")),
            "{args:?}: {err}"
        );
    }
    server.cli_err(
        "MissingAuthenticationTokenException",
        "iot list-things --no-sign-request",
    );
    server.cli_err(
        "AccessDenied",
        "s3api list-objects-v2 --bucket sig --no-sign-request",
    );
    // Nothing was created by the refused requests.
    assert_eq!(server.cli("iot list-things")["things"], json!([]));
}
