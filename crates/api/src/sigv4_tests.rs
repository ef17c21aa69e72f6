//! Unit tests for `sigv4`: vectors produced by botocore's `SigV4Auth` (botocore 1.43, clock
//! fixed at 2026-11-29T12:00:00Z, credentials `AKIDEXAMPLE` / the AWS documentation secret).

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const POST_SIG: &str = "b751a2818210431ff7ff82114dc20dffc4ba0dc55a6687a4c4f495674c84dc03";
const GET_SIG: &str = "91e12c31cbdbbfcf7730abdbc4b4200d3c574cf79a8a1b8b45d5f7259d0ac24b";
const BODY: &[u8] = br#"{"files": [{"fileId": 1}]}"#;

fn key() -> SigningKey {
    SigningKey {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SECRET.into(),
        region: "us-east-1".into(),
    }
}

fn signed_at() -> SystemTime {
    parse_amz_date("20261129T120000Z").expect("valid date")
}

fn post_parts(signature: &str, akid: &str) -> Parts {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={akid}/20261129/us-east-1/iot/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
    );
    let (parts, ()) = http::Request::post("/streams/my%3Astream?a=b%20c&x=1")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("x-amz-date", "20261129T120000Z")
        .header("authorization", auth)
        .body(())
        .expect("request")
        .into_parts();
    parts
}

fn get_parts() -> Parts {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/signer/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={GET_SIG}"
    );
    let (parts, ()) = http::Request::get("/signing-platforms")
        .header("host", "127.0.0.1:8080")
        .header("x-amz-date", "20261129T120000Z")
        .header("user-agent", "aws-cli/1.45 (not signed)")
        .header("authorization", auth)
        .body(())
        .expect("request")
        .into_parts();
    parts
}

#[test]
fn botocore_post_with_double_encoded_path_and_query_verifies() {
    let auth = verify(
        &post_parts(POST_SIG, "AKIDEXAMPLE"),
        BODY,
        &key(),
        signed_at(),
    )
    .expect("valid signature");
    assert_eq!(auth.service, "iot");
    assert_eq!(auth.region, "us-east-1");
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
}

#[test]
fn botocore_get_verifies_and_unsigned_headers_are_ignored() {
    let auth = verify(
        &get_parts(),
        b"",
        &key(),
        signed_at() + Duration::from_secs(600),
    )
    .expect("valid");
    assert_eq!(auth.service, "signer");
}

#[test]
fn changed_body_is_refused() {
    let body = br#"{"files": [{"fileId": 2}]}"#;
    assert_eq!(
        verify(
            &post_parts(POST_SIG, "AKIDEXAMPLE"),
            body,
            &key(),
            signed_at()
        ),
        Err(SigError::Mismatch)
    );
}

#[test]
fn changed_path_is_refused() {
    let mut parts = get_parts();
    parts.uri = "/signing-profiles".parse().expect("uri");
    assert_eq!(
        verify(&parts, b"", &key(), signed_at()),
        Err(SigError::Mismatch)
    );
}

#[test]
fn wrong_secret_is_refused() {
    let wrong = SigningKey {
        secret_access_key: "not-the-secret".into(),
        ..key()
    };
    assert_eq!(
        verify(
            &post_parts(POST_SIG, "AKIDEXAMPLE"),
            BODY,
            &wrong,
            signed_at()
        ),
        Err(SigError::Mismatch)
    );
}

#[test]
fn flipped_signature_digit_is_refused() {
    let mut sig = POST_SIG.to_owned();
    sig.replace_range(0..1, "c");
    assert_eq!(
        verify(&post_parts(&sig, "AKIDEXAMPLE"), BODY, &key(), signed_at()),
        Err(SigError::Mismatch)
    );
}

#[test]
fn unknown_access_key_is_refused() {
    assert_eq!(
        verify(
            &post_parts(POST_SIG, "AKIDOTHER"),
            BODY,
            &key(),
            signed_at()
        ),
        Err(SigError::UnknownAccessKey)
    );
}

#[test]
fn stale_and_future_dates_are_refused() {
    let parts = post_parts(POST_SIG, "AKIDEXAMPLE");
    let late = signed_at() + MAX_CLOCK_SKEW + Duration::from_secs(1);
    let early = signed_at() - MAX_CLOCK_SKEW - Duration::from_secs(1);
    assert!(matches!(
        verify(&parts, BODY, &key(), late),
        Err(SigError::Expired(_))
    ));
    assert!(matches!(
        verify(&parts, BODY, &key(), early),
        Err(SigError::Expired(_))
    ));
}

#[test]
fn missing_and_malformed_headers_are_refused() {
    let mut parts = get_parts();
    parts.headers.remove("authorization");
    assert_eq!(
        verify(&parts, b"", &key(), signed_at()),
        Err(SigError::Missing)
    );
    parts.headers.insert(
        "authorization",
        http::HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
    );
    assert!(matches!(
        verify(&parts, b"", &key(), signed_at()),
        Err(SigError::Malformed(_))
    ));
    let mut parts = get_parts();
    parts.headers.remove("x-amz-date");
    assert!(matches!(
        verify(&parts, b"", &key(), signed_at()),
        Err(SigError::Malformed(_))
    ));
}

#[test]
fn scope_service_reads_header_then_presigned_query() {
    assert_eq!(scope_service(&get_parts()).as_deref(), Some("signer"));
    let (parts, ()) = http::Request::get(
        "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261129%2Fus-east-1%2Fs3%2Faws4_request",
    )
    .body(())
    .expect("request")
    .into_parts();
    assert_eq!(scope_service(&parts).as_deref(), Some("s3"));
    let (parts, ()) = http::Request::get("/b/k")
        .body(())
        .expect("request")
        .into_parts();
    assert_eq!(scope_service(&parts), None);
}

#[test]
fn amz_date_parses_to_epoch_seconds() {
    let t = parse_amz_date("20261129T120000Z").expect("date");
    assert_eq!(
        t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs(),
        1_795_953_600
    );
    assert!(parse_amz_date("20261329T120000Z").is_err());
    assert!(parse_amz_date("2026-11-29T12:00:00Z").is_err());
}

#[test]
fn a_scope_in_another_region_is_refused() {
    let other = SigningKey {
        region: "eu-west-1".into(),
        ..key()
    };
    assert_eq!(
        verify(
            &post_parts(POST_SIG, "AKIDEXAMPLE"),
            BODY,
            &other,
            signed_at()
        ),
        Err(SigError::WrongRegion("us-east-1".into()))
    );
}
