//! The TLS side of the device gateway: a rustls server (ring provider) that requires a client
//! certificate and checks that the client holds its key. Whether the certificate is trusted is
//! decided after the handshake by a [`crate::trust::DeviceTrust`] (registered and `ACTIVE`, as in
//! AWS IoT), not by a fixed set of trust anchors: a fleet's own CA and `RegisterCertificateWithoutCA`
//! certificates need no change of the TLS configuration.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::ServerConfig;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Why the TLS listener cannot be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM input has no usable item.
    #[error("PEM: {0}")]
    Pem(String),
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the server configuration: `server_cert_pem`/`server_key_pem` as the server identity, and
/// a mandatory client certificate that must be one well-formed X.509 certificate whose key signs
/// the handshake ([`RegisteredCertificateVerifier`]). No ALPN list is set, so clients offering
/// `x-amzn-mqtt-ca` (AWS's port-443 id) or nothing are all accepted.
pub fn server_config(
    server_cert_pem: &str,
    server_key_pem: &str,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(RegisteredCertificateVerifier {
        algorithms: provider.signature_verification_algorithms,
    });
    let key = PrivateKeyDer::from_pem_slice(server_key_pem.as_bytes())
        .map_err(|e| TlsSetupError::Pem(format!("server key: {e}")))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(server_cert_pem)?, key)?;
    Ok(Arc::new(config))
}

/// Requires a client certificate and the proof that the client holds its key; leaves trust to
/// the store lookup after the handshake (AWS IoT trusts registered certificates, whatever signed
/// them).
#[derive(Debug)]
pub struct RegisteredCertificateVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RegisteredCertificateVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match x509_parser::parse_x509_certificate(end_entity) {
            Ok(([], _)) => Ok(ClientCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadEncoding,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsSetupError::Pem("no certificate found".into()));
    }
    Ok(certs)
}

/// The thing name a verified client certificate stands for: its subject CN.
pub fn thing_from_certificate(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}
