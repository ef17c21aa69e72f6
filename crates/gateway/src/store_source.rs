//! [`StreamSource`] over any storage backend's [`StreamRepo`] (`otastream_store::Store`, or a
//! `dyn Backend`).
//!
//! Block requests hit the store's stream-image cache (a mutex-guarded map of mmap'd images), so
//! after a stream's first request they cost a map lookup and two reference-count bumps; the
//! store invalidates the cache on update and delete, and the next request sees the new version.

use otastream_store::{Backend, PinnedFileProblem, Store, StreamRepo};

use crate::streams::{FileLookup, SourceError, StreamDescription, StreamSource};

impl StreamSource for Store {
    fn file(&self, stream_id: &str, file_id: u8) -> Result<FileLookup, SourceError> {
        file_of(self, stream_id, file_id)
    }

    fn describe(&self, stream_id: &str) -> Result<Option<StreamDescription>, SourceError> {
        describe(self, stream_id)
    }
}

impl StreamSource for dyn Backend {
    fn file(&self, stream_id: &str, file_id: u8) -> Result<FileLookup, SourceError> {
        file_of(self, stream_id, file_id)
    }

    fn describe(&self, stream_id: &str) -> Result<Option<StreamDescription>, SourceError> {
        describe(self, stream_id)
    }
}

fn file_of(
    repo: &(impl StreamRepo + ?Sized),
    stream_id: &str,
    file_id: u8,
) -> Result<FileLookup, SourceError> {
    {
        let image = repo
            .stream_image(stream_id)
            .map_err(|e| SourceError(e.to_string()))?;
        Ok(match image {
            None => FileLookup::StreamNotFound,
            Some(image) => match (image.file(file_id), image.problem(file_id)) {
                (Some(data), _) => FileLookup::Found {
                    version: image.version,
                    data: data.clone(),
                },
                (None, Some(PinnedFileProblem::Changed)) => FileLookup::Changed {
                    version: image.version,
                },
                (None, Some(PinnedFileProblem::Gone)) => FileLookup::Gone {
                    version: image.version,
                },
                (None, None) => FileLookup::FileNotFound {
                    version: image.version,
                },
            },
        })
    }
}

fn describe(
    repo: &(impl StreamRepo + ?Sized),
    stream_id: &str,
) -> Result<Option<StreamDescription>, SourceError> {
    {
        let record = repo
            .get_stream(stream_id)
            .map_err(|e| SourceError(e.to_string()))?;
        Ok(record.map(|r| {
            let mut files: Vec<(u8, u64)> = r.files.iter().map(|f| (f.file_id, f.size)).collect();
            files.sort_unstable();
            StreamDescription {
                version: r.version,
                description: r.description.unwrap_or_default(),
                files,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otastream_store::{NewStream, ObjectStore, PutMeta, StreamFile, StreamUpdate};

    #[test]
    fn store_streams_are_served_and_updates_bump_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.create_bucket("fw").expect("bucket");
        store
            .put_object("fw", "a.bin", b"0123456789", PutMeta::default())
            .expect("put");
        store
            .put_object("fw", "b.bin", b"abc", PutMeta::default())
            .expect("put");
        let file = |id: u8, key: &str| StreamFile {
            file_id: id,
            bucket: "fw".into(),
            key: key.into(),
            version_id: None,
        };
        store
            .create_stream(&NewStream {
                id: "s1".into(),
                description: Some("d".into()),
                role_arn: None,
                files: vec![file(3, "a.bin")],
            })
            .expect("stream");

        assert_eq!(store.file("nope", 0), Ok(FileLookup::StreamNotFound));
        assert_eq!(
            store.file("s1", 0),
            Ok(FileLookup::FileNotFound { version: 1 })
        );
        let Ok(FileLookup::Found { version: 1, data }) = store.file("s1", 3) else {
            panic!("file 3")
        };
        assert_eq!(&data[..], b"0123456789");

        let update = StreamUpdate {
            description: None,
            role_arn: None,
            files: Some(vec![file(3, "b.bin"), file(1, "a.bin")]),
        };
        store.update_stream("s1", &update).expect("update");
        let Ok(FileLookup::Found { version: 2, data }) = store.file("s1", 3) else {
            panic!("file 3 v2")
        };
        assert_eq!(&data[..], b"abc");
        let d = store.describe("s1").expect("describe").expect("exists");
        assert_eq!((d.version, d.files), (2, vec![(1, 10), (3, 3)]));
        assert_eq!(store.describe("nope"), Ok(None));
    }

    /// Issue 16's mixed image: a stream on a key of an unversioned bucket, the key overwritten.
    /// The stream keeps its version, and its file answers "changed" (ETagMismatch), never the
    /// new bytes; a deleted pinned version answers "gone" (ResourceNotFound).
    #[test]
    fn overwritten_or_deleted_pinned_bytes_are_never_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.create_bucket("fw").expect("bucket");
        for key in ["a.bin", "b.bin"] {
            store
                .put_object("fw", key, b"image A", PutMeta::default())
                .expect("put");
        }
        let file = |id: u8, key: &str| StreamFile {
            file_id: id,
            bucket: "fw".into(),
            key: key.into(),
            version_id: None,
        };
        store
            .create_stream(&NewStream {
                id: "s".into(),
                description: None,
                role_arn: None,
                files: vec![file(0, "a.bin"), file(1, "b.bin")],
            })
            .expect("stream");
        assert!(matches!(
            store.file("s", 0),
            Ok(FileLookup::Found { version: 1, .. })
        ));

        store
            .put_object("fw", "a.bin", b"image B!", PutMeta::default())
            .expect("overwrite");
        assert_eq!(store.file("s", 0), Ok(FileLookup::Changed { version: 1 }));
        store.delete_object("fw", "b.bin", None).expect("delete");
        assert_eq!(store.file("s", 1), Ok(FileLookup::Gone { version: 1 }));

        // After a restart (a fresh cache) the same answers: the check is by content.
        drop(store);
        let store = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.file("s", 0), Ok(FileLookup::Changed { version: 1 }));
        assert_eq!(store.file("s", 1), Ok(FileLookup::Gone { version: 1 }));
        // Writing the same bytes back makes the pinned file whole again.
        store
            .put_object("fw", "a.bin", b"image A", PutMeta::default())
            .expect("restore");
        let Ok(FileLookup::Found { data, .. }) = store.file("s", 0) else {
            panic!("restored bytes are served")
        };
        assert_eq!(&data[..], b"image A");
    }
}
