//! The development PKI in one directory (the server uses `<data_dir>/pki`): a CA and a TLS server
//! certificate generated with rcgen on first use (ECDSA P-256) and reloaded unchanged afterwards, plus
//! issuing of device certificates (CN = thing name, for mTLS) and code-signing certificates (for the dev
//! signer).
//!
//! Files: `ca.pem`, `ca.key`, `server.pem` (SAN `localhost`, `127.0.0.1` and the `--public-host`), `server.key`, `iot-ca.pem`,
//! `iot-ca.key` (the issuer of `CreateKeysAndCertificate`); keys are PKCS#8 PEM, readable by the owner
//! only.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::{CertError, Certificate, PkiError, check_key_matches};

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";
const IOT_CA_CERT: &str = "iot-ca.pem";
const IOT_CA_KEY: &str = "iot-ca.key";

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub(crate) struct Pair {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

/// The dev CA, the server certificate and the IoT issuing CA, as PEM.
#[derive(Clone)]
pub struct DevPki {
    /// The CA certificate: trust anchor for the server certificate and for device certificates.
    pub ca_cert_pem: String,
    /// The gateway's TLS certificate, signed by the CA, SANs `localhost` and `127.0.0.1`.
    pub server_cert_pem: String,
    /// The server certificate's private key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// The IoT issuing CA (`iot-ca.pem`), signed by the CA with path length 0: the issuer of the
    /// certificates `CreateKeysAndCertificate` makes, as AWS's own issuing CA signs those in AWS IoT.
    /// A verifier that trusts [`DevPki::ca_cert_pem`] needs it as an intermediate (or trust anchor).
    pub iot_ca_cert_pem: String,
    /// The CA's private key (PKCS#8 PEM); never leaves this crate.
    ca_key_pem: String,
    /// The IoT issuing CA's private key; never leaves this crate.
    iot_ca_key_pem: String,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .finish_non_exhaustive()
    }
}

pub(crate) fn cert_error(what: &str, e: rcgen::Error) -> PkiError {
    PkiError::Invalid(format!("{what}: {e}"))
}

impl DevPki {
    /// Loads the PKI from `pki_dir`, generating (and durably writing) whatever is missing: the CA when
    /// neither `ca.pem` nor `ca.key` exists, the server certificate when neither `server.pem` nor
    /// `server.key` exists, the IoT issuing CA when neither `iot-ca.pem` nor `iot-ca.key` exists. A
    /// half-present pair, unreadable PEM or a key that is not its certificate's is `Invalid`.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, PkiError> {
        fs::create_dir_all(pki_dir)?;
        // Two processes starting on a fresh directory (`serve` and `dev-cert`) must not interleave their
        // writes into a certificate of one CA and a key of the other.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(pki_dir.join(".lock"))?;
        lock.lock()?;
        let ca = load_or_make(pki_dir, CA_CERT, CA_KEY, "pki/ca", new_ca)?;
        let server = load_or_make(pki_dir, SERVER_CERT, SERVER_KEY, "pki/server", || {
            issue_leaf(
                &ca,
                "otastream server",
                ExtendedKeyUsagePurpose::ServerAuth,
                &["localhost", "127.0.0.1"],
            )
        })?;
        let iot_ca = load_or_make(pki_dir, IOT_CA_CERT, IOT_CA_KEY, "pki/iot-ca", || {
            new_iot_ca(&ca)
        })?;
        Ok(Self {
            ca_cert_pem: ca.cert_pem,
            ca_key_pem: ca.key_pem,
            server_cert_pem: server.cert_pem,
            server_key_pem: server.key_pem,
            iot_ca_cert_pem: iot_ca.cert_pem,
            iot_ca_key_pem: iot_ca.key_pem,
        })
    }

    /// Makes sure the server certificate names every host in `hosts` (besides `localhost` and
    /// `127.0.0.1`): when one is missing, a new server certificate (same CA) naming all of them
    /// replaces `server.pem` / `server.key` durably. Returns whether it was replaced.
    pub fn ensure_server_names(
        &mut self,
        pki_dir: &Path,
        hosts: &[&str],
    ) -> Result<bool, PkiError> {
        let current = Certificate::from_pem(&self.server_cert_pem)
            .map_err(|e| PkiError::Invalid(format!("pki/server: {e}")))?
            .alt_names();
        let mut names: Vec<&str> = vec!["localhost", "127.0.0.1"];
        for name in &current {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        let missing: Vec<&str> = hosts
            .iter()
            .copied()
            .filter(|h| !h.is_empty() && !names.contains(h))
            .collect();
        if missing.is_empty() {
            return Ok(false);
        }
        for name in missing {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(pki_dir.join(".lock"))?;
        lock.lock()?;
        let server = issue_leaf(
            &self.ca(),
            "otastream server",
            ExtendedKeyUsagePurpose::ServerAuth,
            &names,
        )?;
        store_pair(pki_dir, SERVER_CERT, SERVER_KEY, &server)?;
        (self.server_cert_pem, self.server_key_pem) = (server.cert_pem, server.key_pem);
        Ok(true)
    }

    /// Issues a device (mTLS client) certificate with CN = `thing`; returns `(cert PEM, key PEM)`.
    pub fn issue_device_cert(&self, thing: &str) -> Result<(String, String), PkiError> {
        let pair = issue_leaf(&self.ca(), thing, ExtendedKeyUsagePurpose::ClientAuth, &[])?;
        Ok((pair.cert_pem, pair.key_pem))
    }

    /// Issues an ECDSA P-256 code-signing certificate with CN = `common_name` for the dev signer;
    /// returns `(cert PEM, key PEM)`.
    pub fn issue_code_signing_cert(&self, common_name: &str) -> Result<(String, String), PkiError> {
        let pair = issue_leaf(
            &self.ca(),
            common_name,
            ExtendedKeyUsagePurpose::CodeSigning,
            &[],
        )?;
        Ok((pair.cert_pem, pair.key_pem))
    }

    fn ca(&self) -> Pair {
        Pair {
            cert_pem: self.ca_cert_pem.clone(),
            key_pem: self.ca_key_pem.clone(),
        }
    }

    /// The IoT issuing CA with its key.
    pub(crate) fn iot_ca(&self) -> Pair {
        Pair {
            cert_pem: self.iot_ca_cert_pem.clone(),
            key_pem: self.iot_ca_key_pem.clone(),
        }
    }
}

/// The pair in `cert`/`key`, made by `make` and stored durably when neither file exists.
fn load_or_make(
    dir: &Path,
    cert: &str,
    key: &str,
    what: &str,
    make: impl FnOnce() -> Result<Pair, PkiError>,
) -> Result<Pair, PkiError> {
    let pair = match load_pair(dir, cert, key)? {
        Some((cert_pem, key_pem)) => Pair { cert_pem, key_pem },
        None => {
            let pair = make()?;
            store_pair(dir, cert, key, &pair)?;
            pair
        }
    };
    check_pair(&pair.cert_pem, &pair.key_pem, what)?;
    Ok(pair)
}

/// The rcgen issuer for a CA pair.
pub(crate) fn issuer(ca: &Pair) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key =
        KeyPair::from_pem(&ca.key_pem).map_err(|e| cert_error("the CA key is unreadable", e))?;
    Issuer::from_ca_cert_pem(&ca.cert_pem, key)
        .map_err(|e| cert_error("the CA certificate is unreadable", e))
}

/// Signs a fresh P-256 key for `common_name` with `ca`.
fn issue_leaf(
    ca: &Pair,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    alt_names: &[&str],
) -> Result<Pair, PkiError> {
    if common_name.is_empty() {
        return Err(PkiError::Invalid(
            "a certificate needs a non-empty common name".into(),
        ));
    }
    let names: Vec<String> = alt_names.iter().map(|n| (*n).to_owned()).collect();
    let mut params =
        CertificateParams::new(names).map_err(|e| cert_error("bad subject alternative name", e))?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    sign_new_key(params, ca)
}

/// Generates a P-256 key and signs `params` for it with `ca`.
pub(crate) fn sign_new_key(mut params: CertificateParams, ca: &Pair) -> Result<Pair, PkiError> {
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(|e| cert_error("key generation failed", e))?;
    let cert = params
        .signed_by(&key, &issuer(ca)?)
        .map_err(|e| cert_error("signing failed", e))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Fails unless `cert_pem` is one certificate and `key_pem` its private key.
fn check_pair(cert_pem: &str, key_pem: &str, what: &str) -> Result<(), PkiError> {
    let cert = Certificate::from_pem(cert_pem)
        .map_err(|e| PkiError::Invalid(format!("{what}.pem: {e}")))?;
    check_key_matches(key_pem, &cert).map_err(|e| match e {
        CertError::KeyMismatch => {
            PkiError::Invalid(format!("{what}.key is not the key of {what}.pem"))
        }
        other => PkiError::Invalid(format!("{what}.key: {other}")),
    })
}

/// A self-signed CA certificate and its key.
fn new_ca() -> Result<Pair, PkiError> {
    let params = ca_params(
        &[
            (DnType::CommonName, "otastream dev CA"),
            (DnType::OrganizationName, "otastream"),
        ],
        BasicConstraints::Unconstrained,
    );
    let key = KeyPair::generate().map_err(|e| cert_error("key generation failed", e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| cert_error("self-signing the CA failed", e))?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The IoT issuing CA, signed by `ca`, allowed to sign leaf certificates only (path length 0).
fn new_iot_ca(ca: &Pair) -> Result<Pair, PkiError> {
    let params = ca_params(
        &[
            (DnType::CommonName, "otastream IoT issuing CA"),
            (DnType::OrganizationalUnitName, "otastream IoT"),
            (DnType::OrganizationName, "otastream"),
        ],
        BasicConstraints::Constrained(0),
    );
    sign_new_key(params, ca)
}

/// The parameters of a CA certificate named `names`.
fn ca_params(names: &[(DnType, &str)], constraints: BasicConstraints) -> CertificateParams {
    let mut params = CertificateParams::default();
    for (kind, value) in names {
        params.distinguished_name.push(kind.clone(), *value);
    }
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Reads a certificate/key pair: `None` when neither file exists, `Invalid` when only one does.
fn load_pair(dir: &Path, cert: &str, key: &str) -> Result<Option<(String, String)>, PkiError> {
    match (
        read_if_present(&dir.join(cert))?,
        read_if_present(&dir.join(key))?,
    ) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => Err(PkiError::Invalid(format!(
            "{} holds only one of {cert} and {key}; remove the other to regenerate both",
            dir.display()
        ))),
    }
}

fn read_if_present(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the key, then the certificate, each durably (temp file, fsync, rename, directory fsync).
fn store_pair(dir: &Path, cert: &str, key: &str, pair: &Pair) -> Result<(), PkiError> {
    write_durably(dir, key, &pair.key_pem, 0o600)?;
    write_durably(dir, cert, &pair.cert_pem, 0o644)?;
    Ok(())
}

fn write_durably(dir: &Path, name: &str, text: &str, mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = File::options();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}
