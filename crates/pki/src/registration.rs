//! The proof of possession AWS IoT asks for in `RegisterCACertificate`: `GetRegistrationCode` hands
//! out a code; the user signs a *verification certificate* whose subject CN is that code with the CA's
//! private key; registering the CA then needs both certificates.
//!
//! The steps are those of the AWS IoT Core developer guide's "Register a CA certificate" page (a CSR
//! with CN = the code, signed with `openssl x509 -req -CA ca.pem -CAkey ca.key`); the code's shape is
//! the API reference's (API_GetRegistrationCode.html: 64 hex characters, the same code returned until
//! it is deleted, so the caller stores it).

use crate::{CertError, Certificate};

/// A fresh registration code: 64 lowercase hex digits (256 random bits), the shape AWS returns from
/// `GetRegistrationCode`.
pub fn new_registration_code() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG failing is not something a caller could handle; ring reports no detail either.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system random number generator failed");
    hex::encode(bytes)
}

/// Checks a `RegisterCACertificate` request at time `now` (Unix seconds):
/// - the CA certificate is a CA (basic constraints `CA:TRUE`) and valid at `now`;
/// - the verification certificate's subject CN equals `registration_code` (`RegistrationCodeMismatch`,
///   AWS's `RegistrationCodeValidationException`);
/// - the verification certificate is signed by the CA's key and valid at `now`.
pub fn check_ca_registration(
    ca: &Certificate,
    verification: &Certificate,
    registration_code: &str,
    now: i64,
) -> Result<(), CertError> {
    if !ca.is_ca() {
        return Err(CertError::NotACa(ca.subject()));
    }
    ca.check_valid_at(now)?;
    let common_name = verification.common_name().unwrap_or_default();
    if common_name != registration_code {
        return Err(CertError::RegistrationCodeMismatch { common_name });
    }
    verification.check_signed_by(ca)?;
    verification.check_valid_at(now)
}
