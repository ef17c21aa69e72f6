//! Stream records and the cached, memory-mapped stream image.

use std::sync::Arc;

use otastream_store::{NewStream, PutMeta, Store, StreamFile, StreamUpdate};
use otastream_store::{ObjectStore as _, StreamRepo as _};

use crate::{code_of, versioned_store};

fn file(file_id: u8, key: &str, version_id: Option<&str>) -> StreamFile {
    StreamFile {
        file_id,
        bucket: "fw".into(),
        key: key.into(),
        version_id: version_id.map(str::to_owned),
    }
}

fn new_stream(id: &str, files: Vec<StreamFile>) -> NewStream {
    NewStream {
        id: id.into(),
        description: Some("firmware".into()),
        role_arn: None,
        files,
    }
}

/// The line of `/proc/self/maps` whose address range holds `ptr`.
#[cfg(target_os = "linux")]
fn mapping_of(ptr: *const u8) -> Option<String> {
    let addr = ptr as usize;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|line| {
            let range = line.split_whitespace().next().unwrap_or("");
            let (lo, hi) = range.split_once('-').unwrap_or(("0", "0"));
            let lo = usize::from_str_radix(lo, 16).unwrap_or(0);
            let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
            lo <= addr && addr < hi
        })
        .map(str::to_owned)
}

fn setup() -> (tempfile::TempDir, Store) {
    versioned_store("fw")
}

#[test]
fn create_get_list_update_delete() {
    let (_dir, store) = setup();
    let v1 = store
        .put_object("fw", "app.bin", &[7u8; 3000], PutMeta::default())
        .unwrap();
    store
        .put_object("fw", "boot.bin", b"boot", PutMeta::default())
        .unwrap();

    let created = store
        .create_stream(&new_stream(
            "s-1",
            vec![file(5, "boot.bin", None), file(0, "app.bin", None)],
        ))
        .unwrap();
    assert_eq!(created.version, 1);
    let ids: Vec<u8> = created.files.iter().map(|f| f.file_id).collect();
    assert_eq!(ids, [0, 5], "files sorted by id");
    assert_eq!(
        (created.files[0].size, created.files[0].etag.as_str()),
        (3000, v1.etag.as_str())
    );
    assert_eq!(
        created.files[0].version_id, v1.version_id,
        "None pins the newest version"
    );
    assert_eq!(store.get_stream("s-1").unwrap(), Some(created.clone()));
    store
        .create_stream(&new_stream("s-0", vec![file(1, "boot.bin", None)]))
        .unwrap();
    let listed: Vec<String> = store
        .list_streams()
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["s-1", "s-0"]);

    let dup = store
        .create_stream(&new_stream("s-1", vec![file(0, "app.bin", None)]))
        .unwrap_err();
    assert_eq!(code_of(&dup), "AlreadyExists(Stream)");

    let update = StreamUpdate {
        description: Some("v2".into()),
        ..StreamUpdate::default()
    };
    let updated = store.update_stream("s-1", &update).unwrap();
    assert_eq!(
        (updated.version, updated.description.as_deref()),
        (2, Some("v2"))
    );
    assert_eq!(updated.files, created.files, "files kept when not given");
    assert_eq!(updated.created_ms, created.created_ms);
    let updated = store
        .update_stream("s-1", &StreamUpdate::default())
        .unwrap();
    assert_eq!(updated.version, 3, "every update bumps the version");

    assert!(store.delete_stream("s-1").unwrap());
    assert!(!store.delete_stream("s-1").unwrap());
    assert_eq!(store.get_stream("s-1").unwrap(), None);
    assert_eq!(
        code_of(&store.update_stream("s-1", &update).unwrap_err()),
        "NotFound(Stream)"
    );
}

#[test]
fn invalid_requests_and_missing_objects_are_rejected() {
    let (_dir, store) = setup();
    store
        .put_object("fw", "app.bin", b"x", PutMeta::default())
        .unwrap();
    for missing in [
        file(0, "nope.bin", None),
        file(0, "app.bin", Some("0123456789abcdef0123456789abcdef")),
    ] {
        let err = store
            .create_stream(&new_stream("s", vec![missing]))
            .unwrap_err();
        assert!(code_of(&err).starts_with("NotFound("), "{err}");
    }
    assert!(store.list_streams().unwrap().is_empty());
}

#[test]
fn image_is_the_object_bytes_memory_mapped_and_cached() {
    let (_dir, store) = setup();
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 253) as u8).collect();
    store
        .put_object("fw", "app.bin", &body, PutMeta::default())
        .unwrap();
    store
        .create_stream(&new_stream("s", vec![file(3, "app.bin", None)]))
        .unwrap();

    let image = store.stream_image("s").unwrap().expect("stream exists");
    assert_eq!((image.id.as_str(), image.version), ("s", 1));
    let bytes = image.file(3).expect("file 3");
    assert!(bytes[..] == body[..]);
    assert!(image.file(0).is_none());
    let block = bytes.slice(4096..8192);
    assert_eq!(
        block.as_ptr(),
        bytes[4096..].as_ptr(),
        "blocks are slices of the map"
    );
    #[cfg(target_os = "linux")]
    {
        let mapping = mapping_of(bytes.as_ptr()).expect("pointer lies in a mapping");
        let objects_dir = store.data_dir().join("objects");
        assert!(
            mapping.contains(objects_dir.to_str().unwrap()),
            "the image is a file map of objects/, not a heap copy: {mapping}"
        );
    }
    let again = store.stream_image("s").unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&image, &again),
        "the second call hits the cache"
    );
    assert_eq!(
        store.stream_image("missing").unwrap().map(|i| i.id.clone()),
        None
    );
}

#[test]
fn image_cache_follows_update_and_delete_and_pins_versions() {
    let (_dir, store) = setup();
    let v1 = store
        .put_object("fw", "app.bin", b"version one", PutMeta::default())
        .unwrap();
    store
        .create_stream(&new_stream("s", vec![file(0, "app.bin", None)]))
        .unwrap();
    let first = store.stream_image("s").unwrap().unwrap();

    store
        .put_object("fw", "app.bin", b"version two", PutMeta::default())
        .unwrap();
    let still = store.stream_image("s").unwrap().unwrap();
    assert_eq!(
        &still.file(0).unwrap()[..],
        b"version one",
        "a stream pins its object version"
    );

    let updated = store
        .update_stream(
            "s",
            &StreamUpdate {
                files: Some(vec![file(0, "app.bin", None)]),
                ..StreamUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(updated.version, 2);
    let second = store.stream_image("s").unwrap().unwrap();
    assert!(
        !Arc::ptr_eq(&first, &second),
        "update invalidates the cache"
    );
    assert_eq!(
        (second.version, &second.file(0).unwrap()[..]),
        (2, &b"version two"[..])
    );
    assert_eq!(
        &first.file(0).unwrap()[..],
        b"version one",
        "images already handed out stay valid"
    );

    store
        .update_stream(
            "s",
            &StreamUpdate {
                files: Some(vec![file(0, "app.bin", Some(&v1.version_id))]),
                ..StreamUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        &store.stream_image("s").unwrap().unwrap().file(0).unwrap()[..],
        b"version one"
    );

    store
        .delete_object("fw", "app.bin", Some(&v1.version_id))
        .unwrap();
    store
        .update_stream("s", &StreamUpdate::default())
        .map(|_| ())
        .unwrap();
    let image = store.stream_image("s").unwrap().unwrap();
    assert!(
        image.file(0).is_none(),
        "a deleted pinned version serves nothing"
    );
    assert_eq!(
        image.problem(0),
        Some(otastream_store::PinnedFileProblem::Gone),
        "a deleted pinned version is reported: {image:?}"
    );

    store.delete_stream("s").unwrap();
    assert!(
        store.stream_image("s").unwrap().is_none(),
        "delete invalidates the cache"
    );
}
