//! Reopening: everything acknowledged survives, crash leftovers are swept, the schema is as promised.

use std::collections::BTreeMap;

use otastream_store::{NewStream, PutMeta, Store, StoreError, StreamFile, Thing, Versioning};
use otastream_store::{ObjectStore as _, StreamRepo as _, ThingRepo as _};

use crate::files_in;

/// A thing whose one attribute is `value`.
fn thing(name: &str, value: &str) -> Thing {
    Thing {
        name: name.into(),
        arn: format!("arn:aws:iot:us-east-1:123456789012:thing/{name}"),
        id: format!("id-{name}"),
        type_name: None,
        attributes: BTreeMap::from([("a".to_owned(), value.to_owned())]),
        version: 1,
    }
}

#[test]
fn reopen_after_drop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, upload, etag) = {
        let store = Store::open(dir.path()).unwrap();
        store.create_thing(&thing("t1", "1")).unwrap();
        store.create_bucket("fw").unwrap();
        store
            .set_bucket_versioning("fw", Versioning::Enabled)
            .unwrap();
        let v1 = store
            .put_object("fw", "app.bin", b"one", PutMeta::default())
            .unwrap();
        store
            .put_object("fw", "app.bin", b"two", PutMeta::default())
            .unwrap();
        store
            .create_stream(&NewStream {
                id: "s".into(),
                description: None,
                role_arn: Some("arn:aws:iam::123456789012:role/ota".into()),
                files: vec![StreamFile {
                    file_id: 0,
                    bucket: "fw".into(),
                    key: "app.bin".into(),
                    version_id: Some(v1.version_id.clone()),
                }],
            })
            .unwrap();
        let upload = store
            .create_multipart("fw", "big.bin", PutMeta::default())
            .unwrap();
        let etag = store.upload_part(&upload, 1, b"part one").unwrap();
        (v1, upload, etag)
    };

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.list_things().unwrap(), vec![thing("t1", "1")]);
    assert_eq!(store.bucket_versioning("fw").unwrap(), Versioning::Enabled);
    assert_eq!(
        &store.get_object("fw", "app.bin", None, None).unwrap().data[..],
        b"two"
    );
    assert_eq!(
        store
            .get_object("fw", "app.bin", Some(&v1.version_id), None)
            .unwrap()
            .info,
        v1
    );
    assert_eq!(store.list_object_versions("fw", "").unwrap().len(), 2);
    let stream = store.get_stream("s").unwrap().expect("stream survives");
    assert_eq!(stream.version, 1);
    assert_eq!(
        &store.stream_image("s").unwrap().unwrap().file(0).unwrap()[..],
        b"one"
    );
    let info = store.complete_multipart(&upload, &[(1, etag)]).unwrap();
    assert_eq!(
        info.size, 8,
        "an upload in progress survives with its parts"
    );
}

#[test]
fn open_sweeps_files_no_committed_row_references() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket("b").unwrap();
        store
            .put_object("b", "kept", b"kept", PutMeta::default())
            .unwrap();
        let upload = store
            .create_multipart("b", "k", PutMeta::default())
            .unwrap();
        store.upload_part(&upload, 1, b"kept part").unwrap();
    }
    // What a crash can leave: a half-written temp file, and files renamed into place whose rows never
    // committed.
    std::fs::write(dir.path().join("tmp/0123abcd"), b"half").unwrap();
    std::fs::write(dir.path().join("objects/deadbeef"), b"orphan").unwrap();
    std::fs::write(dir.path().join("parts/cafebabe"), b"orphan").unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        (
            files_in(&store, "tmp"),
            files_in(&store, "objects"),
            files_in(&store, "parts")
        ),
        (0, 1, 1)
    );
    assert_eq!(
        &store.get_object("b", "kept", None, None).unwrap().data[..],
        b"kept"
    );

    // A second store on the same directory works but must not sweep: the first may be mid-put.
    std::fs::write(dir.path().join("objects/in-flight"), b"being installed").unwrap();
    let second = Store::open(dir.path()).unwrap();
    assert!(dir.path().join("objects/in-flight").exists());
    assert_eq!(
        &second.get_object("b", "kept", None, None).unwrap().data[..],
        b"kept"
    );
}

#[test]
fn database_is_wal_with_schema_version_and_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let db = rusqlite::Connection::open(dir.path().join("meta.sqlite3")).unwrap();
    let mode: String = db
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = db
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);

    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Db { .. }), "{err}");
}

/// Set in the child process of [`acknowledged_writes_survive_sigkill`]: the data directory to write to.
const CRASH_CHILD_ENV: &str = "OTASTREAM_STORE_CRASH_CHILD_DIR";

/// The object body written as write number `i` (long enough that a kill often lands mid-write).
fn crash_body(i: u64) -> Vec<u8> {
    let mut body = i.to_le_bytes().repeat(8 * 1024);
    body.truncate(60_000 + usize::try_from(i % 7).unwrap() * 1000);
    body
}

/// Child role: write objects and resources forever, printing `ack <i>` only after each call returned.
fn crash_child(dir: &str) {
    use std::io::Write;
    let store = Store::open(std::path::Path::new(dir)).unwrap();
    store.create_bucket("b").unwrap();
    store
        .set_bucket_versioning("b", Versioning::Enabled)
        .unwrap();
    let mut stdout = std::io::stdout();
    for i in 0..100_000u64 {
        let info = store
            .put_object("b", &format!("k{i}"), &crash_body(i), PutMeta::default())
            .unwrap();
        store
            .create_thing(&thing(&format!("w{i}"), &info.version_id))
            .unwrap();
        writeln!(stdout, "ack {i}").unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        crash_child(&dir);
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::acknowledged_writes_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(i) = line.unwrap().strip_prefix("ack ") {
            acked.push(i.parse::<u64>().unwrap());
            if acked.len() == 40 {
                child.kill().unwrap(); // SIGKILL: no destructors, no flushing
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(
        acked.len(),
        40,
        "the child acknowledged 40 writes before it was killed"
    );

    let store = Store::open(dir.path()).unwrap();
    for i in acked {
        let write = store
            .get_thing(&format!("w{i}"))
            .unwrap()
            .expect("acknowledged record");
        let object = store.get_object("b", &format!("k{i}"), None, None).unwrap();
        assert_eq!(write.attributes["a"], object.info.version_id);
        assert!(object.data[..] == crash_body(i)[..], "object {i} intact");
    }
    assert_eq!(
        files_in(&store, "tmp"),
        0,
        "a write cut short leaves nothing behind after reopen"
    );
    let objects = store.list_object_versions("b", "").unwrap().len();
    assert_eq!(
        files_in(&store, "objects"),
        objects,
        "exactly the committed versions have files"
    );
}
