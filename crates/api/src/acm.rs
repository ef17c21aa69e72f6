//! ACM (json-1.1, `X-Amz-Target: CertificateManager.<Op>`): ImportCertificate,
//! DescribeCertificate, GetCertificate, ListCertificates, DeleteCertificate, plus the dev code-signing
//! certificate that [`crate::ApiState::new`] creates on first start with the store's dev PKI.
//!
//! Certificates are stored as typed [`Certificate`] records (id = the UUID of the ARN) holding
//! the PEMs and the details parsed from the X.509 certificate. Only ECDSA P-256 keys can sign (see `signer`).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use otastream_store::{Certificate, StoreError};
use p256::elliptic_curve::sec1::ToSec1Point;
use serde::Deserialize;
use serde_json::{Value, json};
use x509_parser::pem::Pem;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{epoch_seconds, now_ms};

/// Common name of the dev code-signing certificate.
const DEV_CN: &str = "otastream dev code signing";

/// Routes of this module (acm scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new().route("/", post(dispatch))
}

async fn dispatch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let target = headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let op = target
        .strip_prefix("CertificateManager.")
        .unwrap_or(target)
        .to_owned();
    let body: Value = parse_json(&body)?;
    let out = state
        .blocking(move |s| match op.as_str() {
            "ImportCertificate" => import(s, &body),
            "DescribeCertificate" => describe(s, &body),
            "ListCertificates" => list(s),
            "DeleteCertificate" => delete(s, &body),
            "GetCertificate" => get_certificate(s, &body),
            other => Err(ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("Unknown operation '{other}'"),
            )),
        })
        .await?;
    Ok(json_ok(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportRequest {
    certificate: Option<String>,
    private_key: Option<String>,
    certificate_chain: Option<String>,
    certificate_arn: Option<String>,
}

/// Blob members arrive base64-encoded; the decoded bytes must be PEM text.
fn pem_blob(member: &str, value: Option<&str>) -> ApiResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let bytes = B64
        .decode(value)
        .map_err(|e| ApiError::validation(format!("{member} is not base64: {e}")))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ApiError::validation(format!("{member} must be PEM text")))
}

/// Parses a private key PEM (PKCS#8 or SEC1) as a P-256 key.
pub(crate) fn p256_key(pem: &str) -> Option<p256::SecretKey> {
    use p256::pkcs8::DecodePrivateKey;
    p256::SecretKey::from_pkcs8_pem(pem)
        .ok()
        .or_else(|| p256::SecretKey::from_sec1_pem(pem).ok())
}

/// Builds the stored record from PEMs after checking the certificate and that the key matches it.
fn certificate_record(
    id: &str,
    arn: &str,
    cert_pem: &str,
    key_pem: &str,
    chain: Option<&str>,
) -> ApiResult<Certificate> {
    let pem = Pem::iter_from_buffer(cert_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| {
            ApiError::validation("Certificate is not a PEM encoded X.509 certificate")
        })?;
    let cert = pem
        .parse_x509()
        .map_err(|e| ApiError::validation(format!("Certificate cannot be parsed: {e}")))?;
    let spki = cert.public_key();
    let key_algorithm = match p256_key(key_pem) {
        Some(key) => {
            let point = key.public_key().to_sec1_point(false);
            if spki.subject_public_key.data.as_ref() != point.as_bytes() {
                return Err(ApiError::validation(
                    "The private key does not match the certificate's public key",
                ));
            }
            "EC_prime256v1"
        }
        None if key_pem.contains("PRIVATE KEY") => {
            let bits = spki.parsed().map(|k| k.key_size()).unwrap_or(0);
            if bits >= 1024 {
                "RSA_2048"
            } else {
                "EC_secp384r1"
            }
        }
        None => {
            return Err(ApiError::validation(
                "PrivateKey is not a PEM encoded private key",
            ));
        }
    };
    let validity = cert.validity();
    let to_ms = |t: x509_parser::time::ASN1Time| {
        u64::try_from(t.timestamp())
            .unwrap_or(0)
            .saturating_mul(1000)
    };
    let subject = cert.subject().to_string();
    let domain = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Certificate {
        id: id.to_owned(),
        arn: arn.to_owned(),
        domain_name: domain,
        subject,
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before_ms: to_ms(validity.not_before),
        not_after_ms: to_ms(validity.not_after),
        imported_ms: now_ms(),
        key_algorithm: key_algorithm.to_owned(),
        signature_algorithm: cert.signature_algorithm.algorithm.to_id_string(),
        certificate_pem: cert_pem.to_owned(),
        private_key_pem: key_pem.to_owned(),
        chain_pem: chain.map(str::to_owned),
    })
}

/// `DescribeCertificate` JSON (no PEMs).
fn describe_json(c: &Certificate) -> Value {
    json!({
        "CertificateArn": c.arn, "DomainName": c.domain_name, "Subject": c.subject,
        "Issuer": c.issuer, "Serial": c.serial,
        "NotBefore": epoch_seconds(c.not_before_ms), "NotAfter": epoch_seconds(c.not_after_ms),
        "ImportedAt": epoch_seconds(c.imported_ms), "CreatedAt": epoch_seconds(c.imported_ms),
        "KeyAlgorithm": c.key_algorithm, "SignatureAlgorithm": c.signature_algorithm,
        "Status": "ISSUED", "Type": "IMPORTED", "InUseBy": [],
    })
}

fn store_certificate(
    state: &ApiState,
    cert_pem: &str,
    key_pem: &str,
    chain: Option<&str>,
    reimport: Option<&str>,
) -> ApiResult<String> {
    let id = match reimport {
        Some(arn) => {
            let id = id_of(arn)?;
            state
                .store
                .get_certificate(&id)?
                .ok_or_else(|| not_found(arn))?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let arn = state.config.arn("acm", &format!("certificate/{id}"));
    let record = certificate_record(&id, &arn, cert_pem, key_pem, chain)?;
    state.store.put_certificate(&record)?;
    Ok(arn)
}

fn import(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let req: ImportRequest = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::validation(format!("Invalid request: {e}")))?;
    let cert = pem_blob("Certificate", req.certificate.as_deref())?
        .ok_or_else(|| ApiError::validation("Certificate is required"))?;
    let key = pem_blob("PrivateKey", req.private_key.as_deref())?
        .ok_or_else(|| ApiError::validation("PrivateKey is required"))?;
    let chain = pem_blob("CertificateChain", req.certificate_chain.as_deref())?;
    let arn = store_certificate(
        state,
        &cert,
        &key,
        chain.as_deref(),
        req.certificate_arn.as_deref(),
    )?;
    Ok(json!({ "CertificateArn": arn }))
}

/// The uuid at the end of an ACM certificate ARN.
fn id_of(arn: &str) -> ApiResult<String> {
    match arn.split_once(":certificate/") {
        Some((prefix, id)) if prefix.starts_with("arn:aws:acm:") && !id.is_empty() => {
            Ok(id.to_owned())
        }
        _ => Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            "InvalidArnException",
            format!("String '{arn}' is not a valid ARN"),
        )),
    }
}

fn not_found(arn: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        format!("Could not find certificate with ARN '{arn}'"),
    )
}

fn arn_member(body: &Value) -> ApiResult<String> {
    body["CertificateArn"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::validation("CertificateArn is required"))
}

/// The stored certificate (with its PEMs), or `None`.
pub(crate) fn load(state: &ApiState, arn: &str) -> ApiResult<Option<Certificate>> {
    let Ok(id) = id_of(arn) else { return Ok(None) };
    Ok(state.store.get_certificate(&id)?)
}

fn describe(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    id_of(&arn)?;
    let doc = load(state, &arn)?.ok_or_else(|| not_found(&arn))?;
    Ok(json!({ "Certificate": describe_json(&doc) }))
}

fn get_certificate(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    id_of(&arn)?;
    let doc = load(state, &arn)?.ok_or_else(|| not_found(&arn))?;
    Ok(json!({ "Certificate": doc.certificate_pem, "CertificateChain": doc.chain_pem }))
}

fn list(state: &ApiState) -> ApiResult<Value> {
    let summaries: Vec<Value> = state
        .store
        .list_certificates()?
        .iter()
        .map(|c| {
            json!({
                "CertificateArn": c.arn, "DomainName": c.domain_name, "Status": "ISSUED",
                "Type": "IMPORTED", "KeyAlgorithm": c.key_algorithm,
                "NotBefore": epoch_seconds(c.not_before_ms), "NotAfter": epoch_seconds(c.not_after_ms),
                "ImportedAt": epoch_seconds(c.imported_ms), "CreatedAt": epoch_seconds(c.imported_ms),
                "InUse": false,
            })
        })
        .collect();
    Ok(json!({ "CertificateSummaryList": summaries }))
}

fn delete(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    let id = id_of(&arn)?;
    if !state.store.delete_certificate(&id)? {
        return Err(not_found(&arn));
    }
    Ok(json!({}))
}

/// ARN of the dev code-signing certificate, if it was created.
pub(crate) fn dev_certificate_arn(state: &ApiState) -> Result<Option<String>, StoreError> {
    Ok(state
        .store
        .list_certificates()?
        .into_iter()
        .find(|c| c.domain_name == DEV_CN)
        .map(|c| c.arn))
}

/// Creates the dev code-signing certificate on first start (ECDSA P-256 from the dev PKI).
pub(crate) fn ensure_dev_certificate(state: &ApiState) -> Result<(), StoreError> {
    if dev_certificate_arn(state)?.is_some() {
        return Ok(());
    }
    let pki = otastream_store::pki::DevPki::load_or_create(&state.pki_dir)?;
    let (cert, key) = pki.issue_code_signing_cert(DEV_CN)?;
    store_certificate(state, &cert, &key, Some(&pki.ca_cert_pem), None)
        .map_err(|e| StoreError::Pki(format!("dev code-signing certificate: {}", e.message)))?;
    tracing::info!("created the dev code-signing certificate in ACM");
    Ok(())
}
