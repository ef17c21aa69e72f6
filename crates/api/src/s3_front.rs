//! What happens to an S3 request around s3s, in the order AWS S3 applies it (AWS-API.md §1):
//!
//! - [`S3Keys`]: the s3s credential lookup; an unknown access key is `InvalidAccessKeyId` 403
//!   (s3s's `SimpleAuth` answers `NotSignedUp`).
//! - [`check_request`] (before s3s): a SigV4 credential scope for another region is refused as S3
//!   does — `AuthorizationHeaderMalformed` (header) or `AuthorizationQueryParametersError`
//!   (presigned), both 400 with the expected `<Region>`; `Host` with the default port is checked
//!   as without it; a `Range` S3 does not serve (several ranges, or not `bytes=`) is ignored and
//!   the whole object answered 200, as S3 does, unless the client signed it.
//! - [`with_request_id`] (after s3s): every answer carries `x-amz-request-id`, and every error
//!   body a `<RequestId>`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::sigv4;

/// Largest S3 error body rewritten to carry a `<RequestId>` (they are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 << 10;

/// The one credential pair S3 requests are signed with.
pub(crate) struct S3Keys {
    access_key_id: String,
    secret: SecretKey,
}

impl S3Keys {
    pub(crate) fn new(access_key_id: &str, secret_access_key: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            secret: secret_access_key.into(),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for S3Keys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key_id {
            Ok(self.secret.clone())
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

/// The refusal of a request s3s must not see, or `None` once the head is ready for s3s.
pub(crate) fn check_request(parts: &mut Parts, region: &str) -> Option<Response> {
    if let Some((scope, presigned)) = sigv4::request_scope(parts)
        && scope.region != region
    {
        let (code, message) = if presigned {
            (
                "AuthorizationQueryParametersError",
                "Error parsing the X-Amz-Credential parameter;",
            )
        } else {
            (
                "AuthorizationHeaderMalformed",
                "The authorization header is malformed;",
            )
        };
        let message = format!(
            "{message} the region '{}' is wrong; expecting '{region}'",
            scope.region
        );
        return Some(error_xml(
            StatusCode::BAD_REQUEST,
            code,
            &message,
            &[("Region", region)],
        ));
    }
    strip_default_port(parts);
    ignore_unservable_range(parts);
    None
}

/// `Host: name:443` (or `:80`) becomes `Host: name`: clients sign the host without the default
/// port (botocore, aws-sigv4, presigned URLs on a port-less `--public-url`), while some send it, so
/// the signature is checked against the host with or without it.
fn strip_default_port(parts: &mut Parts) {
    let Some(host) = parts.headers.get(http::header::HOST) else {
        return;
    };
    let bytes = host.as_bytes();
    let bare = bytes
        .strip_suffix(b":443")
        .or_else(|| bytes.strip_suffix(b":80"));
    if let Some(value) = bare.and_then(|b| HeaderValue::from_bytes(b).ok()) {
        parts.headers.insert(http::header::HOST, value);
    }
}

/// S3 serves one `bytes=` range; any other `Range` (several ranges, another unit, garbage) is
/// ignored and the whole object answered (RFC 9110 §14.2 allows ignoring it). A signed `Range`
/// cannot be dropped without breaking the signature: s3s then refuses it (`InvalidArgument`).
fn ignore_unservable_range(parts: &mut Parts) {
    let Some(range) = parts.headers.get(http::header::RANGE) else {
        return;
    };
    let servable = range
        .to_str()
        .is_ok_and(|r| s3s::dto::Range::parse(r).is_ok());
    let signed = sigv4::request_scope(parts)
        .is_some_and(|(scope, _)| scope.signed_headers.iter().any(|h| h == "range"));
    if !servable && !signed {
        parts.headers.remove(http::header::RANGE);
    }
}

/// An S3 XML error with extra members.
fn error_xml(status: StatusCode, code: &str, message: &str, extra: &[(&str, &str)]) -> Response {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message>",
        escape(message)
    );
    for (name, value) in extra {
        xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    xml.push_str("</Error>");
    (
        status,
        [(http::header::CONTENT_TYPE, "application/xml")],
        xml,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Adds `x-amz-request-id` to `response` and, for an error with an XML body, `<RequestId>`.
pub(crate) async fn with_request_id(response: Response) -> Response {
    let id = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(&id) {
        parts.headers.insert("x-amz-request-id", value);
    }
    let xml_error = parts.status.is_client_error() || parts.status.is_server_error();
    if !xml_error {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match text.rfind("</Error>") {
        Some(end) if !text.contains("<RequestId>") => {
            let with_id = format!("{}<RequestId>{id}</RequestId></Error>", &text[..end]);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Body::from(with_id)
        }
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn the_default_port_is_left_out_of_the_host() {
        for (sent, checked) in [
            ("localhost:443", "localhost"),
            ("h.example:80", "h.example"),
            ("localhost:8443", "localhost:8443"),
            ("[::1]:443", "[::1]"),
            ("localhost", "localhost"),
        ] {
            let mut p = head("/b/k", &[("host", sent)]);
            assert!(check_request(&mut p, "us-east-1").is_none());
            assert_eq!(p.headers["host"], checked, "{sent}");
        }
    }

    #[test]
    fn only_ranges_s3_serves_are_kept() {
        for (range, kept) in [
            ("bytes=0-99", true),
            ("bytes=-5", true),
            ("bytes=10-", true),
            ("bytes=0-1,5-6", false),
            ("items=0-1", false),
        ] {
            let mut p = head("/b/k", &[("range", range)]);
            assert!(check_request(&mut p, "us-east-1").is_none());
            assert_eq!(p.headers.contains_key("range"), kept, "{range}");
        }
        let signed = "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/s3/aws4_request, \
                      SignedHeaders=host;range;x-amz-date, Signature=00";
        let mut p = head(
            "/b/k",
            &[("range", "bytes=0-1,5-6"), ("authorization", signed)],
        );
        assert!(check_request(&mut p, "us-east-1").is_none());
        assert!(p.headers.contains_key("range"), "a signed Range stays");
    }

    #[tokio::test]
    async fn a_scope_in_another_region_is_refused_with_the_expected_region() {
        let auth = "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/s3/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=00";
        let mut p = head("/b/k", &[("authorization", auth)]);
        let refused = check_request(&mut p, "us-east-1").expect("refused");
        let refused = with_request_id(refused).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.headers().contains_key("x-amz-request-id"));
        let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
            .await
            .expect("body");
        let body = String::from_utf8_lossy(&body);
        for part in [
            "<Code>AuthorizationHeaderMalformed</Code>",
            "the region 'eu-west-1' is wrong; expecting 'us-east-1'",
            "<Region>us-east-1</Region>",
            "<RequestId>",
        ] {
            assert!(body.contains(part), "{part} missing: {body}");
        }
        let mut presigned = head(
            "/b/k?X-Amz-Credential=AK%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=0",
            &[],
        );
        let refused = check_request(&mut presigned, "us-east-1").expect("refused");
        let body = axum::body::to_bytes(refused.into_body(), 1 << 16)
            .await
            .expect("body");
        assert!(
            String::from_utf8_lossy(&body).contains("AuthorizationQueryParametersError"),
            "{body:?}"
        );
        let mut same_region = head(
            "/b/k",
            &[("authorization", &auth.replace("eu-west-1", "us-east-1"))],
        );
        assert!(check_request(&mut same_region, "us-east-1").is_none());
    }
}
