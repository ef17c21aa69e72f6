//! Refusals as AWS answers them (issue 14), with boto3 (`tests/scripts/auth_limits.py`): a SigV4
//! scope for another region, an unknown S3 access key, request ids on S3 errors, single and
//! multiple ranges, and the one control-plane body limit.

mod common;

use serde_json::Value;

#[test]
fn refusals_carry_the_aws_codes() {
    let server = common::TestServer::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/auth_limits.py");
    let out: Value = serde_json::from_str(server.python(&script).trim()).expect("json outcomes");

    let s3_region = &out["s3_wrong_region"];
    assert_eq!(s3_region["status"], 400, "{out}");
    for part in [
        "<Code>AuthorizationHeaderMalformed</Code>",
        "the region 'eu-west-1' is wrong; expecting 'us-east-1'",
        "<Region>us-east-1</Region>",
    ] {
        assert!(
            s3_region["body"].as_str().is_some_and(|b| b.contains(part)),
            "{part}: {out}"
        );
    }
    assert_eq!(out["s3_wrong_region_redirected"], true, "{out}");
    assert_eq!(
        out["iot_wrong_region"]["code"], "InvalidSignatureException",
        "{out}"
    );
    let presigned = &out["presigned_wrong_region"];
    assert_eq!(presigned["status"], 400, "{out}");
    assert!(
        presigned["body"]
            .as_str()
            .is_some_and(|b| b.contains("AuthorizationQueryParametersError")),
        "{out}"
    );

    assert_eq!(out["s3_unknown_key"]["code"], "InvalidAccessKeyId", "{out}");
    assert_eq!(out["s3_unknown_key"]["status"], 403, "{out}");
    for error in [
        "s3_unknown_key",
        "s3_missing_key_request_id",
        "s3_wrong_region",
    ] {
        assert!(
            out[error]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{error} has no request id: {out}"
        );
    }

    assert_eq!(out["range_one"]["status"], 206, "{out}");
    assert_eq!(
        out["range_one"]["content_range"], "bytes 10-19/10240",
        "{out}"
    );
    assert_eq!(out["range_one"]["ok"], true, "{out}");
    assert_eq!(
        (&out["range_several"]["status"], &out["range_several"]["ok"]),
        (&Value::from(200), &Value::from(true)),
        "{out}"
    );
    assert_eq!(out["range_beyond"]["status"], 416, "{out}");
    assert!(
        out["range_beyond"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("InvalidRange")),
        "{out}"
    );

    // 3 MiB is within the one limit: the handler serves it (axum's plain-text 413 is gone).
    assert!(out["iot_3mib"].is_null(), "{out}");
    assert_eq!(out["iot_9mib"]["code"], "RequestEntityTooLarge", "{out}");
    assert_eq!(out["iot_9mib"]["status"], 413, "{out}");
    assert_eq!(out["unsigned_9mib"]["status"], 413, "{out}");
    assert_eq!(
        out["unsigned_9mib"]["type"], "RequestEntityTooLarge",
        "{out}"
    );
}
