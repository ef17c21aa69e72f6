//! The PostgreSQL + S3 backend against a real PostgreSQL cluster and a real SeaweedFS server:
//! objects and versions, multipart, the image cache, start-up failures, and outages.

mod support;

use std::time::Duration;

use otastream_store::{
    ByteRange, DeleteOutcome, Kind, NewStream, ObjectStore, PutMeta, StoreError, StreamFile,
    StreamRepo, StreamUpdate, Versioning,
};
use otastream_store_pg::{ConnectError, PgBackend, SCHEMA_VERSION};
use support::{BUCKET, Stack, location};

fn image(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn objects_versions_and_multipart_round_trip_through_postgres_and_s3() {
    let stack = Stack::start();
    let store = stack.backend();
    store.create_bucket("firmware").expect("bucket");
    assert!(store.create_bucket("firmware").is_err());

    // Unversioned: a put replaces the "null" version.
    let v1 = store
        .put_object("firmware", "app.bin", b"first", PutMeta::default())
        .expect("put");
    assert_eq!(v1.version_id, "null");
    let v2 = store
        .put_object("firmware", "app.bin", b"second!", PutMeta::default())
        .expect("put");
    assert_eq!(v2.size, 7);
    let got = store
        .get_object("firmware", "app.bin", None, None)
        .expect("get");
    assert_eq!(&got.data[..], b"second!");
    let ranged = store
        .get_object(
            "firmware",
            "app.bin",
            None,
            Some(ByteRange::Bounded { first: 1, last: 3 }),
        )
        .expect("range");
    assert_eq!(&ranged.data[..], b"eco");
    assert_eq!(ranged.range, Some(1..4));
    assert_eq!(
        store
            .list_object_versions("firmware", "")
            .expect("versions")
            .len(),
        1
    );

    // Enabled: every put is a new version; a delete adds a marker; old versions stay readable.
    store
        .set_bucket_versioning("firmware", Versioning::Enabled)
        .expect("versioning");
    let a = store
        .put_object("firmware", "fw.bin", &image(70_000, 1), PutMeta::default())
        .expect("put a");
    let b = store
        .put_object("firmware", "fw.bin", &image(70_000, 2), PutMeta::default())
        .expect("put b");
    assert_ne!(a.version_id, b.version_id);
    assert_eq!(a.version_id.len(), 32);
    let deleted = store
        .delete_object("firmware", "fw.bin", None)
        .expect("delete");
    assert!(matches!(deleted, DeleteOutcome::DeleteMarker { .. }));
    let err = store
        .get_object("firmware", "fw.bin", None, None)
        .expect_err("marker on top");
    assert!(err.is_not_found(Kind::Object), "{err}");
    let old = store
        .get_object("firmware", "fw.bin", Some(&a.version_id), None)
        .expect("old version");
    assert_eq!(&old.data[..], &image(70_000, 1)[..]);
    let versions = store
        .list_object_versions("firmware", "fw")
        .expect("versions");
    assert_eq!(versions.len(), 3);
    assert!(versions[0].is_latest && versions[0].is_delete_marker);

    // The image path maps the bytes from the local cache.
    let mapped = store
        .open_image("firmware", "fw.bin", &b.version_id)
        .expect("image");
    let again = store
        .open_image("firmware", "fw.bin", &b.version_id)
        .expect("image");
    assert_eq!(
        mapped.as_ptr(),
        again.as_ptr(),
        "one local map per content hash"
    );
    assert_eq!(&mapped[..], &image(70_000, 2)[..]);

    // Multipart: parts are blobs, the completed object is one; the ETag is S3's.
    let upload = store
        .create_multipart("firmware", "big.bin", PutMeta::default())
        .expect("create upload");
    let part1 = image(5 * 1024 * 1024, 3);
    let part2 = image(1000, 4);
    let e1 = store.upload_part(&upload, 1, &part1).expect("part 1");
    let e2 = store.upload_part(&upload, 2, &part2).expect("part 2");
    let info = store
        .complete_multipart(&upload, &[(1, e1), (2, e2)])
        .expect("complete");
    assert!(info.etag.ends_with("-2\""), "{}", info.etag);
    let whole = store
        .get_object("firmware", "big.bin", None, None)
        .expect("get");
    assert_eq!(whole.data.len(), part1.len() + part2.len());
    assert_eq!(&whole.data[part1.len()..], &part2[..]);
    assert!(
        store.abort_multipart(&upload).is_err(),
        "the upload is gone"
    );

    // Deleting every version empties the bucket; then it can be deleted.
    for v in store
        .list_object_versions("firmware", "")
        .expect("versions")
    {
        store
            .delete_object("firmware", &v.info.key, Some(&v.info.version_id))
            .expect("delete version");
    }
    store.delete_bucket("firmware").expect("delete bucket");
    assert!(!store.bucket_exists("firmware").expect("exists"));
}

#[test]
fn several_nodes_migrate_one_database_at_once() {
    let stack = Stack::start();
    let nodes: Vec<_> = (0..4)
        .map(|i| {
            let mut config = stack.config.clone();
            config.cache_dir = config.cache_dir.join(format!("node{i}"));
            std::thread::spawn(move || PgBackend::connect(&config).map(drop))
        })
        .collect();
    for node in nodes {
        node.join().expect("thread").expect("every node connects");
    }
    let out = std::process::Command::new("psql")
        .arg(&stack.config.database_url)
        .args([
            "-At",
            "-c",
            "SELECT count(*), max(version) FROM schema_version",
        ])
        .output()
        .expect("psql");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{SCHEMA_VERSION}|{SCHEMA_VERSION}"),
        "each migration recorded once"
    );
}

#[test]
fn unreachable_dependencies_fail_start_up_with_one_line_naming_them() {
    let stack = Stack::start();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };

    let mut config = stack.config.clone();
    config.database_url = format!("postgres://otastream:secret@127.0.0.1:{closed_port}/otastream");
    let err = PgBackend::connect(&config)
        .err()
        .expect("no PostgreSQL there");
    assert!(matches!(err, ConnectError::Postgres { .. }));
    let message = err.to_string();
    assert!(message.starts_with("PostgreSQL at 127.0.0.1:"), "{message}");
    assert!(
        !message.contains('\n') && !message.contains("secret"),
        "{message}"
    );

    let mut config = stack.config.clone();
    config.objects.endpoint = Some(format!("http://127.0.0.1:{closed_port}"));
    let err = PgBackend::connect(&config).err().expect("no S3 there");
    assert!(matches!(err, ConnectError::ObjectStore { .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");

    let mut config = stack.config.clone();
    config.objects = location(&stack.s3, "no-such-bucket");
    let err = PgBackend::connect(&config).err().expect("no such bucket");
    assert!(
        err.to_string()
            .starts_with("object store s3://no-such-bucket"),
        "{err}"
    );

    let mut config = stack.config.clone();
    config.objects.secret_access_key = "wrong".into();
    let err = PgBackend::connect(&config).err().expect("bad credentials");
    assert!(matches!(err, ConnectError::ObjectStore { .. }), "{err}");
}

#[test]
fn outages_answer_unavailable_images_keep_serving_and_service_recovers() {
    let mut stack = Stack::start();
    let data = image(200_000, 9);
    {
        let store = stack.backend();
        store.create_bucket("fw").expect("bucket");
        store
            .put_object("fw", "img.bin", &data, PutMeta::default())
            .expect("put");
        store
            .create_stream(&NewStream {
                id: "s1".into(),
                description: None,
                role_arn: None,
                files: vec![StreamFile {
                    file_id: 0,
                    bucket: "fw".into(),
                    key: "img.bin".into(),
                    version_id: None,
                }],
            })
            .expect("stream");
        let image = store.stream_image("s1").expect("image").expect("exists");
        assert_eq!(&image.file(0).expect("file 0")[..], &data[..]);
    }

    // S3 down: the image is local, writes of new bytes are refused as unavailable.
    stack.s3.pause();
    {
        let store = stack.backend();
        let image = store
            .stream_image("s1")
            .expect("cached image")
            .expect("exists");
        assert_eq!(image.file(0).expect("file").len(), data.len());
        let err = store
            .put_object("fw", "other.bin", b"x", PutMeta::default())
            .expect_err("S3 is down");
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    }
    stack.s3.resume().expect("S3 back");
    stack
        .backend()
        .put_object("fw", "other.bin", b"x", PutMeta::default())
        .expect("S3 recovered");

    // PostgreSQL down: metadata calls are unavailable, the cached image is still served (also
    // past its revalidation interval).
    stack.pg.pause();
    std::thread::sleep(Duration::from_millis(1100));
    {
        let store = stack.backend();
        let err = store.list_buckets().expect_err("PostgreSQL is down");
        assert!(
            matches!(
                err,
                StoreError::Unavailable {
                    what: "PostgreSQL",
                    ..
                }
            ),
            "{err}"
        );
        let image = store
            .stream_image("s1")
            .expect("cached image")
            .expect("exists");
        assert_eq!(image.version, 1);
    }
    stack.pg.resume().expect("PostgreSQL back");
    let store = stack.backend();
    assert_eq!(store.list_buckets().expect("recovered").len(), 1);
    store
        .update_stream(
            "s1",
            &StreamUpdate {
                description: Some("v2".into()),
                ..StreamUpdate::default()
            },
        )
        .expect("update");
    assert_eq!(
        store
            .stream_image("s1")
            .expect("image")
            .expect("exists")
            .version,
        2
    );
    let _ = BUCKET;
}
