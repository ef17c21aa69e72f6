//! S3 through the real `aws` CLI: buckets, versioning, ranges, deletes and markers, listings,
//! multipart (`aws s3 cp` above 8 MiB), presigned GETs (expiry honoured) and S3 error codes.

mod common;

use common::{TestServer, firmware, http_get};
use serde_json::Value;

fn md5_etag(server: &TestServer, bucket: &str, key: &str) -> String {
    let head = server.cli(&format!("s3api head-object --bucket {bucket} --key {key}"));
    head["ETag"]
        .as_str()
        .expect("etag")
        .trim_matches('"')
        .to_owned()
}

#[test]
fn objects_versions_ranges_and_listings() {
    let server = TestServer::start();
    let v1 = firmware(10_000, 1);
    let v2 = firmware(12_345, 2);
    std::fs::write(server.scratch("v1.bin"), &v1).expect("v1");
    std::fs::write(server.scratch("v2.bin"), &v2).expect("v2");
    server.cli("s3 mb s3://fwb");
    server.cli_err(
        "BucketAlreadyOwnedByYou",
        "s3api create-bucket --bucket fwb",
    );
    server.cli_err("InvalidBucketName", "s3api create-bucket --bucket Bad_Name");
    assert_eq!(
        server
            .cli("s3api get-bucket-versioning --bucket fwb")
            .get("Status"),
        None
    );
    // Unversioned: version "null", an overwrite replaces it.
    server.cli("s3 cp v1.bin s3://fwb/plain.bin");
    server.cli("s3 cp v2.bin s3://fwb/plain.bin");
    let versions = server.cli("s3api list-object-versions --bucket fwb --prefix plain");
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(versions["Versions"][0]["VersionId"], "null");
    // Versioned: two versions, each readable by id; a delete leaves a marker.
    server
        .cli("s3api put-bucket-versioning --bucket fwb --versioning-configuration Status=Enabled");
    let first = server.cli("s3api put-object --bucket fwb --key app/a.bin --body v1.bin");
    let second = server.cli("s3api put-object --bucket fwb --key app/a.bin --body v2.bin");
    let (id1, id2) = (
        first["VersionId"].as_str().expect("v1 id"),
        second["VersionId"].as_str().expect("v2 id"),
    );
    assert_ne!(id1, id2);
    assert_eq!(md5_etag(&server, "fwb", "app/a.bin"), md5_hex(&v2));
    server.cli(&format!(
        "s3api get-object --bucket fwb --key app/a.bin --version-id {id1} old.bin"
    ));
    assert_eq!(std::fs::read(server.scratch("old.bin")).expect("old"), v1);
    // Range → 206 with the exact bytes.
    let ranged =
        server.cli("s3api get-object --bucket fwb --key app/a.bin --range bytes=100-199 part.bin");
    assert_eq!(ranged["ContentLength"], 100);
    assert_eq!(
        ranged["ContentRange"],
        format!("bytes 100-199/{}", v2.len())
    );
    assert_eq!(
        std::fs::read(server.scratch("part.bin")).expect("part"),
        v2[100..200]
    );
    // Listings.
    server.cli("s3api put-object --bucket fwb --key app/b.bin --body v1.bin");
    let listed = server.cli("s3api list-objects-v2 --bucket fwb --prefix app/");
    let keys: Vec<&str> = listed["Contents"]
        .as_array()
        .expect("contents")
        .iter()
        .filter_map(|o| o["Key"].as_str())
        .collect();
    assert_eq!(keys, ["app/a.bin", "app/b.bin"]);
    let paged = server.cli("s3api list-objects-v2 --bucket fwb --max-items 1 --page-size 1");
    assert_eq!(paged["Contents"].as_array().map(Vec::len), Some(1));
    let rolled = server.cli("s3api list-objects-v2 --bucket fwb --delimiter /");
    assert_eq!(rolled["CommonPrefixes"][0]["Prefix"], "app/");
    let v1 = server.cli("s3api list-objects --bucket fwb --prefix app/ --page-size 1");
    assert_eq!(v1["Contents"].as_array().map(Vec::len), Some(2), "{v1}");
    assert!(
        server
            .cli("s3api get-bucket-location --bucket fwb")
            .get("LocationConstraint")
            .is_none_or(|c| c.is_null())
    );
    let batch = server.cli(
        "s3api delete-objects --bucket fwb --delete Objects=[{Key=app/b.bin},{Key=app/none.bin}]",
    );
    assert_eq!(
        batch["Deleted"].as_array().map(Vec::len),
        Some(2),
        "{batch}"
    );
    server.cli_err("404", "s3api head-object --bucket fwb --key app/b.bin");
    let deleted = server.cli("s3api delete-object --bucket fwb --key app/a.bin");
    assert_eq!(deleted["DeleteMarker"], true);
    server.cli_err(
        "NoSuchKey",
        "s3api get-object --bucket fwb --key app/a.bin out.bin",
    );
    let all = server.cli("s3api list-object-versions --bucket fwb --prefix app/a");
    assert_eq!(all["Versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(all["DeleteMarkers"][0]["IsLatest"], true);
    server.cli(&format!(
        "s3api get-object --bucket fwb --key app/a.bin --version-id {id2} again.bin"
    ));
    assert_eq!(
        std::fs::read(server.scratch("again.bin")).expect("again"),
        v2
    );
    // Bucket errors.
    server.cli_err("NoSuchBucket", "s3api list-objects-v2 --bucket nope");
    server.cli_err("404", "s3api head-bucket --bucket nope");
    server.cli_err("BucketNotEmpty", "s3api delete-bucket --bucket fwb");
    server.cli("s3 mb s3://empty");
    server.cli("s3 rb s3://empty");
    let buckets = server.cli("s3api list-buckets");
    let names: Vec<&str> = buckets["Buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b["Name"].as_str())
        .collect();
    assert_eq!(names, ["fwb"]);
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[test]
fn multipart_upload_and_presigned_urls() {
    let server = TestServer::start();
    let big = firmware(9 * 1024 * 1024 + 123, 9);
    std::fs::write(server.scratch("big.bin"), &big).expect("big");
    server.cli("s3 mb s3://mpu");
    server.cli("s3 cp big.bin s3://mpu/big.bin");
    let etag = md5_etag(&server, "mpu", "big.bin");
    assert!(etag.ends_with("-2"), "multipart ETag expected, got {etag}");
    server.cli("s3 cp s3://mpu/big.bin back.bin");
    assert!(std::fs::read(server.scratch("back.bin")).expect("back") == big);

    // Presigned GET (the CLI's presign), then a changed signature and an expired URL.
    let url = server.cli("s3 presign s3://mpu/big.bin --expires-in 300");
    let url = url.as_str().expect("url").trim().to_owned();
    let (status, _, body) = http_get(&url, &[("Range", "bytes=0-1023")]);
    assert_eq!((status, body.as_slice()), (206, &big[..1024]));
    let tampered = format!("{url}&response-content-type=text%2Fhtml");
    assert_eq!(http_get(&tampered, &[]).0, 403);
    let short: Value = server.cli("s3 presign s3://mpu/big.bin --expires-in 1");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (status, head, _) = http_get(short.as_str().expect("url").trim(), &[]);
    assert_eq!(status, 403, "{head}");
}
