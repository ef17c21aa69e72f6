//! [`PkiError`]: the one error type of the PKI crate.

/// Everything that can go wrong loading or issuing certificates.
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
