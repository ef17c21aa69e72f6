//! [`PkiError`] (the dev PKI on disk) and [`CertError`] (checking certificates and keys).

/// Everything that can go wrong loading the dev PKI or issuing certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A certificate, key or request is malformed, or the PKI directory is inconsistent (the message
    /// says which file and why).
    #[error("invalid: {0}")]
    Invalid(String),
    /// A filesystem operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a certificate or key was refused. The messages are sentences a user can act on; the AWS error
/// code is chosen by the API (`CertificateValidationException` for most of these,
/// `RegistrationCodeValidationException` for [`CertError::RegistrationCodeMismatch`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The text is not PEM, or not the PEM expected (no block, a key where a certificate belongs,
    /// bad base64, several certificates where one is expected).
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// A PEM block decodes but its DER is not one X.509 certificate.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The private key cannot be read.
    #[error("malformed private key: {0}")]
    MalformedKey(String),
    /// The private key is of a kind this crate does not read.
    #[error("unsupported private key: {0}")]
    UnsupportedKey(String),
    /// The private key is not the key of the certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The certificate was not signed by the given issuer (other issuer name or bad signature).
    #[error("not signed by the issuer: {0}")]
    NotSignedBy(String),
    /// The signature or key algorithm is one ring cannot verify.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// `now` is before the certificate's `notBefore` (Unix seconds).
    #[error("the certificate is not valid before {not_before} (Unix time)")]
    NotYetValid {
        /// `notBefore`, Unix seconds.
        not_before: i64,
    },
    /// `now` is after the certificate's `notAfter` (Unix seconds).
    #[error("the certificate expired at {not_after} (Unix time)")]
    Expired {
        /// `notAfter`, Unix seconds.
        not_after: i64,
    },
    /// A certificate registered as a CA lacks basic constraints `CA:TRUE` (its subject).
    #[error("'{0}' is not a CA certificate (basic constraints CA:TRUE missing)")]
    NotACa(String),
    /// The verification certificate's subject CN is not the registration code.
    #[error(
        "the verification certificate's common name '{common_name}' is not the registration code"
    )]
    RegistrationCodeMismatch {
        /// The CN found (empty when there is none).
        common_name: String,
    },
}
