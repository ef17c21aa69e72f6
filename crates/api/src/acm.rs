//! ACM (json-1.1, `X-Amz-Target: CertificateManager.<Op>`): ImportCertificate,
//! DescribeCertificate, GetCertificate, ListCertificates, DeleteCertificate, plus the dev code-signing
//! certificate that [`crate::ApiState::new`] creates on first start with the store's dev PKI.
//!
//! Certificates are stored as `acm-certificate/<uuid>` resources holding the PEMs and the
//! details parsed from the X.509 certificate. Only ECDSA P-256 keys can sign (see `signer`).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use otastream_store::StoreError;
use p256::elliptic_curve::sec1::ToSec1Point;
use serde::Deserialize;
use serde_json::{Value, json};
use x509_parser::pem::Pem;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{epoch_seconds, now_ms, public_view};

const KIND: &str = "acm-certificate";
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

/// Builds the stored document from PEMs after checking the certificate and that the key matches it.
fn certificate_doc(
    state: &ApiState,
    arn: &str,
    cert_pem: &str,
    key_pem: &str,
    chain: Option<&str>,
) -> ApiResult<Value> {
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
    let now = now_ms();
    Ok(json!({
        "CertificateArn": arn,
        "DomainName": domain,
        "Subject": subject,
        "Issuer": cert.issuer().to_string(),
        "Serial": cert.raw_serial_as_string(),
        "NotBefore": epoch_seconds(to_ms(validity.not_before)),
        "NotAfter": epoch_seconds(to_ms(validity.not_after)),
        "ImportedAt": epoch_seconds(now),
        "CreatedAt": epoch_seconds(now),
        "KeyAlgorithm": key_algorithm,
        "SignatureAlgorithm": cert.signature_algorithm.algorithm.to_id_string(),
        "Status": "ISSUED",
        "Type": "IMPORTED",
        "InUseBy": [],
        "_pem": { "certificate": cert_pem, "privateKey": key_pem, "chain": chain },
        "_region": state.config.region,
    }))
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
                .get_resource(KIND, &id)?
                .ok_or_else(|| not_found(arn))?;
            id
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let arn = state.config.arn("acm", &format!("certificate/{id}"));
    let doc = certificate_doc(state, &arn, cert_pem, key_pem, chain)?;
    state.store.put_resource(KIND, &id, None, &doc)?;
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

/// The stored certificate document (with its PEMs), or `None`.
pub(crate) fn load(state: &ApiState, arn: &str) -> ApiResult<Option<Value>> {
    let Ok(id) = id_of(arn) else { return Ok(None) };
    Ok(state.store.get_resource(KIND, &id)?)
}

fn describe(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    id_of(&arn)?;
    let doc = load(state, &arn)?.ok_or_else(|| not_found(&arn))?;
    Ok(json!({ "Certificate": public_view(doc) }))
}

fn get_certificate(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    id_of(&arn)?;
    let doc = load(state, &arn)?.ok_or_else(|| not_found(&arn))?;
    Ok(
        json!({ "Certificate": doc["_pem"]["certificate"], "CertificateChain": doc["_pem"]["chain"] }),
    )
}

fn list(state: &ApiState) -> ApiResult<Value> {
    let summaries: Vec<Value> = state
        .store
        .list_resources(KIND, None)?
        .into_iter()
        .map(|(_, d)| {
            json!({
                "CertificateArn": d["CertificateArn"], "DomainName": d["DomainName"], "Status": d["Status"],
                "Type": d["Type"], "KeyAlgorithm": d["KeyAlgorithm"], "NotBefore": d["NotBefore"],
                "NotAfter": d["NotAfter"], "ImportedAt": d["ImportedAt"], "CreatedAt": d["CreatedAt"],
                "InUse": false,
            })
        })
        .collect();
    Ok(json!({ "CertificateSummaryList": summaries }))
}

fn delete(state: &ApiState, body: &Value) -> ApiResult<Value> {
    let arn = arn_member(body)?;
    let id = id_of(&arn)?;
    if !state.store.delete_resource(KIND, &id)? {
        return Err(not_found(&arn));
    }
    Ok(json!({}))
}

/// ARN of the dev code-signing certificate, if it was created.
pub(crate) fn dev_certificate_arn(state: &ApiState) -> Result<Option<String>, StoreError> {
    Ok(state
        .store
        .list_resources(KIND, None)?
        .into_iter()
        .find(|(_, d)| d["DomainName"] == DEV_CN)
        .and_then(|(_, d)| d["CertificateArn"].as_str().map(str::to_owned)))
}

/// Creates the dev code-signing certificate on first start (ECDSA P-256 from the dev PKI).
pub(crate) fn ensure_dev_certificate(state: &ApiState) -> Result<(), StoreError> {
    if dev_certificate_arn(state)?.is_some() {
        return Ok(());
    }
    let pki = otastream_store::pki::DevPki::load_or_create(
        &state.store.data_dir().join(otastream_store::PKI_DIR),
    )?;
    let (cert, key) = pki.issue_code_signing_cert(DEV_CN)?;
    store_certificate(state, &cert, &key, Some(&pki.ca_cert_pem), None)
        .map_err(|e| StoreError::Pki(format!("dev code-signing certificate: {}", e.message)))?;
    tracing::info!("created the dev code-signing certificate in ACM");
    Ok(())
}
