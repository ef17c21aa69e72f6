//! The dev PKI: created once, reloaded identical, certificates that chain to the CA.

use otastream_store::StoreError;
use otastream_store::pki::DevPki;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

fn pem_of(text: &str) -> Pem {
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).expect("PEM certificate");
    pem
}

fn common_name(pem: &Pem) -> String {
    let cert = pem.parse_x509().expect("X.509");
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("a CN")
        .to_owned()
}

/// Checks that `leaf` is signed by `ca` and names it as issuer.
fn assert_issued_by(leaf: &Pem, ca: &Pem) {
    let (leaf, ca) = (leaf.parse_x509().unwrap(), ca.parse_x509().unwrap());
    assert_eq!(leaf.issuer().to_string(), ca.subject().to_string());
    leaf.verify_signature(Some(ca.public_key()))
        .expect("signature by the CA key");
    assert!(!leaf.is_ca());
}

#[test]
fn created_once_then_reloaded_identical() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let first = DevPki::load_or_create(&pki_dir).unwrap();
    for name in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(pki_dir.join(name).is_file(), "{name} written");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki_dir.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private to the owner");
    }
    let second = DevPki::load_or_create(&pki_dir).unwrap();
    assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
    assert_eq!(first.server_cert_pem, second.server_cert_pem);
    assert_eq!(first.server_key_pem, second.server_key_pem);

    let ca = pem_of(&first.ca_cert_pem);
    let ca_cert = ca.parse_x509().unwrap();
    assert!(ca_cert.is_ca());
    ca_cert
        .verify_signature(None)
        .expect("the CA is self-signed");
    let server = pem_of(&first.server_cert_pem);
    assert_issued_by(&server, &ca);
    let server_cert = server.parse_x509().unwrap();
    let sans = server_cert
        .subject_alternative_name()
        .unwrap()
        .expect("SAN extension");
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["localhost", "ip:[127, 0, 0, 1]"]);
    assert!(
        server_cert
            .extended_key_usage()
            .unwrap()
            .expect("EKU")
            .value
            .server_auth
    );
}

#[test]
fn device_and_code_signing_certs_chain_to_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::load_or_create(dir.path()).unwrap();
    let ca = pem_of(&pki.ca_cert_pem);

    let (cert_pem, key_pem) = pki.issue_device_cert("thermostat-42").unwrap();
    assert!(key_pem.contains("PRIVATE KEY"));
    let device = pem_of(&cert_pem);
    assert_eq!(common_name(&device), "thermostat-42");
    assert_issued_by(&device, &ca);
    assert!(
        device
            .parse_x509()
            .unwrap()
            .extended_key_usage()
            .unwrap()
            .expect("EKU")
            .value
            .client_auth
    );
    let (other, _) = pki.issue_device_cert("thermostat-43").unwrap();
    assert_ne!(other, cert_pem);

    let (signing_pem, signing_key) = pki.issue_code_signing_cert("otastream dev signer").unwrap();
    let signing = pem_of(&signing_pem);
    assert_issued_by(&signing, &ca);
    let signing_cert = signing.parse_x509().unwrap();
    assert!(
        signing_cert
            .extended_key_usage()
            .unwrap()
            .expect("EKU")
            .value
            .code_signing
    );
    let curve = signing_cert
        .public_key()
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    assert_eq!(
        curve.map(|oid| oid.to_id_string()).as_deref(),
        Some("1.2.840.10045.3.1.7"),
        "P-256"
    );
    assert!(signing_key.contains("PRIVATE KEY"));

    assert!(matches!(
        pki.issue_device_cert(""),
        Err(StoreError::Pki(_))
    ));
}

#[test]
fn half_a_pair_or_garbage_is_an_error_not_a_silent_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::load_or_create(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    assert!(matches!(
        DevPki::load_or_create(dir.path()),
        Err(StoreError::Pki(_))
    ));
    std::fs::write(dir.path().join("ca.key"), "not a key").unwrap();
    assert!(matches!(
        DevPki::load_or_create(dir.path()),
        Err(StoreError::Pki(_))
    ));

    let fresh = tempfile::tempdir().unwrap();
    let pki = DevPki::load_or_create(fresh.path()).unwrap();
    std::fs::remove_file(fresh.path().join("server.pem")).unwrap();
    std::fs::remove_file(fresh.path().join("server.key")).unwrap();
    let regenerated = DevPki::load_or_create(fresh.path()).unwrap();
    assert_eq!(
        regenerated.ca_cert_pem, pki.ca_cert_pem,
        "a missing server pair is reissued by the same CA"
    );
    assert_ne!(regenerated.server_cert_pem, pki.server_cert_pem);
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = DevPki::load_or_create(dir.path()).unwrap();
    let (_, stranger_key) = pki.issue_device_cert("stranger").unwrap();
    std::fs::write(dir.path().join("server.key"), stranger_key).unwrap();
    let err = DevPki::load_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Pki(_)), "{err}");
    assert!(err.to_string().contains("server"), "{err}");
}
