//! otastream's PKI: the development CA and the certificate checks AWS IoT's certificate APIs need.
//! Pure apart from [`DevPki::load_or_create`] (which reads and writes the PKI directory): PEM and a
//! clock reading in, answers out; no network, no database.
//!
//! # Layout
//! - `dev.rs`: [`DevPki`], the development CA, TLS server certificate and IoT issuing CA in
//!   `<data_dir>/pki` (created on first use, reloaded unchanged), and issuing of device (mTLS) and
//!   code-signing certificates.
//! - `keys_and_certificate.rs`: [`DevPki::create_keys_and_certificate`] for `CreateKeysAndCertificate`
//!   ([`KeysAndCertificate`]).
//! - `cert.rs`: [`Certificate`]: PEM / chain parsing with clear errors, the AWS certificate id
//!   ([`Certificate::id`], SHA-256 of the DER), validity window, CA flag, "signed by this issuer".
//! - `key.rs`: [`check_key_matches`], does a private key belong to a certificate.
//! - `registration.rs`: `GetRegistrationCode` / `RegisterCACertificate`'s proof of possession
//!   ([`new_registration_code`], [`check_ca_registration`]).
//! - `error.rs`: [`PkiError`] (the dev PKI), [`CertError`] (why a certificate or key was refused).
//!
//! # Example
//! ```
//! use otastream_pki::{Certificate, DevPki};
//!
//! let dir = tempfile::tempdir()?;
//! let pki = DevPki::load_or_create(dir.path())?;
//! let (cert_pem, key_pem) = pki.issue_device_cert("thermostat-42")?;
//! let cert = Certificate::from_pem(&cert_pem)?;
//! cert.check_signed_by(&Certificate::from_pem(&pki.ca_cert_pem)?)?;
//! otastream_pki::check_key_matches(&key_pem, &cert)?;
//! assert_eq!(cert.id().len(), 64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cert;
mod dev;
mod error;
mod key;
mod keys_and_certificate;
mod registration;

pub use cert::{Certificate, Validity};
pub use dev::DevPki;
pub use error::{CertError, PkiError};
pub use key::check_key_matches;
pub use keys_and_certificate::{AWS_CREATED_COMMON_NAME, KeysAndCertificate};
pub use registration::{check_ca_registration, new_registration_code};
