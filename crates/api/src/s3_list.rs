//! S3 listings: ListObjectsV2 (prefix, delimiter, continuation) and ListObjectVersions.
//!
//! Continuation tokens are the hex of the last key handed out (opaque to clients, never echoed
//! twice, AWS-API.md §6). `EncodingType` is never echoed, so botocore leaves keys as sent.

use std::sync::Arc;

use otastream_store::{Backend, ObjectInfo};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Response, S3Result};

use crate::s3_convert::{etag, owner, run, timestamp};

const DEFAULT_MAX_KEYS: usize = 1000;

/// One listing row: an object, or a common prefix rolled up at the delimiter.
enum Row {
    Object(ObjectInfo),
    Prefix(String),
}

/// Groups keys at the first `delimiter` after `prefix` (keys arrive in key order).
fn roll_up(infos: Vec<ObjectInfo>, prefix: &str, delimiter: Option<&str>) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::with_capacity(infos.len());
    for info in infos {
        let rest = info.key.get(prefix.len()..).unwrap_or_default();
        let common = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            rest.find(d)
                .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
        });
        match common {
            Some(p) => {
                if !matches!(rows.last(), Some(Row::Prefix(last)) if *last == p) {
                    rows.push(Row::Prefix(p));
                }
            }
            None => rows.push(Row::Object(info)),
        }
    }
    rows
}

fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

/// ListObjectsV2.
pub(crate) async fn list_objects_v2(
    store: &Arc<dyn Backend>,
    input: ListObjectsV2Input,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let max = input.max_keys.map_or(DEFAULT_MAX_KEYS, |m| {
        usize::try_from(m).unwrap_or(0).min(DEFAULT_MAX_KEYS)
    });
    let start = match &input.continuation_token {
        Some(token) => Some(decode_token(token)?),
        None => input.start_after.clone(),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let (bucket, p) = (input.bucket.clone(), prefix.clone());
    // With a delimiter, many keys fold into one row, so read the rest of the prefix and page here.
    let fetch = if delimiter.is_some() { usize::MAX } else { max };
    let (infos, store_truncated) = run(store, move |s| {
        s.list_objects(&bucket, &p, start.as_deref(), fetch)
    })
    .await?;
    let mut rows = roll_up(infos, &prefix, delimiter.as_deref());
    let truncated = store_truncated || rows.len() > max;
    rows.truncate(max);
    let next = match rows.last() {
        Some(Row::Object(info)) if truncated => Some(hex::encode(&info.key)),
        // Skip every key under the rolled-up prefix.
        Some(Row::Prefix(p)) if truncated => Some(hex::encode(format!("{p}{}", char::MAX))),
        _ => None,
    };
    let mut contents = Vec::new();
    let mut prefixes = Vec::new();
    for row in rows {
        match row {
            Row::Object(info) => contents.push(Object {
                key: Some(info.key),
                e_tag: Some(etag(&info.etag)),
                last_modified: Some(timestamp(info.last_modified_ms)),
                size: i64::try_from(info.size).ok(),
                storage_class: Some(ObjectStorageClass::from_static(
                    ObjectStorageClass::STANDARD,
                )),
                ..Default::default()
            }),
            Row::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
        }
    }
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: input.prefix,
        delimiter,
        max_keys: i32::try_from(max).ok(),
        key_count: i32::try_from(contents.len() + prefixes.len()).ok(),
        is_truncated: Some(truncated),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after,
        contents: Some(contents),
        common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
        ..Default::default()
    }))
}

/// ListObjects (v1): the v2 listing with `Marker` as `StartAfter` and `NextMarker` for paging.
pub(crate) async fn list_objects_v1(
    store: &Arc<dyn Backend>,
    input: ListObjectsInput,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let v2 = ListObjectsV2Input {
        bucket: input.bucket,
        delimiter: input.delimiter,
        max_keys: input.max_keys,
        prefix: input.prefix,
        start_after: input.marker.clone(),
        ..Default::default()
    };
    let out = list_objects_v2(store, v2).await?.output;
    let next_marker = out
        .next_continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    Ok(S3Response::new(ListObjectsOutput {
        name: out.name,
        prefix: out.prefix,
        marker: input.marker,
        max_keys: out.max_keys,
        is_truncated: out.is_truncated,
        contents: out.contents,
        common_prefixes: out.common_prefixes,
        delimiter: out.delimiter,
        next_marker,
        ..Default::default()
    }))
}

/// ListObjectVersions (every version and delete marker under the prefix, newest first per key).
pub(crate) async fn list_object_versions(
    store: &Arc<dyn Backend>,
    input: ListObjectVersionsInput,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let (bucket, prefix) = (
        input.bucket.clone(),
        input.prefix.clone().unwrap_or_default(),
    );
    let entries = run(store, move |s| s.list_object_versions(&bucket, &prefix)).await?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for entry in entries {
        let info = entry.info;
        if entry.is_delete_marker {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(entry.is_latest),
                key: Some(info.key),
                last_modified: Some(timestamp(info.last_modified_ms)),
                owner: Some(owner()),
                version_id: Some(info.version_id),
            });
        } else {
            versions.push(ObjectVersion {
                e_tag: Some(etag(&info.etag)),
                is_latest: Some(entry.is_latest),
                key: Some(info.key),
                last_modified: Some(timestamp(info.last_modified_ms)),
                owner: Some(owner()),
                size: i64::try_from(info.size).ok(),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some(info.version_id),
                ..Default::default()
            });
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: input.prefix,
        max_keys: input.max_keys.or(Some(1000)),
        is_truncated: Some(false),
        key_marker: input.key_marker,
        version_id_marker: input.version_id_marker,
        versions: Some(versions),
        delete_markers: (!markers.is_empty()).then_some(markers),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(key: &str) -> ObjectInfo {
        ObjectInfo {
            bucket: "b".into(),
            key: key.into(),
            version_id: "null".into(),
            etag: "\"x\"".into(),
            size: 1,
            last_modified_ms: 0,
            content_type: None,
            user_metadata: Vec::new(),
        }
    }

    #[test]
    fn roll_up_groups_at_the_delimiter_after_the_prefix() {
        let rows = roll_up(
            vec![info("fw/a/1"), info("fw/a/2"), info("fw/b"), info("fw/c/3")],
            "fw/",
            Some("/"),
        );
        let shown: Vec<String> = rows
            .iter()
            .map(|r| match r {
                Row::Object(i) => i.key.clone(),
                Row::Prefix(p) => format!("P:{p}"),
            })
            .collect();
        assert_eq!(shown, ["P:fw/a/", "fw/b", "P:fw/c/"]);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_token(&hex::encode("a/ü")).expect("token"), "a/ü");
        assert!(decode_token("zz").is_err());
    }
}
