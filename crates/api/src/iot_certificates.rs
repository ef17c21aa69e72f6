//! iot device certificates: CreateKeysAndCertificate, RegisterCertificate (with or without
//! `caCertificatePem`), RegisterCertificateWithoutCA, DescribeCertificate, ListCertificates,
//! ListCertificatesByCA, UpdateCertificate, DeleteCertificate; and DescribeEndpoint.
//!
//! PEM is checked with `otastream-pki` before anything is stored; the id is the SHA-256 of the DER
//! as in AWS, the ARN `arn:aws:iot:REGION:ACCOUNT:cert/<id>`. `otastream dev-cert` registers its
//! certificates through [`register_dev_certificate`].

use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use otastream_pki::{Certificate, DevPki};
use otastream_store::{Backend, CertificateStatus, DeviceCertificate, Thing};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate_marker};
use crate::{ApiConfig, ApiState, found, iot_ca, iot_policies};

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/keys-and-certificate", post(create_keys_and_certificate))
        .route("/certificate/register", post(register_certificate))
        .route("/certificate/register-no-ca", post(register_without_ca))
        .route("/certificates", get(list_certificates))
        .route(
            "/certificates/{id}",
            get(describe_certificate)
                .put(update_certificate)
                .delete(delete_certificate),
        )
        .route("/certificates-by-ca/{ca}", get(list_certificates_by_ca))
        .route("/endpoint", get(describe_endpoint))
}

/// `arn:aws:iot:REGION:ACCOUNT:cert/<id>`.
pub(crate) fn certificate_arn(config: &ApiConfig, id: &str) -> String {
    config.arn("iot", &format!("cert/{id}"))
}

/// Unix seconds to ms (times before 1970 are 0).
pub(crate) fn secs_to_ms(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
}

/// Unix seconds, now.
pub(crate) fn now_secs() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}

fn new_record(
    config: &ApiConfig,
    cert: &Certificate,
    status: CertificateStatus,
    ca_certificate_id: Option<String>,
) -> DeviceCertificate {
    let id = cert.id();
    let validity = cert.validity();
    let now = now_ms();
    DeviceCertificate {
        arn: certificate_arn(config, &id),
        id,
        pem: cert.to_pem(),
        status,
        ca_certificate_id,
        owner: config.account_id.clone(),
        created_ms: now,
        modified_ms: now,
        not_before_ms: secs_to_ms(validity.not_before),
        not_after_ms: secs_to_ms(validity.not_after),
        customer_version: 1,
        generation_id: uuid::Uuid::new_v4().to_string(),
    }
}

/// Stores a new record; an existing one is `ResourceAlreadyExistsException` with its id and ARN.
fn store_new(state: &ApiState, record: &DeviceCertificate) -> ApiResult<()> {
    state.store.create_device_certificate(record).map_err(|e| {
        if matches!(e, otastream_store::StoreError::AlreadyExists { .. }) {
            ApiError::already_exists(
                "The certificate is already provisioned or registered",
                &record.id,
                &record.arn,
            )
        } else {
            e.into()
        }
    })
}

/// The stored certificate, or `ResourceNotFoundException`.
pub(crate) fn load_certificate(state: &ApiState, id: &str) -> ApiResult<DeviceCertificate> {
    found(state.store.get_device_certificate(id)?, "Certificate", id)
}

fn registered(record: &DeviceCertificate) -> Response {
    json_ok(json!({ "certificateArn": record.arn, "certificateId": record.id }))
}

/// The status a register call asks for: `status`, or `setAsActive`, else `INACTIVE`.
fn requested_status(status: Option<&str>, query: &QueryMap) -> ApiResult<CertificateStatus> {
    match status {
        Some(text) => CertificateStatus::parse(text)
            .ok_or_else(|| ApiError::invalid(format!("Invalid certificate status '{text}'"))),
        None if flag(query, "setAsActive") => Ok(CertificateStatus::Active),
        None => Ok(CertificateStatus::Inactive),
    }
}

async fn create_keys_and_certificate(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let status = if flag(&q, "setAsActive") {
        CertificateStatus::Active
    } else {
        CertificateStatus::Inactive
    };
    state
        .blocking(move |s| {
            let pki = DevPki::load_or_create(&s.pki_dir)
                .map_err(|e| ApiError::internal(format!("dev PKI: {e}")))?;
            let made = pki
                .create_keys_and_certificate(SystemTime::now())
                .map_err(|e| ApiError::internal(format!("dev PKI: {e}")))?;
            let cert = Certificate::from_pem(&made.certificate_pem)?;
            let record = new_record(&s.config, &cert, status, None);
            store_new(s, &record)?;
            Ok(json_ok(json!({
                "certificateArn": record.arn, "certificateId": record.id,
                "certificatePem": made.certificate_pem,
                "keyPair": { "PublicKey": made.public_key_pem, "PrivateKey": made.private_key_pem },
            })))
        })
        .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    certificate_pem: String,
    ca_certificate_pem: Option<String>,
    status: Option<String>,
}

async fn register_certificate(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RegisterRequest = parse_json(&body)?;
    let status = requested_status(req.status.as_deref(), &q)?;
    let cert = Certificate::from_pem(&req.certificate_pem)?;
    cert.check_valid_at(now_secs())?;
    let given_ca = req
        .ca_certificate_pem
        .as_deref()
        .map(Certificate::from_pem)
        .transpose()?;
    state
        .blocking(move |s| {
            let ca = iot_ca::find_issuer(s, &cert, given_ca.as_ref())?;
            let record = new_record(&s.config, &cert, status, Some(ca.id));
            store_new(s, &record)?;
            Ok(registered(&record))
        })
        .await
}

async fn register_without_ca(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RegisterRequest = parse_json(&body)?;
    let status = requested_status(req.status.as_deref(), &q)?;
    let cert = Certificate::from_pem(&req.certificate_pem)?;
    cert.check_valid_at(now_secs())?;
    state
        .blocking(move |s| {
            let record = new_record(&s.config, &cert, status, None);
            store_new(s, &record)?;
            Ok(registered(&record))
        })
        .await
}

/// `certificateDescription` of `DescribeCertificate`.
fn description_json(c: &DeviceCertificate) -> Value {
    json!({
        "certificateArn": c.arn, "certificateId": c.id, "caCertificateId": c.ca_certificate_id,
        "status": c.status.as_str(), "certificatePem": c.pem, "ownedBy": c.owner,
        "creationDate": epoch_seconds(c.created_ms), "lastModifiedDate": epoch_seconds(c.modified_ms),
        "customerVersion": c.customer_version, "generationId": c.generation_id,
        "validity": { "notBefore": epoch_seconds(c.not_before_ms), "notAfter": epoch_seconds(c.not_after_ms) },
        "certificateMode": "DEFAULT",
    })
}

async fn describe_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let cert = state.blocking(move |s| load_certificate(s, &id)).await?;
    Ok(json_ok(
        json!({ "certificateDescription": description_json(&cert) }),
    ))
}

/// One page of `ListCertificates` / `ListCertificatesByCA` (newest first unless
/// `isAscendingOrder=true`).
fn certificate_page(mut certs: Vec<DeviceCertificate>, q: &QueryMap) -> ApiResult<Response> {
    if !flag(q, "isAscendingOrder") {
        certs.reverse();
    }
    let items: Vec<Value> = certs
        .iter()
        .map(|c| {
            json!({
                "certificateArn": c.arn, "certificateId": c.id, "status": c.status.as_str(),
                "certificateMode": "DEFAULT", "creationDate": epoch_seconds(c.created_ms),
            })
        })
        .collect();
    let (page, next) = paginate_marker(items, q, 250)?;
    Ok(json_ok(json!({ "certificates": page, "nextMarker": next })))
}

async fn list_certificates(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let certs = state
        .blocking(|s| Ok(s.store.list_device_certificates()?))
        .await?;
    certificate_page(certs, &q)
}

async fn list_certificates_by_ca(
    State(state): State<ApiState>,
    Path(ca): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let certs = state
        .blocking(|s| Ok(s.store.list_device_certificates()?))
        .await?;
    let certs = certs
        .into_iter()
        .filter(|c| c.ca_certificate_id.as_deref() == Some(ca.as_str()))
        .collect();
    certificate_page(certs, &q)
}

async fn update_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let text = q
        .get("newStatus")
        .cloned()
        .ok_or_else(|| ApiError::invalid("newStatus is required"))?;
    let new_status = CertificateStatus::parse(&text)
        .ok_or_else(|| ApiError::invalid(format!("Invalid certificate status '{text}'")))?;
    if matches!(
        new_status,
        CertificateStatus::PendingTransfer | CertificateStatus::PendingActivation
    ) {
        return Err(ApiError::invalid(format!(
            "The status cannot be set to {text} with UpdateCertificate"
        )));
    }
    state
        .blocking(move |s| {
            let mut cert = load_certificate(s, &id)?;
            match cert.status {
                CertificateStatus::Revoked if new_status != CertificateStatus::Revoked => {
                    return Err(ApiError::certificate_state(format!(
                        "Certificate {id} is REVOKED and cannot be made {text}"
                    )));
                }
                CertificateStatus::PendingTransfer => {
                    return Err(ApiError::certificate_state(format!(
                        "Certificate {id} is PENDING_TRANSFER"
                    )));
                }
                _ => {}
            }
            cert.status = new_status;
            cert.modified_ms = now_ms();
            cert.customer_version += 1;
            cert.generation_id = uuid::Uuid::new_v4().to_string();
            s.store.update_device_certificate(&cert)?;
            if new_status != CertificateStatus::Active {
                s.disconnect_principal(&cert.arn)?;
            }
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn delete_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let force = flag(&q, "forceDelete");
    state
        .blocking(move |s| Ok(s.store.delete_device_certificate(&id, force)?))
        .await?;
    Ok(json_ok(json!({})))
}

async fn describe_endpoint(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let kind = q.get("endpointType").map_or("iot:Data", String::as_str);
    match kind {
        "iot:Data" | "iot:Data-ATS" | "iot:Jobs" | "iot:CredentialProvider" => Ok(json_ok(
            json!({ "endpointAddress": state.config.public_host }),
        )),
        other => Err(ApiError::invalid(format!(
            "Endpoint type {other} is not valid (iot:Data, iot:Data-ATS, iot:Jobs, iot:CredentialProvider)"
        ))),
    }
}

/// What `otastream dev-cert --thing T` does with a certificate it issued: registers it `ACTIVE`
/// (without a CA), creates thing `T` if needed, creates the built-in policy
/// ([`otastream_iot_policy::DEV_THING_POLICY_DOCUMENT`]) if needed, and attaches the certificate to
/// both. Returns the certificate ARN. Running it again for the same certificate changes nothing.
pub fn register_dev_certificate(
    store: &dyn Backend,
    config: &ApiConfig,
    thing: &str,
    cert_pem: &str,
) -> ApiResult<String> {
    let cert = Certificate::from_pem(cert_pem)?;
    let record = new_record(config, &cert, CertificateStatus::Active, None);
    if store.get_device_certificate(&record.id)?.is_none() {
        store.create_device_certificate(&record)?;
    }
    if store.get_thing(thing)?.is_none() {
        store.create_thing(&Thing {
            name: thing.to_owned(),
            arn: config.arn("iot", &format!("thing/{thing}")),
            id: uuid::Uuid::new_v4().to_string(),
            type_name: None,
            attributes: Default::default(),
            version: 1,
        })?;
    }
    let policy = iot_policies::ensure_dev_policy(store, config)?;
    store.attach_policy(&policy, &record.arn)?;
    store.attach_thing_principal(thing, &record.arn)?;
    Ok(record.arn)
}
