//! The dev PKI: created once, reloaded identical, certificates that chain to the CA.

use otastream_pki::DevPki;
use otastream_pki::PkiError;
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
    for name in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "iot-ca.pem",
        "iot-ca.key",
    ] {
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
    assert_eq!(first.iot_ca_cert_pem, second.iot_ca_cert_pem);

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
        Err(PkiError::Invalid(_))
    ));
}

#[test]
fn half_a_pair_or_garbage_is_an_error_not_a_silent_new_ca() {
    let dir = tempfile::tempdir().unwrap();
    DevPki::load_or_create(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    assert!(matches!(
        DevPki::load_or_create(dir.path()),
        Err(PkiError::Invalid(_))
    ));
    std::fs::write(dir.path().join("ca.key"), "not a key").unwrap();
    assert!(matches!(
        DevPki::load_or_create(dir.path()),
        Err(PkiError::Invalid(_))
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
    assert!(matches!(err, PkiError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("server"), "{err}");
}

/// `--public-host`: a server certificate naming it (and the old names) replaces the stored one,
/// signed by the same CA, once; asking again for names it has changes nothing.
#[test]
fn the_server_certificate_gains_the_public_host_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pki = DevPki::load_or_create(dir.path()).expect("create");
    let ca = pki.ca_cert_pem.clone();
    let names = |pem: &str| {
        otastream_pki::Certificate::from_pem(pem)
            .unwrap()
            .alt_names()
    };
    assert_eq!(names(&pki.server_cert_pem), ["localhost", "127.0.0.1"]);
    assert!(!pki.ensure_server_names(dir.path(), &["127.0.0.1"]).unwrap());

    assert!(
        pki.ensure_server_names(dir.path(), &["ota.example.com", "10.0.0.7"])
            .unwrap()
    );
    let expected = ["localhost", "127.0.0.1", "ota.example.com", "10.0.0.7"];
    assert_eq!(names(&pki.server_cert_pem), expected);
    assert_issued_by(&pem_of(&pki.server_cert_pem), &pem_of(&ca));

    let reloaded = DevPki::load_or_create(dir.path()).expect("reload");
    assert_eq!(
        reloaded.server_cert_pem, pki.server_cert_pem,
        "stored durably"
    );
    assert_eq!(reloaded.ca_cert_pem, ca, "same CA");
    let mut reloaded = reloaded;
    assert!(
        !reloaded
            .ensure_server_names(dir.path(), &["ota.example.com"])
            .unwrap()
    );
}
