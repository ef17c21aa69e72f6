//! Multipart uploads.

use md5::{Digest, Md5};
use otastream_store::ObjectStore as _;
use otastream_store::{MIN_PART_SIZE, PutMeta, StoreError};

use crate::{code_of, files_in, store_with_bucket, typed};

fn part(fill: u8, len: u64) -> Vec<u8> {
    vec![fill; usize::try_from(len).unwrap()]
}

#[test]
fn complete_concatenates_listed_parts_with_an_md5_of_md5s_etag() {
    let (_dir, store) = store_with_bucket("b");
    let upload = store
        .create_multipart("b", "fw/big.bin", typed("application/octet-stream"))
        .unwrap();
    let (p1, p2, p3) = (
        part(1, MIN_PART_SIZE),
        part(2, MIN_PART_SIZE),
        part(3, 1000),
    );
    // Uploaded out of order, one part twice (the second upload wins), one part never listed.
    let e3 = store.upload_part(&upload, 3, &p3).unwrap();
    store.upload_part(&upload, 1, b"stale").unwrap();
    let e1 = store.upload_part(&upload, 1, &p1).unwrap();
    let e2 = store.upload_part(&upload, 2, &p2).unwrap();
    store.upload_part(&upload, 9, b"never listed").unwrap();
    assert_eq!(e3, format!("\"{}\"", hex::encode(Md5::digest(&p3))));
    assert_eq!(
        files_in(&store, "parts"),
        4,
        "the replaced part's file is gone"
    );

    let info = store
        .complete_multipart(
            &upload,
            &[(1, e1.clone()), (2, e2.clone()), (3, e3.clone())],
        )
        .unwrap();
    let mut digests = Vec::new();
    for p in [&p1, &p2, &p3] {
        digests.extend_from_slice(&Md5::digest(p));
    }
    assert_eq!(
        info.etag,
        format!("\"{}-3\"", hex::encode(Md5::digest(&digests)))
    );
    assert_eq!(info.size, 2 * MIN_PART_SIZE + 1000);
    assert_eq!(
        info.content_type.as_deref(),
        Some("application/octet-stream")
    );

    let object = store.get_object("b", "fw/big.bin", None, None).unwrap();
    assert_eq!(object.info, info);
    let expected: Vec<u8> = [p1, p2, p3].concat();
    assert!(
        object.data[..] == expected[..],
        "object bytes are the parts in order"
    );
    assert_eq!(
        files_in(&store, "parts"),
        0,
        "every part file, listed or not, is removed"
    );
    assert_eq!(
        code_of(&store.upload_part(&upload, 1, b"late").unwrap_err()),
        "NotFound(Upload)"
    );
    assert_eq!(
        code_of(&store.complete_multipart(&upload, &[(1, e1)]).unwrap_err()),
        "NotFound(Upload)"
    );
}

#[test]
fn a_single_small_part_is_a_valid_upload() {
    let (_dir, store) = store_with_bucket("b");
    let upload = store
        .create_multipart("b", "small", PutMeta::default())
        .unwrap();
    let etag = store.upload_part(&upload, 1, b"tiny").unwrap();
    let info = store
        .complete_multipart(&upload, &[(1, etag.trim_matches('"').to_owned())])
        .unwrap();
    assert!(info.etag.ends_with("-1\""), "{}", info.etag);
    assert_eq!(
        &store.get_object("b", "small", None, None).unwrap().data[..],
        b"tiny"
    );
}

#[test]
fn bad_part_lists_are_rejected_and_leave_the_upload_intact() {
    let (_dir, store) = store_with_bucket("b");
    let upload = store
        .create_multipart("b", "k", PutMeta::default())
        .unwrap();
    let e1 = store
        .upload_part(&upload, 1, &part(1, MIN_PART_SIZE))
        .unwrap();
    let e2 = store.upload_part(&upload, 2, b"short").unwrap();
    let e3 = store.upload_part(&upload, 3, b"last").unwrap();

    let cases: [(&[(u32, String)], &str); 5] = [
        (&[], "Invalid(NoParts)"),
        (&[(2, e2.clone()), (1, e1.clone())], "Invalid(PartOrder)"),
        (&[(1, e1.clone()), (1, e1.clone())], "Invalid(PartOrder)"),
        (&[(1, e1.clone()), (4, e3.clone())], "Invalid(PartMissing)"),
        (&[(1, e1.clone()), (2, e3.clone())], "Invalid(PartMissing)"),
    ];
    for (parts, code) in cases {
        let err = store.complete_multipart(&upload, parts).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(code_of(&err), code, "{parts:?}");
    }
    let too_small = store
        .complete_multipart(&upload, &[(1, e1.clone()), (2, e2), (3, e3)])
        .unwrap_err();
    assert_eq!(code_of(&too_small), "Invalid(PartTooSmall)");
    assert_eq!(
        code_of(&store.upload_part(&upload, 0, b"x").unwrap_err()),
        "Invalid(PartNumber)"
    );
    assert_eq!(
        code_of(&store.upload_part(&upload, 10_001, b"x").unwrap_err()),
        "Invalid(PartNumber)"
    );

    assert_eq!(
        code_of(&store.head_object("b", "k", None).unwrap_err()),
        "NotFound(Object)"
    );
    assert_eq!(
        files_in(&store, "objects"),
        0,
        "failed completions install nothing"
    );
    store.complete_multipart(&upload, &[(1, e1)]).unwrap();
    assert_eq!(
        store.head_object("b", "k", None).unwrap().size,
        MIN_PART_SIZE
    );
}

#[test]
fn abort_removes_parts_and_unknown_uploads_are_errors() {
    let (_dir, store) = store_with_bucket("b");
    assert_eq!(
        code_of(
            &store
                .create_multipart("nope", "k", PutMeta::default())
                .unwrap_err()
        ),
        "NotFound(Bucket)"
    );
    let upload = store
        .create_multipart("b", "k", PutMeta::default())
        .unwrap();
    store.upload_part(&upload, 1, b"a").unwrap();
    store.upload_part(&upload, 2, b"b").unwrap();
    store.abort_multipart(&upload).unwrap();
    assert_eq!(files_in(&store, "parts"), 0);
    assert_eq!(
        code_of(&store.abort_multipart(&upload).unwrap_err()),
        "NotFound(Upload)"
    );
    assert_eq!(
        code_of(&store.upload_part("no-such-upload", 1, b"x").unwrap_err()),
        "NotFound(Upload)"
    );

    let pending = store
        .create_multipart("b", "k2", PutMeta::default())
        .unwrap();
    store.upload_part(&pending, 1, b"x").unwrap();
    store.delete_bucket("b").unwrap();
    assert_eq!(
        files_in(&store, "parts"),
        0,
        "deleting a bucket aborts its uploads"
    );
    assert_eq!(
        code_of(&store.upload_part(&pending, 1, b"x").unwrap_err()),
        "NotFound(Upload)"
    );
}
