//! The development PKI in `<data_dir>/pki`: a CA and a TLS server certificate generated with rcgen on
//! first use (ECDSA P-256) and reloaded unchanged afterwards, plus issuing of device certificates
//! (CN = thing name, for mTLS) and code-signing certificates (for the dev signer).
//!
//! Files: `ca.pem`, `ca.key`, `server.pem` (SAN `localhost`, `127.0.0.1`), `server.key`; keys are
//! PKCS#8 PEM, readable by the owner only.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::StoreError;

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// The dev CA and server certificate, as PEM.
#[derive(Clone)]
pub struct DevPki {
    /// The CA certificate: trust anchor for the server certificate and for device certificates.
    pub ca_cert_pem: String,
    /// The gateway's TLS certificate, signed by the CA, SANs `localhost` and `127.0.0.1`.
    pub server_cert_pem: String,
    /// The server certificate's private key (PKCS#8 PEM).
    pub server_key_pem: String,
    /// The CA's private key (PKCS#8 PEM); never leaves this module.
    ca_key_pem: String,
}

impl std::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .finish_non_exhaustive()
    }
}

fn cert_error(what: &str, e: rcgen::Error) -> StoreError {
    StoreError::Pki(format!("{what}: {e}"))
}

impl DevPki {
    /// Loads the PKI from `pki_dir`, generating (and durably writing) whatever is missing: the CA when
    /// neither `ca.pem` nor `ca.key` exists, the server certificate when neither `server.pem` nor
    /// `server.key` exists. A half-present pair or unreadable PEM is `Invalid`.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(pki_dir)?;
        // Two processes starting on a fresh directory (`serve` and `dev-cert`) must not interleave their
        // writes into a certificate of one CA and a key of the other.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(pki_dir.join(".lock"))?;
        lock.lock()?;
        let (ca_cert_pem, ca_key_pem) = match load_pair(pki_dir, CA_CERT, CA_KEY)? {
            Some(pair) => pair,
            None => {
                let pair = new_ca()?;
                store_pair(pki_dir, CA_CERT, CA_KEY, &pair)?;
                pair
            }
        };
        let mut pki = Self {
            ca_cert_pem,
            ca_key_pem,
            server_cert_pem: String::new(),
            server_key_pem: String::new(),
        };
        check_pair(&pki.ca_cert_pem, &pki.ca_key_pem, "pki/ca")?;
        let (server_cert_pem, server_key_pem) = match load_pair(pki_dir, SERVER_CERT, SERVER_KEY)? {
            Some(pair) => pair,
            None => {
                let pair = pki.issue_server_cert()?;
                store_pair(pki_dir, SERVER_CERT, SERVER_KEY, &pair)?;
                pair
            }
        };
        check_pair(&server_cert_pem, &server_key_pem, "pki/server")?;
        pki.server_cert_pem = server_cert_pem;
        pki.server_key_pem = server_key_pem;
        Ok(pki)
    }

    /// Issues a device (mTLS client) certificate with CN = `thing`; returns `(cert PEM, key PEM)`.
    pub fn issue_device_cert(&self, thing: &str) -> Result<(String, String), StoreError> {
        self.issue_leaf(thing, ExtendedKeyUsagePurpose::ClientAuth, &[])
    }

    /// Issues an ECDSA P-256 code-signing certificate with CN = `common_name` for the dev signer;
    /// returns `(cert PEM, key PEM)`.
    pub fn issue_code_signing_cert(
        &self,
        common_name: &str,
    ) -> Result<(String, String), StoreError> {
        self.issue_leaf(common_name, ExtendedKeyUsagePurpose::CodeSigning, &[])
    }

    fn issue_server_cert(&self) -> Result<(String, String), StoreError> {
        self.issue_leaf(
            "otastream server",
            ExtendedKeyUsagePurpose::ServerAuth,
            &["localhost", "127.0.0.1"],
        )
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, StoreError> {
        let key = KeyPair::from_pem(&self.ca_key_pem)
            .map_err(|e| cert_error("pki/ca.key is unreadable", e))?;
        Issuer::from_ca_cert_pem(&self.ca_cert_pem, key)
            .map_err(|e| cert_error("pki/ca.pem is unreadable", e))
    }

    /// Signs a fresh P-256 key for `common_name` with the CA.
    fn issue_leaf(
        &self,
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
        alt_names: &[&str],
    ) -> Result<(String, String), StoreError> {
        if common_name.is_empty() {
            return Err(StoreError::Pki(
                "a certificate needs a non-empty common name".into(),
            ));
        }
        let names: Vec<String> = alt_names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names)
            .map_err(|e| cert_error("bad subject alternative name", e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(|e| cert_error("key generation failed", e))?;
        let cert = params
            .signed_by(&key, &self.issuer()?)
            .map_err(|e| cert_error("signing failed", e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Fails unless `key_pem` holds the private key of the certificate in `cert_pem`.
fn check_pair(cert_pem: &str, key_pem: &str, what: &str) -> Result<(), StoreError> {
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| cert_error(&format!("{what}.key is unreadable"), e))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| StoreError::Pki(format!("{what}.pem is not PEM: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| StoreError::Pki(format!("{what}.pem is not a certificate: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(StoreError::Pki(format!(
            "{what}.key is not the key of {what}.pem"
        )));
    }
    Ok(())
}

/// A self-signed CA certificate and its key.
fn new_ca() -> Result<(String, String), StoreError> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "otastream dev CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "otastream");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(|e| cert_error("key generation failed", e))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| cert_error("self-signing the CA failed", e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Reads a certificate/key pair: `None` when neither file exists, `Invalid` when only one does.
fn load_pair(dir: &Path, cert: &str, key: &str) -> Result<Option<(String, String)>, StoreError> {
    match (
        read_if_present(&dir.join(cert))?,
        read_if_present(&dir.join(key))?,
    ) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => Err(StoreError::Pki(format!(
            "{} holds only one of {cert} and {key}; remove the other to regenerate both",
            dir.display()
        ))),
    }
}

fn read_if_present(path: &Path) -> Result<Option<String>, StoreError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the key, then the certificate, each durably (temp file, fsync, rename, directory fsync).
fn store_pair(
    dir: &Path,
    cert: &str,
    key: &str,
    (cert_pem, key_pem): &(String, String),
) -> Result<(), StoreError> {
    write_durably(dir, key, key_pem, 0o600)?;
    write_durably(dir, cert, cert_pem, 0o644)?;
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
    crate::files::sync_dir(dir)
}
