//! `CreateKeysAndCertificate`: a new key pair and a certificate for it signed by the dev PKI's IoT
//! issuing CA, shaped as AWS IoT returns them.
//!
//! AWS issues `CN=AWS IoT Certificate` certificates valid until 2049-12-31 23:59:59 UTC for RSA 2048
//! keys. otastream makes the same subject and validity, for an ECDSA P-256 key: ring (rcgen's backend)
//! cannot generate RSA keys, and every AWS device SDK accepts P-256 (AWS supports both key kinds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::dev::{cert_error, sign_new_key};
use crate::{Certificate, DevPki, PkiError};

/// The subject common name AWS IoT gives the certificates it creates.
pub const AWS_CREATED_COMMON_NAME: &str = "AWS IoT Certificate";

/// The result of `CreateKeysAndCertificate` (the response's `certificatePem`, `certificateId` and
/// `keyPair.PublicKey` / `keyPair.PrivateKey`).
#[derive(Clone)]
pub struct KeysAndCertificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The AWS certificate id ([`Certificate::id`]).
    pub certificate_id: String,
    /// The public key, PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    pub public_key_pem: String,
    /// The private key, PEM `PRIVATE KEY` (PKCS#8). AWS returns it once and never stores it.
    pub private_key_pem: String,
}

impl std::fmt::Debug for KeysAndCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysAndCertificate")
            .field("certificate_id", &self.certificate_id)
            .finish_non_exhaustive()
    }
}

impl DevPki {
    /// A fresh P-256 key pair and a certificate for it (`CN=AWS IoT Certificate`, client
    /// authentication, valid from `now` until 2049-12-31 23:59:59 UTC) signed by the IoT issuing CA.
    pub fn create_keys_and_certificate(
        &self,
        now: SystemTime,
    ) -> Result<KeysAndCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, AWS_CREATED_COMMON_NAME);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let since_epoch = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| PkiError::Invalid("the clock reads a time before 1970".into()))?;
        // Whole seconds: X.509 times have no fractions.
        params.not_before =
            rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(since_epoch.as_secs());
        params.not_after = rcgen::date_time_ymd(2050, 1, 1) - Duration::from_secs(1);
        let pair = sign_new_key(params, &self.iot_ca())?;
        let certificate = Certificate::from_pem(&pair.cert_pem)
            .map_err(|e| PkiError::Invalid(format!("the issued certificate: {e}")))?;
        let key = rcgen::KeyPair::from_pem(&pair.key_pem)
            .map_err(|e| cert_error("the generated key", e))?;
        Ok(KeysAndCertificate {
            certificate_pem: pair.cert_pem,
            certificate_id: certificate.id(),
            public_key_pem: key.public_key_pem(),
            private_key_pem: pair.key_pem,
        })
    }
}
