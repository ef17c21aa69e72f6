//! Device identity through the real `aws` CLI against `otastream serve`: the onboarding of a device
//! (create-keys-and-certificate → attach-thing-principal → create-policy → attach-policy), the list
//! and describe calls, the update/delete rules and their AWS error codes; a user CA made with
//! openssl registered with register-ca-certificate + register-certificate; `otastream dev-cert`'s
//! registration; describe-endpoint with `--public-host`.

mod control_plane_support;

use std::process::Command;

use control_plane_support::identity::{openssl, signed_by_ca, text};
use control_plane_support::{OTASTREAM, Serve};
use serde_json::{Value, json};

/// Runs an `aws` command that must fail with `code`.
fn expect_error(server: &Serve, line: &str, code: &str) {
    let err = server
        .try_aws(line)
        .expect_err(&format!("{line} should fail"));
    assert!(err.contains(&format!("({code})")), "{line}: {err}");
}

/// The policy of the onboarding: connect as the thing, use its own topics only.
fn own_topics_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "iot:Connect",
              "Resource": "arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}" },
            { "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
              "Resource": "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/*" },
            { "Effect": "Allow", "Action": "iot:Subscribe",
              "Resource": "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*" }
        ]
    })
}

#[test]
fn onboarding_with_create_keys_and_certificate_and_policies() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let server = Serve::start_with(
        data.path(),
        home.path(),
        &["--public-host", "devices.example.test"],
    );

    let made = server.aws("iot create-keys-and-certificate --set-as-active");
    let (arn, id) = (text(&made["certificateArn"]), text(&made["certificateId"]));
    assert_eq!(arn, format!("arn:aws:iot:us-east-1:123456789012:cert/{id}"));
    assert_eq!(id.len(), 64);
    assert!(text(&made["certificatePem"]).starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(text(&made["keyPair"]["PrivateKey"]).contains("PRIVATE KEY"));
    let described = server.aws(&format!("iot describe-certificate --certificate-id {id}"));
    let description = &described["certificateDescription"];
    assert_eq!(description["status"], "ACTIVE", "{described}");
    assert_eq!(description["certificatePem"], made["certificatePem"]);
    assert_eq!(description["ownedBy"], "123456789012");

    server.aws("iot create-thing --thing-name dev1");
    server.aws(&format!(
        "iot attach-thing-principal --thing-name dev1 --principal {arn}"
    ));
    let principals = server.aws("iot list-thing-principals --thing-name dev1");
    assert_eq!(principals["principals"], json!([arn]));
    let things = server.aws(&format!("iot list-principal-things --principal {arn}"));
    assert_eq!(things["things"], json!(["dev1"]));
    expect_error(
        &server,
        &format!("iot attach-thing-principal --thing-name ghost --principal {arn}"),
        "ResourceNotFoundException",
    );

    // Policies: a bad document stores nothing; versions are limited to five.
    let policy = server.json_file("policy.json", &own_topics_policy());
    let bad = server.json_file("bad.json", &json!({ "Statement": "nope" }));
    std::fs::write(home.path().join("notjson.json"), "{not json").expect("file");
    expect_error(
        &server,
        &format!("iot create-policy --policy-name own --policy-document {bad}"),
        "MalformedPolicyException",
    );
    let notjson = format!("file://{}", home.path().join("notjson.json").display());
    expect_error(
        &server,
        &format!("iot create-policy --policy-name own --policy-document {notjson}"),
        "MalformedPolicyException",
    );
    assert_eq!(server.aws("iot list-policies")["policies"], json!([]));
    let created = server.aws(&format!(
        "iot create-policy --policy-name own --policy-document {policy}"
    ));
    assert_eq!(created["policyVersionId"], "1");
    expect_error(
        &server,
        &format!("iot create-policy --policy-name own --policy-document {policy}"),
        "ResourceAlreadyExistsException",
    );
    let got = server.aws("iot get-policy --policy-name own");
    assert_eq!(got["defaultVersionId"], "1");
    let document: Value = serde_json::from_str(&text(&got["policyDocument"])).expect("json");
    assert_eq!(document, own_topics_policy());
    for n in 2..=5 {
        let v = server.aws(&format!(
            "iot create-policy-version --policy-name own --policy-document {policy}"
        ));
        assert_eq!(v["policyVersionId"], n.to_string());
        assert_eq!(v["isDefaultVersion"], false);
    }
    expect_error(
        &server,
        &format!("iot create-policy-version --policy-name own --policy-document {policy}"),
        "VersionsLimitExceededException",
    );
    expect_error(
        &server,
        &format!("iot create-policy-version --policy-name own --policy-document {bad}"),
        "MalformedPolicyException",
    );
    server.aws("iot set-default-policy-version --policy-name own --policy-version-id 3");
    expect_error(
        &server,
        "iot delete-policy-version --policy-name own --policy-version-id 3",
        "DeleteConflictException",
    );
    server.aws("iot delete-policy-version --policy-name own --policy-version-id 5");
    let versions = server.aws("iot list-policy-versions --policy-name own");
    let ids: Vec<String> = versions["policyVersions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| text(&v["versionId"]))
        .collect();
    assert_eq!(ids, ["4", "3", "2", "1"]);
    let v3 = server.aws("iot get-policy-version --policy-name own --policy-version-id 3");
    assert_eq!(v3["isDefaultVersion"], true);

    // Attachments.
    server.aws(&format!(
        "iot attach-policy --policy-name own --target {arn}"
    ));
    expect_error(
        &server,
        "iot attach-policy --policy-name own --target arn:aws:iot:us-east-1:123456789012:cert/0000",
        "ResourceNotFoundException",
    );
    expect_error(
        &server,
        &format!("iot attach-policy --policy-name ghost --target {arn}"),
        "ResourceNotFoundException",
    );
    let attached = server.aws(&format!("iot list-attached-policies --target {arn}"));
    assert_eq!(attached["policies"][0]["policyName"], "own", "{attached}");
    let targets = server.aws("iot list-targets-for-policy --policy-name own");
    assert_eq!(targets["targets"], json!([arn]));
    expect_error(
        &server,
        "iot delete-policy --policy-name own",
        "DeleteConflictException",
    );

    // Paged listing, newest first: pages of one, each naming the next.
    let second = server.aws("iot create-keys-and-certificate");
    let page = server.aws("iot list-certificates --page-size 1 --no-paginate");
    assert_eq!(
        page["certificates"][0]["certificateId"],
        second["certificateId"]
    );
    let marker = text(&page["nextMarker"]);
    let page = server.aws(&format!(
        "iot list-certificates --page-size 1 --marker {marker} --no-paginate"
    ));
    assert_eq!(page["certificates"][0]["certificateId"], id, "{page}");
    assert!(page.get("nextMarker").is_none(), "{page}");
    let ascending = server.aws("iot list-certificates --ascending-order");
    assert_eq!(ascending["certificates"][0]["certificateId"], id);

    // Update and delete rules.
    expect_error(
        &server,
        &format!("iot delete-certificate --certificate-id {id}"),
        "CertificateStateException",
    );
    expect_error(
        &server,
        &format!("iot update-certificate --certificate-id {id} --new-status BOGUS"),
        "InvalidRequestException",
    );
    server.aws(&format!(
        "iot update-certificate --certificate-id {id} --new-status INACTIVE"
    ));
    expect_error(
        &server,
        &format!("iot delete-certificate --certificate-id {id}"),
        "DeleteConflictException",
    );
    server.aws(&format!(
        "iot detach-thing-principal --thing-name dev1 --principal {arn}"
    ));
    expect_error(
        &server,
        &format!("iot delete-certificate --certificate-id {id}"),
        "DeleteConflictException",
    );
    server.aws(&format!(
        "iot update-certificate --certificate-id {id} --new-status REVOKED"
    ));
    expect_error(
        &server,
        &format!("iot update-certificate --certificate-id {id} --new-status ACTIVE"),
        "CertificateStateException",
    );
    server.aws(&format!(
        "iot delete-certificate --certificate-id {id} --force-delete"
    ));
    expect_error(
        &server,
        &format!("iot describe-certificate --certificate-id {id}"),
        "ResourceNotFoundException",
    );
    assert_eq!(
        server.aws("iot list-targets-for-policy --policy-name own")["targets"],
        json!([])
    );
    for v in [1, 2, 4] {
        server.aws(&format!(
            "iot delete-policy-version --policy-name own --policy-version-id {v}"
        ));
    }
    server.aws("iot delete-policy --policy-name own");
    expect_error(
        &server,
        "iot get-policy --policy-name own",
        "ResourceNotFoundException",
    );

    for kind in [
        "iot:Data-ATS",
        "iot:Data",
        "iot:Jobs",
        "iot:CredentialProvider",
    ] {
        let endpoint = server.aws(&format!("iot describe-endpoint --endpoint-type {kind}"));
        assert_eq!(endpoint["endpointAddress"], "devices.example.test");
    }
    expect_error(
        &server,
        "iot describe-endpoint --endpoint-type iot:Nope",
        "InvalidRequestException",
    );
    server.kill();
}

#[test]
fn a_user_ca_registers_and_signs_device_certificates() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let dir = home.path();
    let server = Serve::start(data.path(), dir);
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Fleet Root CA",
            "-days",
            "30",
            "-sha256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-out",
            "ca.pem",
        ],
    );
    let code = text(&server.aws("iot get-registration-code")["registrationCode"]);
    assert_eq!(code.len(), 64);
    assert_eq!(
        text(&server.aws("iot get-registration-code")["registrationCode"]),
        code,
        "the code stays the same"
    );
    signed_by_ca(dir, "verification", &code);
    signed_by_ca(dir, "wrong-verification", "not-the-code");
    signed_by_ca(dir, "device", "fleet-device-1");

    expect_error(
        &server,
        "iot register-ca-certificate --ca-certificate file://ca.pem \
         --verification-certificate file://wrong-verification.pem",
        "RegistrationCodeValidationException",
    );
    expect_error(
        &server,
        "iot register-certificate --certificate-pem file://device.pem --ca-certificate-pem file://ca.pem",
        "CertificateValidationException",
    );
    let ca = server.aws(
        "iot register-ca-certificate --ca-certificate file://ca.pem \
         --verification-certificate file://verification.pem --set-as-active --allow-auto-registration",
    );
    let ca_id = text(&ca["certificateId"]);
    let described = server.aws(&format!(
        "iot describe-ca-certificate --certificate-id {ca_id}"
    ));
    let description = &described["certificateDescription"];
    assert_eq!(description["status"], "ACTIVE", "{described}");
    assert_eq!(description["autoRegistrationStatus"], "ENABLE");
    expect_error(
        &server,
        "iot register-ca-certificate --ca-certificate file://ca.pem \
         --verification-certificate file://verification.pem",
        "ResourceAlreadyExistsException",
    );

    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .expect("file");
    expect_error(
        &server,
        "iot register-certificate --certificate-pem file://garbage.pem",
        "CertificateValidationException",
    );
    let device = server.aws(
        "iot register-certificate --certificate-pem file://device.pem \
         --ca-certificate-pem file://ca.pem --set-as-active",
    );
    let device_id = text(&device["certificateId"]);
    let described = server.aws(&format!(
        "iot describe-certificate --certificate-id {device_id}"
    ));
    assert_eq!(
        described["certificateDescription"]["caCertificateId"],
        ca_id
    );
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");
    let by_ca = server.aws(&format!(
        "iot list-certificates-by-ca --ca-certificate-id {ca_id}"
    ));
    assert_eq!(
        by_ca["certificates"][0]["certificateId"], device_id,
        "{by_ca}"
    );
    expect_error(
        &server,
        "iot register-certificate --certificate-pem file://device.pem",
        "ResourceAlreadyExistsException",
    );
    // Without caCertificatePem the registered CA is found by its signature.
    signed_by_ca(dir, "device2", "fleet-device-2");
    let device2 = server.aws("iot register-certificate --certificate-pem file://device2.pem");
    let described = server.aws(&format!(
        "iot describe-certificate --certificate-id {}",
        text(&device2["certificateId"])
    ));
    assert_eq!(
        described["certificateDescription"]["caCertificateId"],
        ca_id
    );
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");
    // Without a CA at all.
    let no_ca =
        server.aws("iot register-certificate-without-ca --certificate-pem file://verification.pem");
    assert_eq!(text(&no_ca["certificateId"]).len(), 64);

    expect_error(
        &server,
        &format!("iot delete-ca-certificate --certificate-id {ca_id}"),
        "CertificateStateException",
    );
    server.aws(&format!(
        "iot update-ca-certificate --certificate-id {ca_id} --new-status INACTIVE \
         --new-auto-registration-status DISABLE"
    ));
    let described = server.aws(&format!(
        "iot describe-ca-certificate --certificate-id {ca_id}"
    ));
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");
    assert_eq!(
        described["certificateDescription"]["autoRegistrationStatus"],
        "DISABLE"
    );
    signed_by_ca(dir, "device3", "fleet-device-3");
    expect_error(
        &server,
        "iot register-certificate --certificate-pem file://device3.pem",
        "CertificateStateException",
    );
    // Its certificates keep the CA from being deleted.
    expect_error(
        &server,
        &format!("iot delete-ca-certificate --certificate-id {ca_id}"),
        "CertificateStateException",
    );
    assert_eq!(
        server.aws("iot list-ca-certificates")["certificates"][0]["certificateId"],
        ca_id
    );
    server.kill();
}

#[test]
fn dev_cert_registers_its_certificate_with_the_dev_policy() {
    let data = tempfile::tempdir().expect("data");
    let home = tempfile::tempdir().expect("home");
    let server = Serve::start(data.path(), home.path());
    let out = home.path().join("certs");
    let status = Command::new(OTASTREAM)
        .args(["dev-cert", "--data-dir"])
        .arg(data.path())
        .args(["--thing", "sensor-7", "--out"])
        .arg(&out)
        .output()
        .expect("dev-cert");
    assert!(status.status.success(), "{status:?}");
    let principals = server.aws("iot list-thing-principals --thing-name sensor-7");
    let arn = text(&principals["principals"][0]);
    let id = arn.rsplit('/').next().expect("id").to_owned();
    let described = server.aws(&format!("iot describe-certificate --certificate-id {id}"));
    assert_eq!(described["certificateDescription"]["status"], "ACTIVE");
    let pem = std::fs::read_to_string(out.join("sensor-7.cert.pem")).expect("cert");
    assert_eq!(described["certificateDescription"]["certificatePem"], pem);
    let attached = server.aws(&format!("iot list-attached-policies --target {arn}"));
    assert_eq!(attached["policies"][0]["policyName"], "otastream-dev-thing");
    let policy = server.aws("iot get-policy --policy-name otastream-dev-thing");
    let document: Value = serde_json::from_str(&text(&policy["policyDocument"])).expect("json");
    let builtin: Value =
        serde_json::from_str(otastream_iot_policy::DEV_THING_POLICY_DOCUMENT).expect("json");
    assert_eq!(document, builtin);
    server.kill();
}
