//! Buckets, versioning semantics, listings and object errors.

use otastream_store::ObjectStore as _;
use otastream_store::{DeleteOutcome, PutMeta, StoreError, Versioning};

use crate::{code_of, files_in, fresh_store, store_with_bucket, typed, versioned_store};

#[test]
fn buckets_create_list_delete_and_their_errors() {
    let (_dir, store) = fresh_store();
    store.create_bucket("zeta").unwrap();
    store.create_bucket("alpha").unwrap();
    assert_eq!(
        code_of(&store.create_bucket("alpha").unwrap_err()),
        "AlreadyExists(Bucket)"
    );
    let names: Vec<String> = store
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    assert!(
        store
            .list_buckets()
            .unwrap()
            .iter()
            .all(|b| b.created_ms > 1_600_000_000_000)
    );

    store
        .put_object("alpha", "k", b"x", PutMeta::default())
        .unwrap();
    let err = store.delete_bucket("alpha").unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)) && code_of(&err) == "Conflict",
        "{err}"
    );
    store.delete_object("alpha", "k", None).unwrap();
    store.delete_bucket("alpha").unwrap();
    assert!(!store.bucket_exists("alpha").unwrap());
    assert!(store.bucket_exists("zeta").unwrap());
    assert_eq!(
        code_of(&store.delete_bucket("alpha").unwrap_err()),
        "NotFound(Bucket)"
    );
    assert_eq!(
        code_of(
            &store
                .put_object("alpha", "k", b"x", PutMeta::default())
                .unwrap_err()
        ),
        "NotFound(Bucket)"
    );
    assert_eq!(
        files_in(&store, "objects"),
        0,
        "the deleted object's file is gone"
    );
}

#[test]
fn unversioned_overwrite_replaces_the_null_version() {
    let (_dir, store) = store_with_bucket("fw");
    assert_eq!(
        store.bucket_versioning("fw").unwrap(),
        Versioning::Unversioned
    );
    let first = store
        .put_object("fw", "app.bin", b"hello", typed("application/octet-stream"))
        .unwrap();
    assert_eq!(first.version_id, "null");
    assert_eq!(
        first.etag, "\"5d41402abc4b2a76b9719d911017c592\"",
        "quoted hex MD5 of 'hello'"
    );
    assert_eq!(first.size, 5);

    let meta = PutMeta {
        content_type: None,
        user_metadata: vec![("build".into(), "42".into())],
    };
    let second = store
        .put_object("fw", "app.bin", b"hello, world", meta.clone())
        .unwrap();
    assert_eq!(second.version_id, "null");
    let got = store.get_object("fw", "app.bin", None, None).unwrap();
    assert_eq!(&got.data[..], b"hello, world");
    assert_eq!(got.info, second);
    assert_eq!(got.info.user_metadata, meta.user_metadata);
    assert_eq!(
        store
            .get_object("fw", "app.bin", Some("null"), None)
            .unwrap()
            .info,
        second
    );
    assert_eq!(store.list_object_versions("fw", "").unwrap().len(), 1);
    assert_eq!(
        files_in(&store, "objects"),
        1,
        "the replaced version's file was removed"
    );

    assert_eq!(
        store.delete_object("fw", "app.bin", None).unwrap(),
        DeleteOutcome::Deleted {
            version_id: "null".into()
        }
    );
    assert_eq!(
        code_of(&store.get_object("fw", "app.bin", None, None).unwrap_err()),
        "NotFound(Object)"
    );
    assert_eq!(
        store.delete_object("fw", "app.bin", None).unwrap(),
        DeleteOutcome::Deleted {
            version_id: "null".into()
        },
        "deleting a missing key succeeds, as in S3"
    );
}

#[test]
fn enabled_versioning_keeps_every_version_behind_delete_markers() {
    let (_dir, store) = versioned_store("fw");
    let v1 = store
        .put_object("fw", "img", b"one", PutMeta::default())
        .unwrap();
    let v2 = store
        .put_object("fw", "img", b"two", PutMeta::default())
        .unwrap();
    for v in [&v1, &v2] {
        assert_eq!(v.version_id.len(), 32);
        assert!(v.version_id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(v1.version_id, v2.version_id);
    assert_eq!(
        &store.get_object("fw", "img", None, None).unwrap().data[..],
        b"two"
    );
    assert_eq!(
        &store
            .get_object("fw", "img", Some(&v1.version_id), None)
            .unwrap()
            .data[..],
        b"one"
    );
    assert_eq!(
        store
            .head_object("fw", "img", Some(&v2.version_id))
            .unwrap(),
        v2
    );

    let marker = match store.delete_object("fw", "img", None).unwrap() {
        DeleteOutcome::DeleteMarker { version_id } => version_id,
        other => panic!("expected a delete marker, got {other:?}"),
    };
    assert_eq!(
        code_of(&store.get_object("fw", "img", None, None).unwrap_err()),
        "NotFound(Object)"
    );
    assert_eq!(
        code_of(&store.head_object("fw", "img", None).unwrap_err()),
        "NotFound(Object)"
    );
    assert_eq!(
        &store
            .get_object("fw", "img", Some(&v1.version_id), None)
            .unwrap()
            .data[..],
        b"one"
    );
    assert_eq!(
        store.list_objects("fw", "", None, 100).unwrap(),
        (vec![], false)
    );

    let versions = store.list_object_versions("fw", "").unwrap();
    let shape: Vec<(&str, bool, bool)> = versions
        .iter()
        .map(|v| (v.info.version_id.as_str(), v.is_latest, v.is_delete_marker))
        .collect();
    assert_eq!(
        shape,
        [
            (marker.as_str(), true, true),
            (v2.version_id.as_str(), false, false),
            (v1.version_id.as_str(), false, false)
        ]
    );

    assert_eq!(
        store.delete_object("fw", "img", Some(&marker)).unwrap(),
        DeleteOutcome::DeleteMarker {
            version_id: marker.clone()
        },
        "removing a marker reports the marker"
    );
    assert_eq!(
        &store.get_object("fw", "img", None, None).unwrap().data[..],
        b"two",
        "the key is visible again"
    );
    assert_eq!(
        store
            .delete_object("fw", "img", Some(&v2.version_id))
            .unwrap(),
        DeleteOutcome::Deleted {
            version_id: v2.version_id.clone()
        }
    );
    assert_eq!(
        &store.get_object("fw", "img", None, None).unwrap().data[..],
        b"one"
    );
    assert_eq!(
        code_of(
            &store
                .get_object("fw", "img", Some(&v2.version_id), None)
                .unwrap_err()
        ),
        "NotFound(ObjectVersion)"
    );
    assert_eq!(files_in(&store, "objects"), 1);
    assert_eq!(
        code_of(
            &store
                .set_bucket_versioning("fw", Versioning::Unversioned)
                .unwrap_err()
        ),
        "Invalid(VersioningCannotBeDisabled)"
    );
}

#[test]
fn suspended_versioning_replaces_only_the_null_version() {
    let (_dir, store) = versioned_store("fw");
    let kept = store
        .put_object("fw", "k", b"versioned", PutMeta::default())
        .unwrap();
    store
        .set_bucket_versioning("fw", Versioning::Suspended)
        .unwrap();
    assert_eq!(
        store.bucket_versioning("fw").unwrap().s3_status(),
        Some("Suspended")
    );
    assert_eq!(
        store
            .put_object("fw", "k", b"null-1", PutMeta::default())
            .unwrap()
            .version_id,
        "null"
    );
    assert_eq!(
        store
            .put_object("fw", "k", b"null-2", PutMeta::default())
            .unwrap()
            .version_id,
        "null"
    );
    let ids: Vec<String> = store
        .list_object_versions("fw", "k")
        .unwrap()
        .into_iter()
        .map(|v| v.info.version_id)
        .collect();
    assert_eq!(ids, ["null".to_owned(), kept.version_id.clone()]);
    assert_eq!(
        &store.get_object("fw", "k", None, None).unwrap().data[..],
        b"null-2"
    );

    assert_eq!(
        store.delete_object("fw", "k", None).unwrap(),
        DeleteOutcome::DeleteMarker {
            version_id: "null".into()
        }
    );
    let versions = store.list_object_versions("fw", "k").unwrap();
    assert_eq!(
        versions.len(),
        2,
        "the null marker replaced the null version"
    );
    assert!(versions[0].is_delete_marker && versions[0].is_latest);
    assert_eq!(
        &store
            .get_object("fw", "k", Some(&kept.version_id), None)
            .unwrap()
            .data[..],
        b"versioned"
    );
}

#[test]
fn list_objects_filters_by_prefix_pages_and_orders_by_key() {
    let (_dir, store) = versioned_store("b");
    for key in [
        "fw/b.bin",
        "fw/a.bin",
        "fw/ünïcode/z",
        "fx",
        "fw/deleted",
        "fw/a.bin",
    ] {
        store
            .put_object("b", key, key.as_bytes(), PutMeta::default())
            .unwrap();
    }
    store.delete_object("b", "fw/deleted", None).unwrap();

    let (page, truncated) = store.list_objects("b", "fw/", None, 2).unwrap();
    let keys: Vec<&str> = page.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["fw/a.bin", "fw/b.bin"]);
    assert!(truncated);
    let (rest, truncated) = store.list_objects("b", "fw/", Some("fw/b.bin"), 2).unwrap();
    let keys: Vec<&str> = rest.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["fw/ünïcode/z"], "delete-marked keys are skipped");
    assert!(!truncated);
    let (all, _) = store.list_objects("b", "", None, 1000).unwrap();
    assert_eq!(all.len(), 4);
    let a = all.iter().find(|o| o.key == "fw/a.bin").unwrap();
    assert_eq!(
        a.version_id,
        store.head_object("b", "fw/a.bin", None).unwrap().version_id,
        "latest version only"
    );
    assert_eq!(store.list_object_versions("b", "fw/a").unwrap().len(), 2);
    assert_eq!(
        store.list_objects("b", "%", None, 10).unwrap().0.len(),
        0,
        "prefixes are literal, not LIKE patterns"
    );
}

#[test]
fn missing_things_have_their_kinds() {
    let (_dir, store) = store_with_bucket("b");
    assert_eq!(
        code_of(&store.get_object("nope", "k", None, None).unwrap_err()),
        "NotFound(Bucket)"
    );
    assert_eq!(
        code_of(&store.get_object("b", "k", None, None).unwrap_err()),
        "NotFound(Object)"
    );
    assert_eq!(
        code_of(&store.list_objects("nope", "", None, 1).unwrap_err()),
        "NotFound(Bucket)"
    );
    let empty = store
        .put_object("b", "empty", b"", PutMeta::default())
        .unwrap();
    assert_eq!(empty.etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert!(
        store
            .get_object("b", "empty", None, None)
            .unwrap()
            .data
            .is_empty()
    );
    assert_eq!(files_in(&store, "tmp"), 0, "no temp files left behind");
}

#[test]
fn put_from_file_moves_the_temp_file_and_rejects_paths_elsewhere() {
    let (_dir, store) = store_with_bucket("b");
    let tmp = store.tmp_path();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&tmp, &body).unwrap();
    let info = store
        .put_object_from_file("b", "big", &tmp, PutMeta::default())
        .unwrap();
    assert!(!tmp.exists(), "the temp file was renamed, not copied");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(
        &store.get_object("b", "big", None, None).unwrap().data[..],
        &body[..]
    );
    let put = store
        .put_object("b", "same", &body, PutMeta::default())
        .unwrap();
    assert_eq!(put.etag, info.etag, "both put paths hash the same way");

    let outside = tempfile::NamedTempFile::new().unwrap();
    let err = store
        .put_object_from_file("b", "x", outside.path(), PutMeta::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(
        outside.path().exists(),
        "a file outside tmp/ is never touched"
    );
}

#[test]
fn a_mapped_object_stays_readable_after_delete_and_overwrite() {
    let (_dir, store) = store_with_bucket("b");
    store
        .put_object("b", "k", b"first bytes", PutMeta::default())
        .unwrap();
    let held = store.get_object("b", "k", None, None).unwrap();
    store
        .put_object("b", "k", b"second", PutMeta::default())
        .unwrap();
    store.delete_object("b", "k", None).unwrap();
    assert_eq!(&held.data[..], b"first bytes");
}

#[test]
fn concurrent_puts_to_one_key_all_become_versions() {
    let (_dir, store) = versioned_store("b");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    store
                        .put_object(
                            "b",
                            "hot",
                            format!("{t}-{i}").as_bytes(),
                            PutMeta::default(),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let versions = store.list_object_versions("b", "hot").unwrap();
    assert_eq!(versions.len(), 40);
    assert_eq!(versions.iter().filter(|v| v.is_latest).count(), 1);
    assert_eq!(files_in(&store, "objects"), 40);
}
