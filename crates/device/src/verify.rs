//! Code-signature check, as the reference PAL does it at `closeFile`: SHA-256 over the whole
//! received file, then ECDSA P-256 verification of the DER signature with the public key of the
//! code-signing certificate.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};

/// Why a code-signing certificate cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The text is not a PEM certificate.
    #[error("not a PEM certificate: {0}")]
    Pem(String),
    /// The certificate does not parse as X.509.
    #[error("not an X.509 certificate: {0}")]
    X509(String),
    /// The subject public key is not an uncompressed/compressed P-256 point.
    #[error("the certificate's key is not an ECDSA P-256 key")]
    NotP256,
}

/// The public key that verifies firmware signatures.
#[derive(Clone, Debug)]
pub struct CodeSigner {
    key: VerifyingKey,
}

impl CodeSigner {
    /// Reads the SubjectPublicKeyInfo of a PEM certificate.
    pub fn from_cert_pem(pem: &str) -> Result<Self, CertError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| CertError::X509(e.to_string()))?;
        let point = &cert.public_key().subject_public_key.data;
        let key = VerifyingKey::from_sec1_bytes(point).map_err(|_| CertError::NotP256)?;
        Ok(Self { key })
    }

    /// Whether `der_signature` (ASN.1 `SEQUENCE{r,s}`) signs the SHA-256 digest `digest`.
    pub fn verify_digest(&self, digest: &[u8; 32], der_signature: &[u8]) -> bool {
        Signature::from_der(der_signature)
            .is_ok_and(|sig| self.key.verify_prehash(digest, &sig).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            CodeSigner::from_cert_pem("hello"),
            Err(CertError::Pem(_))
        ));
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            CodeSigner::from_cert_pem(bad),
            Err(CertError::X509(_))
        ));
    }
}
