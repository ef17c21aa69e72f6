//! iot CA certificates: GetRegistrationCode, RegisterCACertificate (proof of possession through a
//! verification certificate, `--allow-auto-registration`), DescribeCACertificate,
//! UpdateCACertificate, ListCACertificates, DeleteCACertificate; and finding the registered CA
//! that signed a device certificate (RegisterCertificate).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use otastream_pki::{Certificate, check_ca_registration, new_registration_code};
use otastream_store::{CaCertificate, CaCertificateStatus, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult, json_ok, parse_json};
use crate::iot_certificates::{now_secs, secs_to_ms};
use crate::util::{QueryMap, epoch_seconds, flag, now_ms, paginate_marker};
use crate::{ApiState, found};

/// Routes of this module (iot scope).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/registrationcode", get(get_registration_code))
        .route(
            "/cacertificate",
            axum::routing::post(register_ca_certificate),
        )
        .route(
            "/cacertificate/{id}",
            get(describe_ca_certificate)
                .put(update_ca_certificate)
                .delete(delete_ca_certificate),
        )
        .route("/cacertificates", get(list_ca_certificates))
}

/// The registered CA that signed `cert`: the one given (`caCertificatePem`), else any registered CA
/// whose key verifies it. Not registered or not the signer: `CertificateValidationException`; an
/// `INACTIVE` CA: `CertificateStateException`.
pub(crate) fn find_issuer(
    state: &ApiState,
    cert: &Certificate,
    given: Option<&Certificate>,
) -> ApiResult<CaCertificate> {
    let ca = match given {
        Some(given) => {
            let ca = state
                .store
                .get_ca_certificate(&given.id())?
                .ok_or_else(|| {
                    ApiError::certificate_validation("The CA certificate is not registered")
                })?;
            cert.check_signed_by(given)?;
            ca
        }
        None => state
            .store
            .list_ca_certificates()?
            .into_iter()
            .find(|ca| {
                Certificate::from_pem(&ca.pem).is_ok_and(|pem| cert.check_signed_by(&pem).is_ok())
            })
            .ok_or_else(|| {
                ApiError::certificate_validation(
                    "The certificate is not signed by a registered CA certificate",
                )
            })?,
    };
    if ca.status != CaCertificateStatus::Active {
        return Err(ApiError::certificate_state(format!(
            "The CA certificate {} is INACTIVE",
            ca.id
        )));
    }
    Ok(ca)
}

async fn get_registration_code(State(state): State<ApiState>) -> ApiResult<Response> {
    let code = state
        .blocking(|s| Ok(s.store.registration_code(&new_registration_code())?))
        .await?;
    Ok(json_ok(json!({ "registrationCode": code })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCa {
    ca_certificate: String,
    verification_certificate: Option<String>,
    registration_config: Option<Value>,
    certificate_mode: Option<String>,
}

async fn register_ca_certificate(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: RegisterCa = parse_json(&body)?;
    let ca = Certificate::from_pem(&req.ca_certificate)?;
    let sni_only = req.certificate_mode.as_deref() == Some("SNI_ONLY");
    let verification = match (&req.verification_certificate, sni_only) {
        (Some(pem), _) => Some(Certificate::from_pem(pem)?),
        (None, true) => None,
        (None, false) => {
            return Err(ApiError::invalid(
                "verificationCertificate is required in DEFAULT certificate mode",
            ));
        }
    };
    let status = if flag(&q, "setAsActive") {
        CaCertificateStatus::Active
    } else {
        CaCertificateStatus::Inactive
    };
    let auto_registration = flag(&q, "allowAutoRegistration");
    state
        .blocking(move |s| {
            if let Some(verification) = &verification {
                let code = s.store.registration_code(&new_registration_code())?;
                check_ca_registration(&ca, verification, &code, now_secs())?;
            } else if !ca.is_ca() {
                return Err(otastream_pki::CertError::NotACa(ca.subject()).into());
            }
            let id = ca.id();
            let validity = ca.validity();
            let now = now_ms();
            let record = CaCertificate {
                arn: s.config.arn("iot", &format!("cacert/{id}")),
                id,
                pem: ca.to_pem(),
                status,
                auto_registration,
                registration_config: req.registration_config,
                owner: s.config.account_id.clone(),
                created_ms: now,
                modified_ms: now,
                not_before_ms: secs_to_ms(validity.not_before),
                not_after_ms: secs_to_ms(validity.not_after),
                customer_version: 1,
                generation_id: uuid::Uuid::new_v4().to_string(),
            };
            s.store
                .create_ca_certificate(&record)
                .map_err(|e| match e {
                    StoreError::AlreadyExists { .. } => ApiError::already_exists(
                        "The CA certificate is already registered",
                        &record.id,
                        &record.arn,
                    ),
                    other => other.into(),
                })?;
            Ok(json_ok(
                json!({ "certificateArn": record.arn, "certificateId": record.id }),
            ))
        })
        .await
}

fn load_ca(state: &ApiState, id: &str) -> ApiResult<CaCertificate> {
    found(state.store.get_ca_certificate(id)?, "CA certificate", id)
}

fn auto_registration_status(ca: &CaCertificate) -> &'static str {
    if ca.auto_registration {
        "ENABLE"
    } else {
        "DISABLE"
    }
}

async fn describe_ca_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let ca = state.blocking(move |s| load_ca(s, &id)).await?;
    Ok(json_ok(json!({
        "certificateDescription": {
            "certificateArn": ca.arn, "certificateId": ca.id, "status": ca.status.as_str(),
            "certificatePem": ca.pem, "ownedBy": ca.owner,
            "creationDate": epoch_seconds(ca.created_ms),
            "autoRegistrationStatus": auto_registration_status(&ca),
            "lastModifiedDate": epoch_seconds(ca.modified_ms),
            "customerVersion": ca.customer_version, "generationId": ca.generation_id,
            "validity": { "notBefore": epoch_seconds(ca.not_before_ms), "notAfter": epoch_seconds(ca.not_after_ms) },
            "certificateMode": "DEFAULT",
        },
        "registrationConfig": ca.registration_config,
    })))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UpdateCa {
    registration_config: Option<Value>,
    #[serde(default)]
    remove_auto_registration: bool,
}

async fn update_ca_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<QueryMap>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: UpdateCa = parse_json(&body)?;
    let status = q
        .get("newStatus")
        .map(|text| {
            CaCertificateStatus::parse(text)
                .ok_or_else(|| ApiError::invalid(format!("Invalid CA certificate status '{text}'")))
        })
        .transpose()?;
    let auto = q
        .get("newAutoRegistrationStatus")
        .map(|text| match text.as_str() {
            "ENABLE" => Ok(true),
            "DISABLE" => Ok(false),
            other => Err(ApiError::invalid(format!(
                "Invalid auto registration status '{other}'"
            ))),
        })
        .transpose()?;
    state
        .blocking(move |s| {
            let mut ca = load_ca(s, &id)?;
            if let Some(status) = status {
                ca.status = status;
            }
            if let Some(auto) = auto {
                ca.auto_registration = auto;
            }
            if req.remove_auto_registration {
                ca.registration_config = None;
            } else if let Some(config) = req.registration_config {
                ca.registration_config = Some(config);
            }
            ca.modified_ms = now_ms();
            ca.customer_version += 1;
            ca.generation_id = uuid::Uuid::new_v4().to_string();
            s.store.update_ca_certificate(&ca)?;
            if ca.status == CaCertificateStatus::Inactive {
                for cert in s.store.list_device_certificates()? {
                    if cert.ca_certificate_id.as_deref() == Some(ca.id.as_str()) {
                        s.disconnect_principal(&cert.arn)?;
                    }
                }
            }
            Ok(())
        })
        .await?;
    Ok(json_ok(json!({})))
}

async fn list_ca_certificates(
    State(state): State<ApiState>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Response> {
    let mut cas = state
        .blocking(|s| Ok(s.store.list_ca_certificates()?))
        .await?;
    if !flag(&q, "isAscendingOrder") {
        cas.reverse();
    }
    let items: Vec<Value> = cas
        .iter()
        .map(|c| {
            json!({
                "certificateArn": c.arn, "certificateId": c.id, "status": c.status.as_str(),
                "creationDate": epoch_seconds(c.created_ms),
            })
        })
        .collect();
    let (page, next) = paginate_marker(items, &q, 250)?;
    Ok(json_ok(json!({ "certificates": page, "nextMarker": next })))
}

async fn delete_ca_certificate(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state
        .blocking(move |s| Ok(s.store.delete_ca_certificate(&id)?))
        .await?;
    Ok(json_ok(json!({})))
}
