//! [`Certificate`]: one X.509 certificate parsed from PEM, its AWS certificate id, validity window,
//! CA flag and the check that another certificate's key signed it.
//!
//! Everything here is pure: bytes and a clock reading in, answers out.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::{PEMError, X509Error};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

use crate::CertError;

/// One X.509 certificate: its DER bytes, checked to parse when the value was made.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("id", &self.id())
            .field("subject", &self.parsed().subject().to_string())
            .finish()
    }
}

/// A certificate's validity window in Unix seconds (`notBefore` and `notAfter`, both inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// The first second the certificate is valid.
    pub not_before: i64,
    /// The last second the certificate is valid.
    pub not_after: i64,
}

impl Certificate {
    /// Parses exactly one PEM `CERTIFICATE` block (text around it is ignored, as openssl does).
    /// Several certificates are an error here; use [`Certificate::parse_pem_chain`] for a chain.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let mut chain = Self::parse_pem_chain(pem)?;
        if chain.len() > 1 {
            return Err(CertError::MalformedPem(format!(
                "expected one certificate, found {}",
                chain.len()
            )));
        }
        Ok(chain.remove(0))
    }

    /// Parses every PEM block of `pem` as a certificate, in order (leaf first, as in a TLS chain).
    /// No block at all, a block that is not a `CERTIFICATE`, bad base64 or DER that is not exactly one
    /// X.509 certificate is an error naming the block.
    pub fn parse_pem_chain(pem: &str) -> Result<Vec<Self>, CertError> {
        let mut chain = Vec::new();
        for (index, block) in Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
            let block = block.map_err(|e| {
                CertError::MalformedPem(format!("PEM block {}: {}", index + 1, pem_error(&e)))
            })?;
            if block.label != "CERTIFICATE" {
                return Err(CertError::MalformedPem(format!(
                    "PEM block {} is a {:?}, not a CERTIFICATE",
                    index + 1,
                    block.label
                )));
            }
            let cert = Self::from_der(block.contents).map_err(|e| match e {
                CertError::MalformedCertificate(m) => {
                    CertError::MalformedCertificate(format!("PEM block {}: {m}", index + 1))
                }
                other => other,
            })?;
            chain.push(cert);
        }
        if chain.is_empty() {
            return Err(CertError::MalformedPem(
                "no '-----BEGIN CERTIFICATE-----' block found".into(),
            ));
        }
        Ok(chain)
    }

    /// Takes DER bytes that must hold exactly one X.509 certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertError> {
        match X509Certificate::from_der(&der) {
            Ok(([], _)) => Ok(Self { der }),
            Ok((rest, _)) => Err(CertError::MalformedCertificate(format!(
                "{} bytes after the certificate",
                rest.len()
            ))),
            Err(e) => Err(CertError::MalformedCertificate(format!(
                "not an X.509 certificate: {e}"
            ))),
        }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (`-----BEGIN CERTIFICATE-----`, 64-column base64, trailing newline).
    pub fn to_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            // Base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The parsed certificate, borrowing the DER (cheap: x509-parser does not copy).
    pub fn parsed(&self) -> X509Certificate<'_> {
        match X509Certificate::from_der(&self.der) {
            Ok((_, cert)) => cert,
            // `from_der` / `parse_pem_chain` checked this exact buffer.
            Err(e) => unreachable!("a checked certificate no longer parses: {e}"),
        }
    }

    /// The AWS IoT certificate id: the SHA-256 of the DER encoding as 64 lowercase hex digits, the
    /// value `openssl x509 -noout -fingerprint -sha256` prints (without the colons). The last part of
    /// the certificate ARN, `arn:aws:iot:REGION:ACCOUNT:cert/<id>` (API reference,
    /// API_CertificateDescription.html: `certificateId`, fixed length 64, hex).
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    /// The DNS names and IP addresses of its subject alternative names, as text.
    pub fn alt_names(&self) -> Vec<String> {
        use x509_parser::extensions::GeneralName;
        let parsed = self.parsed();
        let Ok(Some(san)) = parsed.subject_alternative_name() else {
            return Vec::new();
        };
        san.value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => <[u8; 4]>::try_from(*ip)
                        .ok()
                        .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                    16 => <[u8; 16]>::try_from(*ip)
                        .ok()
                        .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// The subject's first common name, if it has one that is a string.
    pub fn common_name(&self) -> Option<String> {
        let cert = self.parsed();
        let cn = cert.subject().iter_common_name().next()?;
        cn.as_str().ok().map(str::to_owned)
    }

    /// The subject distinguished name as text (`CN=..., O=...`).
    pub fn subject(&self) -> String {
        self.parsed().subject().to_string()
    }

    /// Whether basic constraints mark it as a CA certificate.
    pub fn is_ca(&self) -> bool {
        self.parsed().is_ca()
    }

    /// The validity window.
    pub fn validity(&self) -> Validity {
        let cert = self.parsed();
        let validity = cert.validity();
        Validity {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        }
    }

    /// `Ok` when `now` (Unix seconds) is inside the validity window, else `NotYetValid` / `Expired`.
    pub fn check_valid_at(&self, now: i64) -> Result<(), CertError> {
        let Validity {
            not_before,
            not_after,
        } = self.validity();
        if now < not_before {
            Err(CertError::NotYetValid { not_before })
        } else if now > not_after {
            Err(CertError::Expired { not_after })
        } else {
            Ok(())
        }
    }

    /// `Ok` when this certificate's signature verifies with `issuer`'s public key and names `issuer`'s
    /// subject as its issuer. Supports what ring verifies: RSA PKCS#1 v1.5 (SHA-256/384/512, 2048 bits
    /// and more), RSA-PSS, ECDSA P-256 and P-384 (SHA-256/384) and Ed25519. It checks one link, not a
    /// path: neither validity nor the issuer's CA flag (see [`Certificate::check_valid_at`],
    /// [`Certificate::is_ca`]).
    pub fn check_signed_by(&self, issuer: &Self) -> Result<(), CertError> {
        let (cert, issuer_cert) = (self.parsed(), issuer.parsed());
        if cert.issuer() != issuer_cert.subject() {
            return Err(CertError::NotSignedBy(format!(
                "issued by '{}', not by '{}'",
                cert.issuer(),
                issuer_cert.subject()
            )));
        }
        match cert.verify_signature(Some(issuer_cert.public_key())) {
            Ok(()) => Ok(()),
            Err(X509Error::SignatureUnsupportedAlgorithm) => {
                Err(CertError::UnsupportedAlgorithm(format!(
                    "signature algorithm {} with a {} key",
                    cert.signature_algorithm.algorithm,
                    issuer_cert.public_key().algorithm.algorithm
                )))
            }
            Err(_) => Err(CertError::NotSignedBy(format!(
                "the signature does not verify with the key of '{}'",
                issuer_cert.subject()
            ))),
        }
    }
}

fn pem_error(e: &PEMError) -> &'static str {
    match e {
        PEMError::Base64DecodeError => "the base64 body does not decode",
        PEMError::IncompletePEM => "no '-----END' line",
        PEMError::InvalidHeader => "the '-----BEGIN' line is malformed",
        PEMError::MissingHeader => "no '-----BEGIN' line",
        PEMError::IOError(_) => "unreadable",
    }
}

/// The X.509 attribute types AWS IoT exposes as `iot:Certificate.Subject.<name>` /
/// `iot:Certificate.Issuer.<name>` (developer guide, cert-policy-variables.html), by OID.
const POLICY_ATTRIBUTES: [(&str, &str); 13] = [
    ("2.5.4.46", "DistinguishedNameQualifier"),
    ("2.5.4.6", "Country"),
    ("2.5.4.10", "Organization"),
    ("2.5.4.11", "OrganizationalUnit"),
    ("2.5.4.8", "State"),
    ("2.5.4.3", "CommonName"),
    ("2.5.4.5", "SerialNumber"),
    ("2.5.4.12", "Title"),
    ("2.5.4.4", "Surname"),
    ("2.5.4.42", "GivenName"),
    ("2.5.4.43", "Initials"),
    ("2.5.4.65", "Pseudonym"),
    ("2.5.4.44", "GenerationQualifier"),
];

impl Certificate {
    /// The certificate's X.509 policy variables, keyed by the name after `iot:Certificate.`:
    /// `Subject.<attribute>` and `Issuer.<attribute>` for each attribute above that the name has (its
    /// first value when it has several), as the policy engine's `RequestContext::certificate` takes
    /// them.
    pub fn policy_variables(&self) -> std::collections::BTreeMap<String, String> {
        let cert = self.parsed();
        let mut variables = std::collections::BTreeMap::new();
        for (prefix, name) in [("Subject", cert.subject()), ("Issuer", cert.issuer())] {
            for attribute in name.iter_attributes() {
                let oid = attribute.attr_type().to_id_string();
                let Some((_, label)) = POLICY_ATTRIBUTES.iter().find(|(o, _)| *o == oid) else {
                    continue;
                };
                if let Ok(value) = attribute.as_str() {
                    variables
                        .entry(format!("{prefix}.{label}"))
                        .or_insert_with(|| value.to_owned());
                }
            }
        }
        variables
    }
}
