//! ACM through the `aws` CLI: import a PEM certificate + key (+ chain), describe, list, sign with
//! it through signer, refuse a key that does not match, delete.

mod common;

use common::{TestServer, firmware};
use otastream_pki::DevPki;

#[test]
fn import_describe_sign_and_delete() {
    let server = TestServer::start();
    let pki_dir = tempfile::tempdir().expect("pki dir");
    let pki = DevPki::load_or_create(pki_dir.path()).expect("pki");
    let (cert, key) = pki
        .issue_code_signing_cert("imported signer")
        .expect("cert");
    let (_, other_key) = pki.issue_code_signing_cert("someone else").expect("other");
    for (name, pem) in [
        ("cert.pem", &cert),
        ("key.pem", &key),
        ("other.pem", &other_key),
        ("ca.pem", &pki.ca_cert_pem),
    ] {
        std::fs::write(server.scratch(name), pem).expect("write pem");
    }

    let imported = server.cli(
        "acm import-certificate --certificate fileb://cert.pem --private-key fileb://key.pem \
         --certificate-chain fileb://ca.pem",
    );
    let arn = imported["CertificateArn"].as_str().expect("arn").to_owned();
    assert!(
        arn.starts_with("arn:aws:acm:us-east-1:123456789012:certificate/"),
        "{arn}"
    );
    let described =
        server.cli(&format!("acm describe-certificate --certificate-arn {arn}"))["Certificate"]
            .clone();
    assert_eq!(described["DomainName"], "imported signer");
    assert_eq!(
        (described["KeyAlgorithm"].clone(), described["Type"].clone()),
        ("EC_prime256v1".into(), "IMPORTED".into())
    );
    assert!(
        described["NotAfter"].as_f64() > described["NotBefore"].as_f64(),
        "{described}"
    );
    assert_eq!(
        server.cli("acm list-certificates")["CertificateSummaryList"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    server.cli_err(
        "ValidationException",
        "acm import-certificate --certificate fileb://cert.pem --private-key fileb://other.pem",
    );

    // The imported key signs through signer.
    std::fs::write(server.scratch("fw.bin"), firmware(4096, 1)).expect("firmware");
    server.cli("s3 mb s3://acm-fw");
    let version = server.cli(
        "s3api put-bucket-versioning --bucket acm-fw --versioning-configuration Status=Enabled",
    );
    assert!(version.is_null());
    let put = server.cli("s3api put-object --bucket acm-fw --key fw.bin --body fw.bin");
    let version = put["VersionId"].as_str().expect("version");
    server.cli(&format!(
        "signer put-signing-profile --profile-name imported --platform-id AmazonFreeRTOS-Default \
         --signing-material certificateArn={arn}"
    ));
    let job = server.cli(&format!(
        "signer start-signing-job --profile-name imported --source s3={{bucketName=acm-fw,key=fw.bin,version={version}}} \
         --destination s3={{bucketName=acm-fw,prefix=out/}}"
    ));
    let id = job["jobId"].as_str().expect("job id");
    let done = server.wait_for(
        "signing",
        || server.cli(&format!("signer describe-signing-job --job-id {id}")),
        |j| j["status"] != "InProgress",
    );
    assert_eq!(done["status"], "Succeeded", "{done}");

    server.cli(&format!("acm delete-certificate --certificate-arn {arn}"));
    server.cli_err(
        "ResourceNotFoundException",
        &format!("acm describe-certificate --certificate-arn {arn}"),
    );
    server.cli_err(
        "InvalidArnException",
        "acm describe-certificate --certificate-arn not-an-arn-at-all-xyz",
    );
    assert_eq!(
        server.cli("acm list-certificates")["CertificateSummaryList"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
