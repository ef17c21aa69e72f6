//! The router in process (tower `oneshot`, no socket): the same path goes to different services
//! by credential scope, and unsigned / wrongly signed / body-tampered requests are refused in
//! the protocol of the service they name. Requests are signed here with `aws-sigv4`.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use axum::body::Body;
use http::{Request, Response, StatusCode};
use otastream_api::{ApiConfig, ApiState};
use otastream_store::Store;
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:8080";

fn state(dir: &tempfile::TempDir) -> ApiState {
    ApiState::new(
        std::sync::Arc::new(Store::open(dir.path()).expect("store")),
        &dir.path().join(otastream_store::PKI_DIR),
        ApiConfig::default(),
    )
    .expect("state")
}

/// A request signed for `service` with `secret` (header form, as botocore sends it).
fn signed(method: &str, path: &str, service: &str, secret: &str, body: &[u8]) -> Request<Body> {
    let config = ApiConfig::default();
    let identity: Identity =
        Credentials::new(&config.access_key_id, secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let uri = format!("http://{HOST}{path}");
    let headers = [("host", HOST), ("content-type", "application/json")];
    let signable =
        SignableRequest::new(method, &uri, headers.into_iter(), SignableBody::Bytes(body))
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request");
    instructions.apply_to_request_http1x(&mut request);
    request
}

async fn call(state: &ApiState, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response: Response<Body> = otastream_api::router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("body");
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn one_path_three_services() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&dir);
    let secret = ApiConfig::default().secret_access_key;
    // iot ListStreams.
    let (status, _, body) = call(&state, signed("GET", "/streams", "iot", &secret, b"")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"streams":[]}"#)
    );
    // S3 ListObjects on a bucket named "streams": S3's XML error.
    let (status, _, body) = call(&state, signed("GET", "/streams", "s3", &secret, b"")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchBucket</Code>"), "{body}");
    // signer on its own path; an iot path under the signer scope is an unknown operation.
    let (status, _, body) = call(
        &state,
        signed("GET", "/signing-platforms", "signer", &secret, b""),
    )
    .await;
    assert!(
        status == StatusCode::OK && body.contains("AmazonFreeRTOS-Default"),
        "{body}"
    );
    let (status, headers, _) =
        call(&state, signed("GET", "/streams", "signer", &secret, b"")).await;
    assert_eq!(
        (status, &headers["x-amzn-ErrorType"]),
        (
            StatusCode::NOT_FOUND,
            &"UnknownOperationException"
                .parse::<http::HeaderValue>()
                .expect("hv")
        )
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_are_unknown_operations() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&dir);
    let secret = ApiConfig::default().secret_access_key;
    for (method, path, service) in [
        ("DELETE", "/signing-platforms", "signer"),
        ("GET", "/no-such-thing", "iot"),
    ] {
        let (status, headers, body) =
            call(&state, signed(method, path, service, &secret, b"")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(headers["x-amzn-ErrorType"], "UnknownOperationException");
    }
}

#[tokio::test]
async fn refused_requests_use_the_error_shape_and_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let state = state(&dir);
    let secret = ApiConfig::default().secret_access_key;
    let body = br#"{"files":[{"fileId":1,"s3Location":{"bucket":"b","key":"k"}}],"roleArn":"arn:aws:iam::123456789012:role/r"}"#;

    let cases = [
        (
            signed("POST", "/streams/s1", "iot", "wrong-secret", body),
            "InvalidSignatureException",
        ),
        (
            signed("POST", "/streams/s1", "dynamodb", &secret, body),
            "UnrecognizedServiceException",
        ),
        (
            Request::post("/streams/s1")
                .header("host", HOST)
                .body(Body::from(body.to_vec()))
                .expect("request"),
            "MissingAuthenticationTokenException",
        ),
    ];
    for (request, code) in cases {
        let (status, headers, text) = call(&state, request).await;
        assert!(status.is_client_error(), "{code}: {status}");
        assert_eq!(headers["x-amzn-ErrorType"], code, "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json error body");
        assert!(
            json["message"].is_string() && json["__type"] == code,
            "{text}"
        );
    }
    // A signed request whose body was changed in transit.
    let mut tampered = signed("POST", "/streams/s1", "iot", &secret, body);
    *tampered.body_mut() = Body::from(
        body.iter()
            .map(|&b| if b == b'1' { b'2' } else { b })
            .collect::<Vec<u8>>(),
    );
    let (status, headers, _) = call(&state, tampered).await;
    assert_eq!(
        (status, headers["x-amzn-ErrorType"].to_str().ok()),
        (StatusCode::FORBIDDEN, Some("InvalidSignatureException"))
    );
    // Nothing was created.
    let (_, _, list) = call(&state, signed("GET", "/streams", "iot", &secret, b"")).await;
    assert_eq!(list, r#"{"streams":[]}"#);
    // The same body, correctly signed, reaches the handler (and fails on the missing object there).
    let (status, headers, text) =
        call(&state, signed("POST", "/streams/s1", "iot", &secret, body)).await;
    assert_eq!(
        (status, headers["x-amzn-ErrorType"].to_str().ok()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequestException")),
        "{text}"
    );
}
