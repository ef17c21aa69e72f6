//! [`ObjectStore`] and [`StreamRepo`] of the embedded backend, over the SQLite tables and local
//! files of `buckets.rs`, `objects.rs`, `multipart.rs` and `streams.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::{
    BucketInfo, ByteRange, DeleteOutcome, NewStream, Object, ObjectInfo, ObjectStore, PutMeta,
    Store, StoreResult, StreamImage, StreamRecord, StreamRepo, StreamUpdate, VersionEntry,
    Versioning, files,
};

impl ObjectStore for Store {
    fn create_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.do_create_bucket(bucket)
    }

    fn delete_bucket(&self, bucket: &str) -> StoreResult<()> {
        self.do_delete_bucket(bucket)
    }

    fn bucket_exists(&self, bucket: &str) -> StoreResult<bool> {
        self.do_bucket_exists(bucket)
    }

    fn list_buckets(&self) -> StoreResult<Vec<BucketInfo>> {
        self.do_list_buckets()
    }

    fn set_bucket_versioning(&self, bucket: &str, versioning: Versioning) -> StoreResult<()> {
        self.do_set_bucket_versioning(bucket, versioning)
    }

    fn bucket_versioning(&self, bucket: &str) -> StoreResult<Versioning> {
        self.do_bucket_versioning(bucket)
    }

    fn staging_path(&self) -> PathBuf {
        files::tmp_path(self.data_dir())
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo> {
        let info = self.do_put_object(bucket, key, data, meta)?;
        self.forget_images_of(bucket, key);
        Ok(info)
    }

    fn put_object_from_file(
        &self,
        bucket: &str,
        key: &str,
        staged: &Path,
        meta: PutMeta,
    ) -> StoreResult<ObjectInfo> {
        let info = self.do_put_object_from_file(bucket, key, staged, meta)?;
        self.forget_images_of(bucket, key);
        Ok(info)
    }

    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        range: Option<ByteRange>,
    ) -> StoreResult<Object> {
        let mut object = self.do_get_object(bucket, key, version_id)?;
        if let Some(range) = range {
            let r = range.resolve(object.data.len() as u64)?;
            // `resolve` keeps the range inside the mapped length, so these fit in usize.
            let (start, end) = (
                usize::try_from(r.start).unwrap_or(usize::MAX),
                usize::try_from(r.end).unwrap_or(usize::MAX),
            );
            object.data = object.data.slice(start..end);
            object.range = Some(r);
        }
        Ok(object)
    }

    fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<ObjectInfo> {
        self.do_head_object(bucket, key, version_id)
    }

    fn open_image(&self, bucket: &str, key: &str, version_id: &str) -> StoreResult<Bytes> {
        Ok(self.do_get_object(bucket, key, Some(version_id))?.data)
    }

    fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> StoreResult<DeleteOutcome> {
        let outcome = self.do_delete_object(bucket, key, version_id)?;
        self.forget_images_of(bucket, key);
        Ok(outcome)
    }

    fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> StoreResult<(Vec<ObjectInfo>, bool)> {
        self.do_list_objects(bucket, prefix, start_after, max)
    }

    fn list_object_versions(&self, bucket: &str, prefix: &str) -> StoreResult<Vec<VersionEntry>> {
        self.do_list_object_versions(bucket, prefix)
    }

    fn create_multipart(&self, bucket: &str, key: &str, meta: PutMeta) -> StoreResult<String> {
        self.do_create_multipart(bucket, key, meta)
    }

    fn upload_part(&self, upload_id: &str, part_number: u32, data: &[u8]) -> StoreResult<String> {
        self.do_upload_part(upload_id, part_number, data)
    }

    fn complete_multipart(
        &self,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> StoreResult<ObjectInfo> {
        let info = self.do_complete_multipart(upload_id, parts)?;
        self.forget_images_of(&info.bucket, &info.key);
        Ok(info)
    }

    fn abort_multipart(&self, upload_id: &str) -> StoreResult<()> {
        self.do_abort_multipart(upload_id)
    }
}

impl StreamRepo for Store {
    fn create_stream(&self, stream: &NewStream) -> StoreResult<StreamRecord> {
        self.do_create_stream(stream)
    }

    fn get_stream(&self, id: &str) -> StoreResult<Option<StreamRecord>> {
        self.do_get_stream(id)
    }

    fn list_streams(&self) -> StoreResult<Vec<StreamRecord>> {
        self.do_list_streams()
    }

    fn update_stream(&self, id: &str, update: &StreamUpdate) -> StoreResult<StreamRecord> {
        self.do_update_stream(id, update)
    }

    fn delete_stream(&self, id: &str) -> StoreResult<bool> {
        self.do_delete_stream(id)
    }

    fn stream_image(&self, id: &str) -> StoreResult<Option<Arc<StreamImage>>> {
        self.do_stream_image(id)
    }
}
