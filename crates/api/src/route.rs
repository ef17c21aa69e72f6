//! Dispatch by the service in the SigV4 credential scope (AWS-API.md §1, §3).
//!
//! `s3` (and SigV2 or unsigned requests to non-control-plane paths) are handed to the s3s
//! service, which verifies header and presigned signatures itself and answers in S3 XML. Every
//! other service gets its body buffered, its signature verified by [`crate::sigv4::verify`] and
//! is then served by that service's axum router. A request is never served before it is verified.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use s3s::service::S3Service;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::sigv4::{self, SigningKey};
use crate::{
    ApiState, acm, iot_ca, iot_certificates, iot_policies, iot_principals, iot_streams, iot_things,
    jobs, jobs_data, ota, s3, s3_front, signer,
};

/// Largest control-plane (JSON) request body accepted.
const MAX_JSON_BODY: usize = 8 << 20;

/// The services served on the one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    S3,
    Iot,
    Signer,
    Acm,
    JobsData,
}

impl Service {
    fn from_scope(name: &str) -> Option<Self> {
        Some(match name {
            "s3" => Self::S3,
            "iot" => Self::Iot,
            "signer" => Self::Signer,
            "acm" => Self::Acm,
            "iot-jobs-data" => Self::JobsData,
            _ => return None,
        })
    }

    /// Guess for requests without a SigV4 scope (unsigned, or SigV2): control-plane paths are
    /// refused by their own protocol, anything else is S3 (plain or V2-presigned downloads).
    fn fallback(parts: &Parts) -> Self {
        if parts
            .headers
            .get("x-amz-target")
            .is_some_and(|t| t.as_bytes().starts_with(b"CertificateManager."))
        {
            return Self::Acm;
        }
        let sig_v2_query = parts
            .uri
            .query()
            .is_some_and(|q| q.contains("AWSAccessKeyId="));
        let sig_v2_header = parts
            .headers
            .get("authorization")
            .is_some_and(|a| a.as_bytes().starts_with(b"AWS "));
        if sig_v2_query || sig_v2_header {
            return Self::S3;
        }
        let first = parts
            .uri
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first {
            "signing-profiles" | "signing-jobs" | "signing-platforms" => Self::Signer,
            "streams" | "otaUpdates" | "jobs" | "things" | "thing-groups" => Self::Iot,
            _ => Self::S3,
        }
    }
}

/// Everything the dispatcher needs; built once.
struct Dispatcher {
    s3: S3Service,
    iot: axum::Router,
    signer: axum::Router,
    acm: axum::Router,
    jobs_data: axum::Router,
    key: SigningKey,
}

/// The single-port router.
pub(crate) fn router(state: ApiState) -> axum::Router {
    let key = SigningKey {
        access_key_id: state.config.access_key_id.clone(),
        secret_access_key: state.config.secret_access_key.clone(),
        region: state.config.region.clone(),
    };
    let finish = |routes: axum::Router<ApiState>| {
        routes
            .fallback(unknown_operation)
            .method_not_allowed_fallback(unknown_operation)
            // The body is already buffered within MAX_JSON_BODY: no second, plain-text limit.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state.clone())
    };
    let dispatcher = Dispatcher {
        s3: s3::service(&state),
        iot: finish(
            iot_things::routes()
                .merge(iot_streams::routes())
                .merge(ota::routes())
                .merge(jobs::routes())
                .merge(iot_certificates::routes())
                .merge(iot_ca::routes())
                .merge(iot_policies::routes())
                .merge(iot_principals::routes()),
        ),
        signer: finish(signer::routes()),
        acm: finish(acm::routes()),
        jobs_data: finish(jobs_data::routes()),
        key,
    };
    axum::Router::new()
        .fallback(dispatch)
        .with_state(Arc::new(dispatcher))
}

async fn unknown_operation() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        "Unknown operation",
    )
}

async fn dispatch(State(d): State<Arc<Dispatcher>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let service = match sigv4::scope_service(&parts) {
        Some(name) => match Service::from_scope(&name) {
            Some(service) => service,
            None => {
                let msg = format!("Service '{name}' in the credential scope is not served here");
                return ApiError::new(StatusCode::BAD_REQUEST, "UnrecognizedServiceException", msg)
                    .into_response();
            }
        },
        None => Service::fallback(&parts),
    };
    let router = match service {
        Service::S3 => {
            let mut parts = parts;
            let response = match s3_front::check_request(&mut parts, &d.key.region) {
                Some(refused) => refused,
                None => call_s3(&d.s3, Request::from_parts(parts, body)).await,
            };
            return s3_front::with_request_id(response).await;
        }
        Service::Iot => &d.iot,
        Service::Signer => &d.signer,
        Service::Acm => &d.acm,
        Service::JobsData => &d.jobs_data,
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_JSON_BODY as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, MAX_JSON_BODY).await {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => return too_large(),
        Err(e) => {
            let msg = format!("The request body was not received in full: {e}");
            return ApiError::new(StatusCode::REQUEST_TIMEOUT, "RequestTimeoutException", msg)
                .into_response();
        }
    };
    if let Err(e) = sigv4::verify(&parts, &bytes, &d.key, SystemTime::now()) {
        tracing::debug!(error = %e, path = %parts.uri.path(), "refused request");
        return ApiError::from(e).into_response();
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    match router.clone().oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The one answer to a control-plane body over [`MAX_JSON_BODY`], declared or streamed.
fn too_large() -> Response {
    let msg = format!("Request body is larger than the {MAX_JSON_BODY} bytes allowed");
    let mut response =
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", msg).into_response();
    // The rest of the body is not read: the connection cannot carry another request.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// Whether a body error is `to_bytes` hitting its limit (rather than a broken or slow body).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

async fn call_s3(s3: &S3Service, req: Request) -> Response {
    let req = req.map(s3s::Body::http_body_unsync);
    match s3.call(req).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::error!(error = ?e, "s3 service failure");
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>\
                       <Message>We encountered an internal error. Please try again.</Message></Error>";
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(http::header::CONTENT_TYPE, "application/xml")],
                xml,
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, target: Option<&str>) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(t) = target {
            b = b.header("x-amz-target", t);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn scope_names_map_to_services() {
        assert_eq!(
            Service::from_scope("iot-jobs-data"),
            Some(Service::JobsData)
        );
        assert_eq!(Service::from_scope("signer"), Some(Service::Signer));
        assert_eq!(Service::from_scope("dynamodb"), None);
    }

    #[test]
    fn unsigned_requests_fall_back_by_path() {
        assert_eq!(
            Service::fallback(&parts("GET", "/streams", None)),
            Service::Iot
        );
        assert_eq!(
            Service::fallback(&parts("GET", "/signing-jobs/x", None)),
            Service::Signer
        );
        assert_eq!(
            Service::fallback(&parts(
                "POST",
                "/",
                Some("CertificateManager.ListCertificates")
            )),
            Service::Acm
        );
        assert_eq!(
            Service::fallback(&parts("GET", "/firmware/app.bin?Signature=x", None)),
            Service::S3
        );
        assert_eq!(
            Service::fallback(&parts(
                "GET",
                "/streams/k?AWSAccessKeyId=A&Signature=x",
                None
            )),
            Service::S3
        );
    }
}
