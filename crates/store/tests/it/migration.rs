//! A data directory written by a build before the typed records (schema version 1, every
//! control-plane record an untyped JSON row in `resources`) opens with all its data converted.

use otastream_store::{
    CertificateRepo, JobRepo, OtaRepo, OtaUpdateStatus, ProfileStatus, SignerRepo, SigningStatus,
    Store, ThingRepo,
};
use serde_json::json;

/// The schema of version 1, as that build created it.
const SCHEMA_V1: &str = r#"

CREATE TABLE resources (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    parent  TEXT,
    body    TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX resources_by_parent ON resources (kind, parent, seq);

CREATE TABLE buckets (
    name        TEXT PRIMARY KEY,
    created_ms  INTEGER NOT NULL,
    versioning  TEXT NOT NULL
);

CREATE TABLE versions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket          TEXT NOT NULL REFERENCES buckets (name),
    key             TEXT NOT NULL,
    version_id      TEXT NOT NULL,
    delete_marker   INTEGER NOT NULL,
    file            TEXT,
    etag            TEXT NOT NULL,
    size            INTEGER NOT NULL,
    modified_ms     INTEGER NOT NULL,
    content_type    TEXT,
    user_metadata   TEXT NOT NULL,
    UNIQUE (bucket, key, version_id)
);
CREATE INDEX versions_by_key ON versions (bucket, key, seq);

CREATE TABLE uploads (
    id              TEXT PRIMARY KEY,
    bucket          TEXT NOT NULL REFERENCES buckets (name),
    key             TEXT NOT NULL,
    content_type    TEXT,
    user_metadata   TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);

CREATE TABLE parts (
    upload_id   TEXT NOT NULL REFERENCES uploads (id),
    part_number INTEGER NOT NULL,
    file        TEXT NOT NULL,
    etag        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

CREATE TABLE streams (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    version     INTEGER NOT NULL,
    description TEXT,
    role_arn    TEXT,
    files       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
"#;

fn old_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = rusqlite::Connection::open(dir.path().join("meta.sqlite3")).expect("db");
    conn.execute_batch(SCHEMA_V1).expect("v1 schema");
    conn.pragma_update(None, "user_version", 1)
        .expect("version");
    let rows = [
        (
            "thing",
            "t1",
            None,
            json!({"thingName": "t1", "thingArn": "arn:aws:iot:us-east-1:1:thing/t1", "thingId": "id1", "thingTypeName": null, "attributes": {"model": "x"}, "version": 1}),
        ),
        (
            "thing",
            "t2",
            None,
            json!({"thingName": "t2", "thingArn": "arn:aws:iot:us-east-1:1:thing/t2", "thingId": "id2", "attributes": {}, "version": 1}),
        ),
        (
            "thing-group",
            "g",
            None,
            json!({"thingGroupName": "g", "thingGroupArn": "arn:g", "thingGroupId": "gid", "version": 1, "thingGroupProperties": {}, "thingGroupMetadata": {"parentGroupName": null, "creationDate": 1_700_000_000.5}}),
        ),
        (
            "thing-group-member",
            "g/t2",
            Some("g"),
            json!({"thingName": "t2", "thingGroupName": "g"}),
        ),
        (
            "job",
            "AFR_OTA-u1",
            None,
            json!({"jobArn": "arn:j", "jobId": "AFR_OTA-u1", "targets": ["arn:g"], "document": "{}", "status": "IN_PROGRESS", "createdAt": 1, "lastUpdatedAt": 2}),
        ),
        (
            "job-execution",
            "AFR_OTA-u1/t2",
            Some("AFR_OTA-u1"),
            json!({"jobId": "AFR_OTA-u1", "thingName": "t2", "status": "QUEUED", "queuedAt": 1, "lastUpdatedAt": 1, "versionNumber": 1, "executionNumber": 1}),
        ),
        (
            "ota-update",
            "u1",
            None,
            json!({"otaUpdateId": "u1", "otaUpdateArn": "arn:u1", "creationDate": 1_700_000_000.25, "lastModifiedDate": 1_700_000_001.0, "description": null, "targets": ["arn:g"], "protocols": ["MQTT"], "awsJobExecutionsRolloutConfig": null, "awsJobPresignedUrlConfig": {"expiresInSec": 1800}, "targetSelection": "SNAPSHOT", "otaUpdateFiles": [{"fileName": "app.bin"}], "otaUpdateStatus": "CREATE_COMPLETE", "additionalParameters": null, "_roleArn": "arn:role", "_abortConfig": {"abortCriteriaList": []}, "_timeoutConfig": null, "awsIotJobId": "AFR_OTA-u1", "awsIotJobArn": "arn:j", "_createdStream": "AFR_OTA-s", "_streams": ["AFR_OTA-s"]}),
        ),
        (
            "signer-profile",
            "p1",
            None,
            json!({"profileName": "p1", "profileVersion": "v", "profileVersionArn": "arn:p/v", "arn": "arn:p", "signingMaterial": {"certificateArn": "arn:c"}, "platformId": "AmazonFreeRTOS-Default", "platformDisplayName": "d", "signingParameters": {"certname": "c.pem"}, "status": "Canceled", "signatureValidityPeriod": {"value": 135, "type": "MONTHS"}}),
        ),
        (
            "signer-job",
            "sj",
            None,
            json!({"jobId": "sj", "source": {"s3": {"bucketName": "fw", "key": "app.bin", "version": "null"}}, "signingMaterial": {"certificateArn": "arn:c"}, "platformId": "AmazonFreeRTOS-Default", "platformDisplayName": "d", "profileName": "p1", "profileVersion": "v", "signingParameters": {}, "createdAt": 1.5, "status": "Succeeded", "jobOwner": "1", "jobInvoker": "1", "requestedBy": "arn:aws:iam::1:root", "_destination": {"bucketName": "fw", "prefix": "signed/"}, "completedAt": 2.0, "signedObject": {"s3": {"bucketName": "fw", "key": "signed/sj"}}, "_signedVersion": "null", "_signature": "MEUC"}),
        ),
        (
            "acm-certificate",
            "c1",
            None,
            json!({"CertificateArn": "arn:aws:acm:us-east-1:1:certificate/c1", "DomainName": "dev", "Subject": "CN=dev", "Issuer": "CN=ca", "Serial": "01", "NotBefore": 1.0, "NotAfter": 2.0, "ImportedAt": 3.0, "CreatedAt": 3.0, "KeyAlgorithm": "EC_prime256v1", "SignatureAlgorithm": "1.2", "Status": "ISSUED", "Type": "IMPORTED", "InUseBy": [], "_pem": {"certificate": "CERT", "privateKey": "KEY", "chain": null}, "_region": "us-east-1"}),
        ),
    ];
    for (kind, id, parent, body) in rows {
        conn.execute(
            "INSERT INTO resources (kind, id, parent, body) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![kind, id, parent, body.to_string()],
        )
        .expect("old row");
    }
    dir
}

#[test]
fn old_untyped_records_are_converted_once() {
    let dir = old_data_dir();
    let store = Store::open(dir.path()).expect("open the old directory");
    let things: Vec<String> = store
        .list_things()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(things, ["t1", "t2"]);
    assert_eq!(
        store.get_thing("t1").unwrap().unwrap().attributes["model"],
        "x"
    );
    let group = store.get_thing_group("g").unwrap().expect("group");
    assert_eq!(group.created_ms, 1_700_000_000_500);
    assert_eq!(store.things_in_group("g").unwrap(), ["t2"]);
    let jobs = store.load_jobs().unwrap();
    assert_eq!(jobs.jobs[0].spec.job_id, "AFR_OTA-u1");
    assert_eq!(jobs.executions[0].thing_name, "t2");
    let ota = store.get_ota_update("u1").unwrap().expect("ota");
    assert_eq!(ota.status, OtaUpdateStatus::CreateComplete);
    assert_eq!(ota.created_ms, 1_700_000_000_250);
    assert_eq!(ota.role_arn, "arn:role");
    assert_eq!(ota.created_stream.as_deref(), Some("AFR_OTA-s"));
    assert_eq!(ota.streams, ["AFR_OTA-s"]);
    assert!(ota.abort_config.is_some() && ota.timeout_config.is_none());
    let profile = store.get_signing_profile("p1").unwrap().expect("profile");
    assert_eq!(profile.status, ProfileStatus::Canceled);
    let job = store.get_signing_job("sj").unwrap().expect("signing job");
    assert_eq!(job.status, SigningStatus::Succeeded);
    assert_eq!(
        (job.destination_prefix.as_str(), job.completed_ms),
        ("signed/", Some(2000))
    );
    let signed = job.signed.expect("signed copy");
    assert_eq!(
        (signed.object.key.as_str(), signed.signature.as_str()),
        ("signed/sj", "MEUC")
    );
    let cert = store.get_certificate("c1").unwrap().expect("certificate");
    assert_eq!(
        (cert.private_key_pem.as_str(), cert.imported_ms),
        ("KEY", 3000)
    );
    drop(store);

    // Opening again neither converts twice nor loses anything.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.list_things().unwrap().len(), 2);
    assert_eq!(store.list_certificates().unwrap().len(), 1);
}
