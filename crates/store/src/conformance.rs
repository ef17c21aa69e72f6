//! The conformance suite every storage backend must pass (cargo feature `conformance`).
//!
//! Each check takes a fresh, empty backend and panics with a message on the first rule it breaks;
//! [`run_all`] runs every check, each on a backend of its own from the caller's factory. The
//! embedded backend runs it in `tests/it/conformance.rs`; other backends call [`run_all`] from
//! their own tests with their own factory.

use std::collections::BTreeMap;
use std::sync::Arc;

use otastream_jobs::execution::JobExecution;
use otastream_jobs::model::{Job, JobSpec, JobStatus};
use serde_json::json;

use crate::{
    Backend, ByteRange, Certificate, Conflict, DeleteOutcome, Invalid, JobWrite, Kind, NewStream,
    OtaUpdate, OtaUpdateStatus, ProfileStatus, PutMeta, S3Version, SigningJob, SigningProfile,
    SigningStatus, StoreError, StreamFile, StreamUpdate, Thing, ThingGroup, Versioning,
};

pub use crate::conformance_identity::{identity_certificates, identity_policies};

/// Makes a fresh, empty backend.
pub type Factory<'a> = dyn FnMut() -> Arc<dyn Backend> + 'a;

/// One named check of the suite.
type Check = (&'static str, fn(&dyn Backend));

/// Every check, in order, each on its own fresh backend.
pub fn run_all(new_backend: &mut Factory<'_>) {
    let checks: [Check; 11] = [
        ("buckets", buckets),
        ("versioning", versioning),
        ("ranges and listings", ranges_and_listings),
        ("multipart", multipart),
        ("streams", streams),
        ("things", things),
        ("jobs", jobs),
        ("ota updates", ota_updates),
        ("signer and certificates", signer_and_certificates),
        ("identity certificates", identity_certificates),
        ("identity policies", identity_policies),
    ];
    for (name, check) in checks {
        let backend = new_backend();
        eprintln!("conformance[{}]: {name}", backend.backend_name());
        check(&*backend);
    }
}

fn expect_kind<T: std::fmt::Debug>(result: Result<T, StoreError>, kind: Kind) {
    match result {
        Err(StoreError::NotFound { kind: k, .. }) if k == kind => {}
        other => panic!("expected NotFound({kind:?}), got {other:?}"),
    }
}

fn ok<T>(result: Result<T, StoreError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Bucket lifecycle: create, duplicate, list, delete only when empty (delete markers count).
pub fn buckets(b: &dyn Backend) {
    ok(b.create_bucket("fw-a"), "create");
    ok(b.create_bucket("fw-b"), "create");
    assert!(matches!(
        b.create_bucket("fw-a"),
        Err(StoreError::AlreadyExists {
            kind: Kind::Bucket,
            ..
        })
    ));
    let names: Vec<String> = ok(b.list_buckets(), "list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["fw-a", "fw-b"]);
    assert!(ok(b.bucket_exists("fw-a"), "exists"));
    assert!(!ok(b.bucket_exists("nope"), "exists"));
    expect_kind(
        b.put_object("nope", "k", b"x", PutMeta::default()),
        Kind::Bucket,
    );

    ok(
        b.set_bucket_versioning("fw-a", Versioning::Enabled),
        "enable",
    );
    ok(b.put_object("fw-a", "k", b"x", PutMeta::default()), "put");
    ok(b.delete_object("fw-a", "k", None), "delete marker");
    let versions = ok(b.list_object_versions("fw-a", ""), "versions");
    let (markers, objects): (Vec<_>, Vec<_>) = versions.iter().partition(|v| v.is_delete_marker);
    assert_eq!((markers.len(), objects.len()), (1, 1));
    ok(
        b.delete_object("fw-a", "k", Some(&objects[0].info.version_id)),
        "delete version",
    );
    // A delete marker alone still makes the bucket non-empty.
    assert!(matches!(
        b.delete_bucket("fw-a"),
        Err(StoreError::Conflict(Conflict::BucketHasVersions { .. }))
    ));
    ok(
        b.delete_object("fw-a", "k", Some(&markers[0].info.version_id)),
        "delete marker",
    );
    ok(b.delete_bucket("fw-a"), "delete empty bucket");
    expect_kind(b.delete_bucket("fw-a"), Kind::Bucket);
    expect_kind(b.bucket_versioning("fw-a"), Kind::Bucket);
}

/// S3 versioning: `"null"` replacement, fresh ids, delete markers, suspension, no way back.
pub fn versioning(b: &dyn Backend) {
    ok(b.create_bucket("fw"), "create");
    assert_eq!(
        ok(b.bucket_versioning("fw"), "state"),
        Versioning::Unversioned
    );
    let meta = PutMeta {
        content_type: Some("application/octet-stream".into()),
        user_metadata: vec![("build".into(), "7".into())],
    };
    let first = ok(b.put_object("fw", "app.bin", b"one", meta.clone()), "put");
    assert_eq!(first.version_id, "null");
    assert_eq!(first.etag, "\"f97c5d29941bfb1b2fdab0874906ab82\"");
    ok(
        b.put_object("fw", "app.bin", b"two", PutMeta::default()),
        "overwrite",
    );
    assert_eq!(ok(b.list_object_versions("fw", ""), "versions").len(), 1);
    let got = ok(b.get_object("fw", "app.bin", None, None), "get");
    assert_eq!(&got.data[..], b"two");
    assert_eq!(got.info.content_type, None);

    ok(b.set_bucket_versioning("fw", Versioning::Enabled), "enable");
    let v1 = ok(
        b.put_object("fw", "app.bin", b"three", meta.clone()),
        "put v1",
    );
    assert_eq!(v1.version_id.len(), 32);
    let head = ok(b.head_object("fw", "app.bin", Some(&v1.version_id)), "head");
    assert_eq!((head.size, head.user_metadata), (5, meta.user_metadata));
    let marker = ok(b.delete_object("fw", "app.bin", None), "delete");
    let DeleteOutcome::DeleteMarker { version_id: marker } = marker else {
        panic!("a delete in a versioned bucket adds a delete marker");
    };
    expect_kind(b.get_object("fw", "app.bin", None, None), Kind::Object);
    let old = ok(
        b.get_object("fw", "app.bin", Some("null"), None),
        "get null",
    );
    assert_eq!(&old.data[..], b"two");
    expect_kind(
        b.get_object("fw", "app.bin", Some("0123"), None),
        Kind::ObjectVersion,
    );
    let removed = ok(
        b.delete_object("fw", "app.bin", Some(&marker)),
        "remove marker",
    );
    assert_eq!(removed, DeleteOutcome::DeleteMarker { version_id: marker });
    assert_eq!(
        &ok(b.get_object("fw", "app.bin", None, None), "get").data[..],
        b"three"
    );

    ok(
        b.set_bucket_versioning("fw", Versioning::Suspended),
        "suspend",
    );
    assert!(matches!(
        b.set_bucket_versioning("fw", Versioning::Unversioned),
        Err(StoreError::Invalid(Invalid::VersioningCannotBeDisabled))
    ));
    let suspended = ok(
        b.put_object("fw", "app.bin", b"four", PutMeta::default()),
        "put",
    );
    assert_eq!(suspended.version_id, "null");
    let versions = ok(b.list_object_versions("fw", "app"), "versions");
    let ids: Vec<&str> = versions
        .iter()
        .map(|v| v.info.version_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["null", v1.version_id.as_str()],
        "newest first, null replaced"
    );
    assert!(versions[0].is_latest && !versions[1].is_latest);
    assert_eq!(
        ok(b.delete_object("fw", "missing", Some("null")), "idempotent"),
        DeleteOutcome::Deleted {
            version_id: "null".into()
        }
    );
}

/// Byte ranges, open images, `ListObjectsV2` order and paging, staged puts.
pub fn ranges_and_listings(b: &dyn Backend) {
    ok(b.create_bucket("fw"), "create");
    let data: Vec<u8> = (0..=255u8).collect();
    let info = ok(b.put_object("fw", "img", &data, PutMeta::default()), "put");
    let part = ok(
        b.get_object(
            "fw",
            "img",
            None,
            Some(ByteRange::Bounded {
                first: 10,
                last: 19,
            }),
        ),
        "range",
    );
    assert_eq!((&part.data[..], part.range), (&data[10..20], Some(10..20)));
    let tail = ok(
        b.get_object("fw", "img", None, Some(ByteRange::Suffix { length: 6 })),
        "suffix",
    );
    assert_eq!(&tail.data[..], &data[250..]);
    assert!(matches!(
        b.get_object("fw", "img", None, Some(ByteRange::From { first: 256 })),
        Err(StoreError::Invalid(Invalid::RangeNotSatisfiable {
            size: 256
        }))
    ));
    let image = ok(b.open_image("fw", "img", &info.version_id), "image");
    assert_eq!(&image[..], &data[..]);

    let staged = b.staging_path();
    std::fs::write(&staged, b"from a file").expect("write the staged body");
    ok(
        b.put_object_from_file("fw", "a/2", &staged, PutMeta::default()),
        "staged put",
    );
    assert!(!staged.exists(), "the store takes the staged file over");
    for key in ["a/1", "a/3", "b/1"] {
        ok(
            b.put_object("fw", key, key.as_bytes(), PutMeta::default()),
            "put",
        );
    }
    let (page, more) = ok(b.list_objects("fw", "a/", None, 2), "list");
    let keys: Vec<&str> = page.iter().map(|i| i.key.as_str()).collect();
    assert_eq!((keys, more), (vec!["a/1", "a/2"], true));
    let (page, more) = ok(b.list_objects("fw", "a/", Some("a/2"), 2), "list");
    assert_eq!((page.len(), page[0].key.as_str(), more), (1, "a/3", false));
    assert_eq!(
        &ok(b.get_object("fw", "a/2", None, None), "get").data[..],
        b"from a file"
    );
}

/// Multipart uploads: part rules, ETag, replacement of parts, abort.
pub fn multipart(b: &dyn Backend) {
    ok(b.create_bucket("fw"), "create");
    expect_kind(
        b.create_multipart("nope", "k", PutMeta::default()),
        Kind::Bucket,
    );
    let id = ok(
        b.create_multipart("fw", "big.bin", PutMeta::default()),
        "create upload",
    );
    assert!(matches!(
        b.upload_part(&id, 0, b"x"),
        Err(StoreError::Invalid(Invalid::PartNumber(0)))
    ));
    let big = vec![7u8; crate::MIN_PART_SIZE as usize];
    let e1 = ok(b.upload_part(&id, 1, b"replaced"), "part 1");
    let e1b = ok(b.upload_part(&id, 1, &big), "part 1 again");
    assert_ne!(e1, e1b);
    let e2 = ok(b.upload_part(&id, 2, b"tail"), "part 2");
    assert!(matches!(
        b.complete_multipart(&id, &[]),
        Err(StoreError::Invalid(Invalid::NoParts))
    ));
    assert!(matches!(
        b.complete_multipart(&id, &[(2, e2.clone()), (1, e1b.clone())]),
        Err(StoreError::Invalid(Invalid::PartOrder))
    ));
    assert!(matches!(
        b.complete_multipart(&id, &[(1, e1.clone()), (2, e2.clone())]),
        Err(StoreError::Invalid(Invalid::PartMissing {
            part_number: 1,
            ..
        }))
    ));
    let info = ok(b.complete_multipart(&id, &[(1, e1b), (2, e2)]), "complete");
    assert!(info.etag.ends_with("-2\""), "{}", info.etag);
    assert_eq!(info.size, big.len() as u64 + 4);
    let got = ok(b.get_object("fw", "big.bin", None, None), "get");
    assert_eq!(&got.data[big.len()..], b"tail");
    expect_kind(b.upload_part(&id, 3, b"late"), Kind::Upload);

    let small = ok(
        b.create_multipart("fw", "small", PutMeta::default()),
        "create",
    );
    let s1 = ok(b.upload_part(&small, 1, b"a"), "part");
    let s2 = ok(b.upload_part(&small, 2, b"b"), "part");
    assert!(matches!(
        b.complete_multipart(&small, &[(1, s1), (2, s2)]),
        Err(StoreError::Invalid(Invalid::PartTooSmall {
            part_number: 1,
            ..
        }))
    ));
    ok(b.abort_multipart(&small), "abort");
    expect_kind(b.abort_multipart(&small), Kind::Upload);
}

/// Streams pin object versions; images follow updates and disappear with deletes.
pub fn streams(b: &dyn Backend) {
    ok(b.create_bucket("fw"), "create");
    ok(b.set_bucket_versioning("fw", Versioning::Enabled), "enable");
    let v1 = ok(
        b.put_object("fw", "app.bin", b"v1 image", PutMeta::default()),
        "put",
    );
    let file = |key: &str, version: Option<&str>| StreamFile {
        file_id: 0,
        bucket: "fw".into(),
        key: key.into(),
        version_id: version.map(str::to_owned),
    };
    let new = NewStream {
        id: "s1".into(),
        description: Some("first".into()),
        role_arn: None,
        files: vec![file("app.bin", None)],
    };
    let record = ok(b.create_stream(&new), "create stream");
    assert_eq!(
        (record.version, record.files[0].version_id.as_str()),
        (1, v1.version_id.as_str())
    );
    assert!(matches!(
        b.create_stream(&new),
        Err(StoreError::AlreadyExists {
            kind: Kind::Stream,
            ..
        })
    ));
    let missing = NewStream {
        id: "s2".into(),
        files: vec![file("nope", None)],
        ..new.clone()
    };
    expect_kind(b.create_stream(&missing), Kind::Object);
    let image = ok(b.stream_image("s1"), "image").expect("the stream exists");
    assert_eq!(image.file(0).map(|d| &d[..]), Some(&b"v1 image"[..]));

    // A newer object version does not change the pinned stream until it is updated.
    ok(
        b.put_object("fw", "app.bin", b"v2 image", PutMeta::default()),
        "put v2",
    );
    let same = ok(b.stream_image("s1"), "image").expect("exists");
    assert_eq!(same.file(0).map(|d| &d[..]), Some(&b"v1 image"[..]));
    let update = StreamUpdate {
        files: Some(vec![file("app.bin", None)]),
        ..StreamUpdate::default()
    };
    let updated = ok(b.update_stream("s1", &update), "update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.description.as_deref(), Some("first"));
    let image = ok(b.stream_image("s1"), "image").expect("exists");
    assert_eq!(
        (image.version, image.file(0).map(|d| &d[..])),
        (2, Some(&b"v2 image"[..]))
    );
    expect_kind(b.update_stream("nope", &update), Kind::Stream);
    assert_eq!(ok(b.list_streams(), "list").len(), 1);
    assert!(ok(b.delete_stream("s1"), "delete"));
    assert!(!ok(b.delete_stream("s1"), "delete again"));
    assert!(ok(b.stream_image("s1"), "image").is_none());
    assert!(ok(b.get_stream("s1"), "get").is_none());
}

/// Things, groups and membership (insertion order, cleanup with the thing).
pub fn things(b: &dyn Backend) {
    let thing = |name: &str| Thing {
        name: name.into(),
        arn: format!("arn:aws:iot:r:1:thing/{name}"),
        id: format!("id-{name}"),
        type_name: None,
        attributes: BTreeMap::from([("model".to_owned(), "x1".to_owned())]),
        version: 1,
    };
    for name in ["t2", "t1", "t3"] {
        ok(b.create_thing(&thing(name)), "create thing");
    }
    assert!(matches!(
        b.create_thing(&thing("t1")),
        Err(StoreError::AlreadyExists {
            kind: Kind::Thing,
            ..
        })
    ));
    assert_eq!(ok(b.get_thing("t1"), "get"), Some(thing("t1")));
    let names: Vec<String> = ok(b.list_things(), "list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["t2", "t1", "t3"], "creation order");
    let group = ThingGroup {
        name: "g".into(),
        arn: "arn:aws:iot:r:1:thinggroup/g".into(),
        id: "gid".into(),
        version: 1,
        properties: json!({ "thingGroupDescription": "d" }),
        parent: None,
        created_ms: 1_700_000_000_123,
    };
    ok(b.create_thing_group(&group), "create group");
    let child = ThingGroup {
        name: "child".into(),
        parent: Some("g".into()),
        ..group.clone()
    };
    ok(b.create_thing_group(&child), "create child");
    assert_eq!(ok(b.get_thing_group("g"), "get group"), Some(group));
    assert_eq!(ok(b.list_thing_groups(), "groups").len(), 2);
    expect_kind(b.add_thing_to_group("nope", "t1"), Kind::ThingGroup);
    expect_kind(b.add_thing_to_group("g", "nope"), Kind::Thing);
    for t in ["t3", "t1", "t3"] {
        ok(b.add_thing_to_group("g", t), "add");
    }
    assert_eq!(ok(b.things_in_group("g"), "members"), ["t3", "t1"]);
    assert!(ok(b.remove_thing_from_group("g", "t3"), "remove"));
    assert!(!ok(b.remove_thing_from_group("g", "t3"), "remove again"));
    assert!(ok(b.delete_thing("t1"), "delete thing"));
    assert!(
        ok(b.things_in_group("g"), "members").is_empty(),
        "memberships go with the thing"
    );
    assert!(!ok(b.delete_thing("t1"), "delete again"));
}

fn job(id: &str) -> Job {
    Job {
        spec: JobSpec {
            job_arn: format!("arn:aws:iot:r:1:job/{id}"),
            job_id: id.into(),
            targets: vec!["arn:aws:iot:r:1:thing/t1".into()],
            document: r#"{"afr_ota":{"files":[]}}"#.into(),
            ..JobSpec::default()
        },
        status: JobStatus::InProgress,
        created_at: 1,
        last_updated_at: 2,
        completed_at: None,
        comment: None,
        reason_code: None,
        force_canceled: false,
        rollout_progress: Default::default(),
    }
}

/// Jobs and executions: batches are atomic and ordered, deletes cascade.
pub fn jobs(b: &dyn Backend) {
    let (j1, j2) = (job("j1"), job("j2"));
    let mut e1 = JobExecution::queued("j1", "t1", 1, 5);
    let e2 = JobExecution::queued("j1", "t2", 1, 5);
    let e3 = JobExecution::queued("j2", "t1", 1, 5);
    ok(
        b.save_jobs(&[
            JobWrite::SaveJob(&j1),
            JobWrite::SaveJob(&j2),
            JobWrite::SaveExecution(&e1),
            JobWrite::SaveExecution(&e2),
            JobWrite::SaveExecution(&e3),
        ]),
        "save",
    );
    e1.version_number += 1;
    ok(
        b.save_jobs(&[
            JobWrite::SaveExecution(&e1),
            JobWrite::DeleteExecution {
                job_id: "j1",
                thing: "t2",
            },
        ]),
        "update",
    );
    let snapshot = ok(b.load_jobs(), "load");
    assert_eq!(snapshot.jobs, [j1.clone(), j2.clone()]);
    assert_eq!(snapshot.executions, [e1.clone(), e3.clone()]);
    ok(
        b.save_jobs(&[JobWrite::DeleteJob { job_id: "j1" }]),
        "delete job",
    );
    let snapshot = ok(b.load_jobs(), "load");
    assert_eq!((snapshot.jobs, snapshot.executions), (vec![j2], vec![e3]));
    ok(b.save_jobs(&[]), "an empty batch is fine");
}

/// OTA updates: create once, update only while present, list in order.
pub fn ota_updates(b: &dyn Backend) {
    let mut update = OtaUpdate {
        id: "u1".into(),
        arn: "arn:aws:iot:r:1:otaupdate/u1".into(),
        created_ms: 10,
        modified_ms: 10,
        description: None,
        targets: vec!["arn:aws:iot:r:1:thing/t1".into()],
        protocols: vec!["MQTT".into()],
        target_selection: "SNAPSHOT".into(),
        rollout_config: None,
        presigned_url_config: json!({ "expiresInSec": 1800 }),
        abort_config: Some(json!({ "abortCriteriaList": [] })),
        timeout_config: None,
        files: vec![json!({ "fileName": "app.bin" })],
        additional_parameters: None,
        role_arn: "arn:aws:iam::1:role/ota".into(),
        status: OtaUpdateStatus::CreatePending,
        job_id: None,
        job_arn: None,
        error: None,
        created_stream: None,
        streams: Vec::new(),
    };
    ok(b.create_ota_update(&update), "create");
    assert!(matches!(
        b.create_ota_update(&update),
        Err(StoreError::AlreadyExists {
            kind: Kind::OtaUpdate,
            ..
        })
    ));
    update.status = OtaUpdateStatus::CreateComplete;
    update.streams = vec!["s1".into()];
    ok(b.update_ota_update(&update), "update");
    assert_eq!(ok(b.get_ota_update("u1"), "get"), Some(update.clone()));
    assert_eq!(ok(b.list_ota_updates(), "list"), [update.clone()]);
    assert!(ok(b.delete_ota_update("u1"), "delete"));
    expect_kind(b.update_ota_update(&update), Kind::OtaUpdate);
    assert!(!ok(b.delete_ota_update("u1"), "delete again"));
}

/// Signing profiles (upsert), signing jobs (create, update), certificates (upsert, delete).
pub fn signer_and_certificates(b: &dyn Backend) {
    let mut profile = SigningProfile {
        name: "p1".into(),
        version: "abc".into(),
        version_arn: "arn/abc".into(),
        arn: "arn".into(),
        certificate_arn: "arn:aws:acm:r:1:certificate/c1".into(),
        platform_id: "AmazonFreeRTOS-Default".into(),
        platform_display_name: "x".into(),
        signing_parameters: json!({ "certname": "cert.pem" }),
        status: ProfileStatus::Active,
        signature_validity_period: json!({ "value": 135, "type": "MONTHS" }),
        overrides: None,
        tags: None,
    };
    ok(b.put_signing_profile(&profile), "put");
    ok(
        b.put_signing_profile(&SigningProfile {
            name: "p2".into(),
            ..profile.clone()
        }),
        "put",
    );
    profile.status = ProfileStatus::Canceled;
    ok(b.put_signing_profile(&profile), "replace");
    let names: Vec<String> = ok(b.list_signing_profiles(), "list")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["p1", "p2"], "a replaced profile keeps its place");
    assert_eq!(ok(b.get_signing_profile("p1"), "get"), Some(profile));

    let source = S3Version {
        bucket: "fw".into(),
        key: "app.bin".into(),
        version: "null".into(),
    };
    let mut job = SigningJob {
        id: "sj1".into(),
        source: source.clone(),
        destination_bucket: "fw".into(),
        destination_prefix: "signed/".into(),
        certificate_arn: "c".into(),
        platform_id: "AmazonFreeRTOS-Default".into(),
        platform_display_name: "x".into(),
        profile_name: "p1".into(),
        profile_version: "abc".into(),
        signing_parameters: json!({}),
        created_ms: 1,
        completed_ms: None,
        status: SigningStatus::InProgress,
        status_reason: None,
        signed: None,
        account_id: "1".into(),
    };
    expect_kind(b.update_signing_job(&job), Kind::SigningJob);
    ok(b.create_signing_job(&job), "create");
    assert!(
        b.create_signing_job(&job).is_err(),
        "a job id is created once"
    );
    job.status = SigningStatus::Succeeded;
    job.signed = Some(crate::SignedObject {
        object: source,
        signature: "MEUC".into(),
    });
    ok(b.update_signing_job(&job), "update");
    assert_eq!(ok(b.get_signing_job("sj1"), "get"), Some(job.clone()));
    assert_eq!(ok(b.list_signing_jobs(), "list"), [job]);

    let cert = Certificate {
        id: "c1".into(),
        arn: "arn:aws:acm:r:1:certificate/c1".into(),
        domain_name: "dev".into(),
        subject: "CN=dev".into(),
        issuer: "CN=ca".into(),
        serial: "01".into(),
        not_before_ms: 1,
        not_after_ms: 2,
        imported_ms: 3,
        key_algorithm: "EC_prime256v1".into(),
        signature_algorithm: "1.2.840.10045.4.3.2".into(),
        certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        private_key_pem: "-----BEGIN PRIVATE KEY-----".into(),
        chain_pem: None,
    };
    ok(b.put_certificate(&cert), "put");
    let reimported = Certificate {
        imported_ms: 4,
        ..cert.clone()
    };
    ok(b.put_certificate(&reimported), "re-import");
    assert_eq!(
        ok(b.list_certificates(), "list"),
        std::slice::from_ref(&reimported)
    );
    assert_eq!(ok(b.get_certificate("c1"), "get"), Some(reimported));
    assert!(ok(b.delete_certificate("c1"), "delete"));
    assert!(ok(b.get_certificate("c1"), "get").is_none());
    assert!(!ok(b.delete_certificate("c1"), "delete again"));
}
