//! `RegisterCACertificate`'s verification-certificate check and `CreateKeysAndCertificate`.

use std::time::{Duration, UNIX_EPOCH};

use otastream_pki::{
    AWS_CREATED_COMMON_NAME, CertError, Certificate, DevPki, check_ca_registration,
    check_key_matches, new_registration_code,
};

/// The CN of the fixtures' verification certificates (`fixtures/make.sh`).
const CODE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// 2030-01-01: inside every fixture's validity window.
const NOW: i64 = 1_893_456_000;

fn cert(name: &str) -> Certificate {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Certificate::from_pem(&pem).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_verification_certificate_with_the_code_signed_by_the_ca_registers_it() {
    check_ca_registration(&cert("ec-ca.pem"), &cert("ec-verification.pem"), CODE, NOW).unwrap();
    check_ca_registration(
        &cert("rsa-ca.pem"),
        &cert("rsa-verification.pem"),
        CODE,
        NOW,
    )
    .unwrap();
}

#[test]
fn every_broken_proof_of_possession_is_refused_with_its_reason() {
    let ec_ca = cert("ec-ca.pem");
    assert_eq!(
        check_ca_registration(&ec_ca, &cert("ec-verification-other-code.pem"), CODE, NOW),
        Err(CertError::RegistrationCodeMismatch {
            common_name: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210".into()
        })
    );
    // The right code, but signed by another CA's key.
    let err = check_ca_registration(&ec_ca, &cert("rsa-verification.pem"), CODE, NOW).unwrap_err();
    assert!(matches!(err, CertError::NotSignedBy(_)), "{err:?}");
    // A leaf offered as the CA.
    let err = check_ca_registration(
        &cert("ec-leaf.pem"),
        &cert("ec-verification.pem"),
        CODE,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(&err, CertError::NotACa(s) if s.contains("ec-device")),
        "{err:?}"
    );
    // The CA (and the verification certificate) outside their validity.
    let past = 1_000_000_000;
    let err = check_ca_registration(&ec_ca, &cert("ec-verification.pem"), CODE, past).unwrap_err();
    assert!(matches!(err, CertError::NotYetValid { .. }), "{err:?}");
    let far_future = 6_000_000_000;
    let err =
        check_ca_registration(&ec_ca, &cert("ec-verification.pem"), CODE, far_future).unwrap_err();
    assert!(matches!(err, CertError::Expired { .. }), "{err:?}");
}

#[test]
fn registration_codes_are_64_random_lowercase_hex_digits() {
    let (a, b) = (new_registration_code(), new_registration_code());
    for code in [&a, &b] {
        assert_eq!(code.len(), 64);
        assert!(
            code.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{code}"
        );
    }
    assert_ne!(a, b);
}

#[test]
fn create_keys_and_certificate_is_signed_by_the_iot_issuer_of_the_dev_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::load_or_create(dir.path()).unwrap();
    let now = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
    let created = pki.create_keys_and_certificate(now).unwrap();

    let certificate = Certificate::from_pem(&created.certificate_pem).unwrap();
    assert_eq!(created.certificate_id, certificate.id());
    assert_eq!(
        certificate.common_name().as_deref(),
        Some(AWS_CREATED_COMMON_NAME)
    );
    assert!(!certificate.is_ca());
    let validity = certificate.validity();
    assert_eq!(validity.not_before, 1_764_000_000);
    assert_eq!(validity.not_after, 2_524_607_999, "2049-12-31T23:59:59Z");
    check_key_matches(&created.private_key_pem, &certificate).unwrap();

    // keyPair.PublicKey is the certificate's SubjectPublicKeyInfo.
    let (_, public) = x509_parser::pem::parse_x509_pem(created.public_key_pem.as_bytes()).unwrap();
    assert_eq!(public.label, "PUBLIC KEY");
    assert_eq!(public.contents, certificate.parsed().public_key().raw);

    // Chain: certificate <- IoT issuing CA (CA, path length 0) <- dev CA.
    let iot_ca = Certificate::from_pem(&pki.iot_ca_cert_pem).unwrap();
    let dev_ca = Certificate::from_pem(&pki.ca_cert_pem).unwrap();
    certificate.check_signed_by(&iot_ca).unwrap();
    iot_ca.check_signed_by(&dev_ca).unwrap();
    assert!(iot_ca.is_ca());
    let constraints = iot_ca
        .parsed()
        .basic_constraints()
        .unwrap()
        .unwrap()
        .value
        .clone();
    assert_eq!(constraints.path_len_constraint, Some(0));
    assert!(matches!(
        certificate.check_signed_by(&dev_ca),
        Err(CertError::NotSignedBy(_))
    ));

    let again = pki.create_keys_and_certificate(now).unwrap();
    assert_ne!(again.certificate_id, created.certificate_id);
    assert_ne!(again.private_key_pem, created.private_key_pem);
}
