//! Certificate utilities against certificates nobody here generated: Amazon's public roots (RSA and
//! P-256, from Debian's ca-certificates) and a user's own CAs made with openssl (`fixtures/make.sh`).

use otastream_pki::{CertError, Certificate, DevPki, check_key_matches};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_aws_certificate_id_is_the_sha256_fingerprint_of_the_der() {
    // The values `openssl x509 -noout -fingerprint -sha256` prints, colons removed, lowercase; for
    // Amazon Root CA 1 it is also the fingerprint Amazon publishes.
    assert_eq!(
        cert("amazon-root-ca-1.pem").id(),
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"
    );
    assert_eq!(
        cert("amazon-root-ca-3.pem").id(),
        "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4"
    );
    // (Regenerating the fixtures changes this one: update it from openssl's output.)
    assert_eq!(
        cert("rsa-leaf.pem").id(),
        "4b87327b73885b7c1fd48c3c8c2163ba3d2311ad93f475c591fa30a729b8b4b6"
    );
}

#[test]
fn pem_round_trips_and_chains_keep_their_order() {
    let root = cert("amazon-root-ca-1.pem");
    assert_eq!(Certificate::from_pem(&root.to_pem()).unwrap(), root);
    assert_eq!(root.common_name().as_deref(), Some("Amazon Root CA 1"));

    let chain_pem = format!(
        "subject=CN=ec-device\n{}\n{}",
        fixture("ec-leaf.pem"),
        fixture("ec-ca.pem")
    );
    let chain = Certificate::parse_pem_chain(&chain_pem).unwrap();
    assert_eq!(chain, [cert("ec-leaf.pem"), cert("ec-ca.pem")]);
    let err = Certificate::from_pem(&chain_pem).unwrap_err();
    assert!(
        matches!(&err, CertError::MalformedPem(m) if m.contains("found 2")),
        "{err}"
    );
}

#[test]
fn malformed_pem_is_a_clear_error() {
    let body = fixture("ec-leaf.pem");
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "no '-----BEGIN CERTIFICATE-----'"),
        (
            "prose",
            "hello\nworld\n".into(),
            "no '-----BEGIN CERTIFICATE-----'",
        ),
        (
            "a key",
            fixture("ec-leaf.key"),
            "\"EC PRIVATE KEY\", not a CERTIFICATE",
        ),
        (
            "no END line",
            body.replace("-----END CERTIFICATE-----", ""),
            "no '-----END' line",
        ),
        (
            "bad base64",
            body.replacen("MII", "M!I", 1),
            "the base64 body does not decode",
        ),
    ];
    for (what, pem, expected) in cases {
        let err = Certificate::from_pem(&pem).unwrap_err();
        assert!(matches!(err, CertError::MalformedPem(_)), "{what}: {err:?}");
        assert!(err.to_string().contains(expected), "{what}: {err}");
    }
    let not_x509 = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let err = Certificate::from_pem(not_x509).unwrap_err();
    assert!(
        matches!(&err, CertError::MalformedCertificate(m) if m.starts_with("PEM block 1")),
        "{err:?}"
    );
    let mut der = cert("ec-leaf.pem").der().to_vec();
    der.push(0);
    assert!(matches!(
        Certificate::from_der(der),
        Err(CertError::MalformedCertificate(m)) if m.contains("1 bytes after")
    ));
}

#[test]
fn signatures_verify_for_rsa_and_p256_and_a_wrong_issuer_is_refused() {
    // Self-signed roots: RSA 2048 / sha256WithRSA and P-256 / ecdsa-with-SHA256.
    for root in [
        "amazon-root-ca-1.pem",
        "amazon-root-ca-3.pem",
        "rsa-ca.pem",
        "ec-ca.pem",
    ] {
        let root = cert(root);
        root.check_signed_by(&root).unwrap();
        assert!(root.is_ca());
    }
    cert("rsa-leaf.pem")
        .check_signed_by(&cert("rsa-ca.pem"))
        .unwrap();
    cert("ec-leaf.pem")
        .check_signed_by(&cert("ec-ca.pem"))
        .unwrap();
    assert!(!cert("ec-leaf.pem").is_ca());

    let err = cert("ec-leaf.pem")
        .check_signed_by(&cert("rsa-ca.pem"))
        .unwrap_err();
    assert!(
        matches!(&err, CertError::NotSignedBy(m) if m.contains("issued by")),
        "{err}"
    );

    // Two dev PKIs: CAs with the same subject name but different keys. Names match, the signature
    // does not.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pki_a, pki_b) = (
        DevPki::load_or_create(a.path()).unwrap(),
        DevPki::load_or_create(b.path()).unwrap(),
    );
    let (device_pem, _) = pki_a.issue_device_cert("thing-a").unwrap();
    let device = Certificate::from_pem(&device_pem).unwrap();
    let (ca_a, ca_b) = (
        Certificate::from_pem(&pki_a.ca_cert_pem).unwrap(),
        Certificate::from_pem(&pki_b.ca_cert_pem).unwrap(),
    );
    assert_eq!(ca_a.subject(), ca_b.subject());
    device.check_signed_by(&ca_a).unwrap();
    let err = device.check_signed_by(&ca_b).unwrap_err();
    assert!(
        matches!(&err, CertError::NotSignedBy(m) if m.contains("does not verify")),
        "{err}"
    );
}

#[test]
fn the_validity_window_is_inclusive_and_checked() {
    let root = cert("amazon-root-ca-1.pem");
    let validity = root.validity();
    // notBefore May 26 00:00:00 2015 GMT, notAfter Jan 17 00:00:00 2038 GMT.
    assert_eq!(
        (validity.not_before, validity.not_after),
        (1_432_598_400, 2_147_299_200)
    );
    root.check_valid_at(1_432_598_400).unwrap();
    root.check_valid_at(2_147_299_200).unwrap();
    assert_eq!(
        root.check_valid_at(1_432_598_399),
        Err(CertError::NotYetValid {
            not_before: 1_432_598_400
        })
    );
    assert_eq!(
        root.check_valid_at(2_147_299_201),
        Err(CertError::Expired {
            not_after: 2_147_299_200
        })
    );
}

#[test]
fn private_keys_match_their_certificates_in_every_openssl_format() {
    // PKCS#1 RSA, PKCS#8 RSA, SEC1 P-256 after an EC PARAMETERS block, SEC1 P-256 alone.
    for (key, certificate) in [
        ("rsa-ca.key", "rsa-ca.pem"),
        ("rsa-leaf.key", "rsa-leaf.pem"),
        ("ec-ca.key", "ec-ca.pem"),
        ("ec-leaf.key", "ec-leaf.pem"),
    ] {
        check_key_matches(&fixture(key), &cert(certificate))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    for (key, certificate) in [
        ("ec-leaf.key", "ec-ca.pem"),
        ("rsa-leaf.key", "rsa-ca.pem"),
        ("rsa-ca.key", "ec-ca.pem"),
        ("ec-ca.key", "rsa-leaf.pem"),
    ] {
        assert_eq!(
            check_key_matches(&fixture(key), &cert(certificate)),
            Err(CertError::KeyMismatch),
            "{key} with {certificate}"
        );
    }
    // PKCS#8 P-256 from the dev PKI.
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::load_or_create(dir.path()).unwrap();
    let (device_pem, device_key) = pki.issue_device_cert("thing").unwrap();
    check_key_matches(&device_key, &Certificate::from_pem(&device_pem).unwrap()).unwrap();

    let leaf = cert("ec-leaf.pem");
    let malformed = [
        ("no key block", fixture("ec-leaf.pem")),
        ("prose", "not a key".to_owned()),
        (
            "junk DER",
            "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n".to_owned(),
        ),
    ];
    for (what, key) in malformed {
        let err = check_key_matches(&key, &leaf).unwrap_err();
        assert!(matches!(err, CertError::MalformedKey(_)), "{what}: {err:?}");
    }
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\naGVsbG8=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(
        check_key_matches(encrypted, &leaf),
        Err(CertError::UnsupportedKey(m)) if m.contains("encrypted")
    ));
}

#[test]
fn policy_variables_name_the_subject_and_issuer_attributes() {
    let leaf = cert("rsa-leaf.pem").policy_variables();
    let expected = [
        ("Issuer.CommonName", "Fixture RSA CA"),
        ("Issuer.Organization", "Fixture Corp"),
        ("Subject.CommonName", "rsa-device"),
    ];
    assert_eq!(
        leaf.iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        expected
    );
    let root = cert("amazon-root-ca-1.pem").policy_variables();
    assert_eq!(root["Subject.Country"], "US");
    assert_eq!(root["Issuer.Organization"], "Amazon");
    assert_eq!(root["Subject.CommonName"], "Amazon Root CA 1");
}
