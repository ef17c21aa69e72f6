//! otastream's PKI, with no storage of its own beyond the dev PKI directory.
//!
//! # Layout
//! - `dev.rs`: [`DevPki`], the development CA and TLS server certificate in `<data_dir>/pki`
//!   (created on first use, reloaded unchanged), and issuing of device (mTLS) and code-signing
//!   certificates.
//! - `error.rs`: [`PkiError`].
//!
//! # Example
//! ```
//! use otastream_pki::DevPki;
//!
//! let dir = tempfile::tempdir()?;
//! let pki = DevPki::load_or_create(dir.path())?;
//! let (cert_pem, key_pem) = pki.issue_device_cert("thermostat-42")?;
//! assert!(cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
//! assert!(key_pem.contains("PRIVATE KEY"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dev;
mod error;

pub use dev::DevPki;
pub use error::PkiError;
