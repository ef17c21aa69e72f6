//! Does a private key (PEM) belong to a certificate? PKCS#8 (`PRIVATE KEY`: ECDSA P-256/P-384, RSA,
//! Ed25519), SEC1 (`EC PRIVATE KEY`, P-256) and PKCS#1 (`RSA PRIVATE KEY`), as openssl writes them.
//!
//! The public key is derived from the private key by the library that parses it (ring, p256), which
//! also checks that the key is internally consistent, and compared with the certificate's.

use p256::elliptic_curve::sec1::ToSec1Point;
use rcgen::KeyPair;
use x509_parser::pem::Pem;

use crate::{CertError, Certificate};

/// `Ok` when `key_pem` holds the private key of `cert`'s public key; `KeyMismatch` when it holds
/// another key; `MalformedKey` / `UnsupportedKey` when it cannot be read. Blocks other than a private
/// key (openssl's `EC PARAMETERS`, a certificate) are skipped.
pub fn check_key_matches(key_pem: &str, cert: &Certificate) -> Result<(), CertError> {
    let public = public_key_of(key_pem)?;
    let parsed = cert.parsed();
    if parsed.public_key().subject_public_key.data.as_ref() == public.as_slice() {
        Ok(())
    } else {
        Err(CertError::KeyMismatch)
    }
}

/// The public key of a PEM private key, encoded as a certificate's SubjectPublicKeyInfo bit string
/// holds it (an uncompressed EC point, a DER `RSAPublicKey`, 32 Ed25519 bytes).
fn public_key_of(key_pem: &str) -> Result<Vec<u8>, CertError> {
    let block = private_key_block(key_pem)?;
    let malformed = |e: &dyn std::fmt::Display| {
        CertError::MalformedKey(format!("the {} block does not parse: {e}", block.label))
    };
    match block.label.as_str() {
        "PRIVATE KEY" => {
            let key = KeyPair::try_from(block.contents.as_slice()).map_err(|e| malformed(&e))?;
            Ok(key.public_key_raw().to_vec())
        }
        "EC PRIVATE KEY" => match p256::SecretKey::from_sec1_der(&block.contents) {
            Ok(key) => Ok(key.public_key().to_sec1_point(false).as_bytes().to_vec()),
            Err(_) => Err(CertError::UnsupportedKey(
                "an EC PRIVATE KEY that is not a P-256 key (convert it to PKCS#8 with \
                 `openssl pkcs8 -topk8 -nocrypt`)"
                    .into(),
            )),
        },
        "RSA PRIVATE KEY" => {
            let key = ring::signature::RsaKeyPair::from_der(&block.contents)
                .map_err(|e| malformed(&e))?;
            Ok(ring::signature::KeyPair::public_key(&key).as_ref().to_vec())
        }
        "ENCRYPTED PRIVATE KEY" => Err(CertError::UnsupportedKey(
            "an encrypted private key (decrypt it first)".into(),
        )),
        other => Err(CertError::UnsupportedKey(format!("a {other:?} block"))),
    }
}

/// The first PEM block whose label ends with `PRIVATE KEY`.
fn private_key_block(key_pem: &str) -> Result<Pem, CertError> {
    for block in Pem::iter_from_buffer(key_pem.as_bytes()) {
        let block = block.map_err(|e| CertError::MalformedKey(format!("not PEM: {e}")))?;
        if block.label.ends_with("PRIVATE KEY") {
            return Ok(block);
        }
    }
    Err(CertError::MalformedKey(
        "no '-----BEGIN ... PRIVATE KEY-----' block found".into(),
    ))
}
