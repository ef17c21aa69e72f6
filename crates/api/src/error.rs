//! The one place where control-plane failures become rest-json / json-1.1 wire errors.
//!
//! Every handler returns `Result<_, ApiError>`. The response carries the modelled HTTP status,
//! `x-amzn-ErrorType: <Code>`, `x-amzn-RequestId` and the body `{"message": ..., "__type": ...}`
//! (AWS-API.md §4.1), which botocore turns into `client.exceptions.<Code>`. Client mistakes are
//! always 4xx with a non-throttling code, so the CLI never retries them.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::sigv4::SigError;

/// A modelled AWS error: HTTP status, error code (the shape name) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status sent (always ≥ 400).
    pub status: StatusCode,
    /// The modelled error shape name, e.g. `ResourceNotFoundException`.
    pub code: &'static str,
    /// Human readable message.
    pub message: String,
    /// Extra modelled members (e.g. `resourceId`, `resourceArn`).
    pub fields: Option<Value>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// Any error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }
    /// iot / iot-jobs-data bad input: `InvalidRequestException` 400.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }
    /// signer / acm bad input: `ValidationException` 400.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }
    /// `ResourceNotFoundException` 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }
    /// `ResourceAlreadyExistsException` 409 with `resourceId` / `resourceArn`.
    pub fn already_exists(message: impl Into<String>, id: &str, arn: &str) -> Self {
        Self {
            fields: Some(json!({ "resourceId": id, "resourceArn": arn })),
            ..Self::new(
                StatusCode::CONFLICT,
                "ResourceAlreadyExistsException",
                message,
            )
        }
    }
    /// A 409 conflict with the given modelled code (`DeleteConflictException`,
    /// `InvalidStateTransitionException`, `VersionConflictException`, `ConflictException`).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// A genuine server-side failure (disk, database): `InternalFailureException` 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            message,
        )
    }
}

impl From<SigError> for ApiError {
    fn from(e: SigError) -> Self {
        let code = match &e {
            SigError::Missing => "MissingAuthenticationTokenException",
            SigError::UnknownAccessKey => "UnrecognizedClientException",
            SigError::Malformed(_) => "IncompleteSignatureException",
            SigError::Expired(_) | SigError::Mismatch | SigError::WrongRegion(_) => {
                "InvalidSignatureException"
            }
        };
        Self::new(StatusCode::FORBIDDEN, code, e.to_string())
    }
}

/// The rest-json code of every store error kind: the one place they are chosen for iot, signer,
/// acm and iot-jobs-data.
impl From<otastream_store::StoreError> for ApiError {
    fn from(e: otastream_store::StoreError) -> Self {
        use otastream_store::StoreError as E;
        let message = e.to_string();
        match e {
            E::NotFound { .. } => Self::not_found(message),
            E::AlreadyExists { .. } => Self::new(
                StatusCode::CONFLICT,
                "ResourceAlreadyExistsException",
                message,
            ),
            E::Conflict(conflict) => Self::from_conflict(&conflict, message),
            E::Invalid(_) => Self::invalid(message),
            E::Unavailable { .. } => {
                tracing::warn!(error = %message, "storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailableException",
                    message,
                )
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::internal(message)
            }
        }
    }
}

impl ApiError {
    /// The code of a store conflict: certificate states are `CertificateStateException` (406),
    /// a sixth policy version `VersionsLimitExceededException`, the rest `DeleteConflictException`.
    fn from_conflict(conflict: &otastream_store::Conflict, message: String) -> Self {
        use otastream_store::Conflict as C;
        match conflict {
            C::CertificateActive(_) | C::CaCertificateActive(_) | C::CaCertificateInUse { .. } => {
                Self::certificate_state(message)
            }
            C::PolicyVersionsLimit { .. } => {
                Self::conflict("VersionsLimitExceededException", message)
            }
            _ => Self::conflict("DeleteConflictException", message),
        }
    }

    /// `CertificateStateException` 406: the certificate's status forbids the operation.
    pub fn certificate_state(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "CertificateStateException",
            message,
        )
    }

    /// `CertificateValidationException` 400: malformed PEM, key mismatch, wrong issuer, expired.
    pub fn certificate_validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "CertificateValidationException",
            message,
        )
    }
}

/// A refused certificate or key: `RegistrationCodeValidationException` for a verification
/// certificate without the registration code, `CertificateValidationException` otherwise.
impl From<otastream_pki::CertError> for ApiError {
    fn from(e: otastream_pki::CertError) -> Self {
        let message = e.to_string();
        match e {
            otastream_pki::CertError::RegistrationCodeMismatch { .. } => Self::new(
                StatusCode::BAD_REQUEST,
                "RegistrationCodeValidationException",
                message,
            ),
            _ => Self::certificate_validation(message),
        }
    }
}

/// A policy document AWS refuses: `MalformedPolicyException` 400.
impl From<otastream_iot_policy::MalformedPolicy> for ApiError {
    fn from(e: otastream_iot_policy::MalformedPolicy) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedPolicyException",
            format!("The policy document is malformed: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message, "__type": self.code });
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.fields, &mut body) {
            map.extend(extra);
        }
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
            headers.insert("x-amzn-RequestId", id);
        }
        response
    }
}

/// Parses a JSON request body (empty means `{}`); a malformed body is `InvalidRequestException`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))
}

/// A JSON success response (200). `null` members are dropped: AWS omits absent members.
pub fn json_ok(mut value: Value) -> Response {
    strip_nulls(&mut value);
    let mut response = (StatusCode::OK, value.to_string()).into_response();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json body")
    }

    #[tokio::test]
    async fn error_carries_header_type_and_message() {
        let response = ApiError::not_found("stream s1 does not exist").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["x-amzn-ErrorType"],
            "ResourceNotFoundException"
        );
        assert!(response.headers().contains_key("x-amzn-RequestId"));
        let body = body_json(response).await;
        assert_eq!(body["message"], "stream s1 does not exist");
        assert_eq!(body["__type"], "ResourceNotFoundException");
    }

    #[tokio::test]
    async fn already_exists_carries_resource_members() {
        let response = ApiError::already_exists("exists", "u1", "arn:x").into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_json(response).await;
        assert_eq!(body["resourceId"], "u1");
        assert_eq!(body["resourceArn"], "arn:x");
    }

    #[test]
    fn signature_errors_are_403_and_never_retryable() {
        for e in [
            SigError::Missing,
            SigError::Mismatch,
            SigError::UnknownAccessKey,
            SigError::Malformed("x".into()),
        ] {
            let api = ApiError::from(e);
            assert_eq!(api.status, StatusCode::FORBIDDEN);
            assert!(!api.code.contains("Throttl"));
        }
    }

    #[test]
    fn store_errors_map_to_rest_json_codes() {
        use otastream_store::{Conflict, Invalid, Kind, StoreError};
        let cases = [
            (
                StoreError::not_found(Kind::Thing, "t"),
                404,
                "ResourceNotFoundException",
            ),
            (
                StoreError::already_exists(Kind::Stream, "s"),
                409,
                "ResourceAlreadyExistsException",
            ),
            (
                StoreError::from(Invalid::NoParts),
                400,
                "InvalidRequestException",
            ),
            (
                StoreError::Unavailable {
                    what: "PostgreSQL",
                    source: "refused".into(),
                },
                503,
                "ServiceUnavailableException",
            ),
            (StoreError::db("broken"), 500, "InternalFailureException"),
            (
                StoreError::from(Conflict::CertificateActive("c".into())),
                406,
                "CertificateStateException",
            ),
            (
                StoreError::from(Conflict::CertificateInUse {
                    id: "c".into(),
                    things: 1,
                    policies: 0,
                }),
                409,
                "DeleteConflictException",
            ),
            (
                StoreError::from(Conflict::PolicyVersionsLimit {
                    name: "p".into(),
                    max: 5,
                }),
                409,
                "VersionsLimitExceededException",
            ),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
    }

    #[test]
    fn parse_json_maps_bad_input_to_invalid_request() {
        let err = parse_json::<Value>(b"{not json").expect_err("bad json");
        assert_eq!(err.code, "InvalidRequestException");
        assert_eq!(parse_json::<Value>(b"").expect("empty is {}"), json!({}));
    }
}
