-- Buckets, object versions (bytes in the S3 bucket as immutable blobs), multipart uploads.
CREATE TABLE buckets (
    name        text PRIMARY KEY,
    created_ms  bigint NOT NULL,
    versioning  text NOT NULL DEFAULT 'unversioned'
        CHECK (versioning IN ('unversioned', 'enabled', 'suspended'))
);

-- One row per version or delete marker; `seq` orders the versions of a key (newest = largest).
CREATE TABLE object_versions (
    seq               bigserial PRIMARY KEY,
    bucket            text NOT NULL REFERENCES buckets (name),
    key               text COLLATE "C" NOT NULL,  -- listings sort by UTF-8 bytes, as S3 does
    version_id        text NOT NULL,
    is_delete_marker  boolean NOT NULL,
    etag              text NOT NULL,
    size              bigint NOT NULL,
    last_modified_ms  bigint NOT NULL,
    content_type      text,
    user_metadata     jsonb NOT NULL DEFAULT '[]',
    blob              text,   -- the S3 key holding the bytes; NULL for a delete marker
    sha256            bytea,  -- of the bytes (the image cache's key); NULL for a delete marker
    UNIQUE (bucket, key, version_id)
);
CREATE INDEX object_versions_newest ON object_versions (bucket, key, seq DESC);

CREATE TABLE multipart_uploads (
    upload_id      text PRIMARY KEY,
    bucket         text NOT NULL REFERENCES buckets (name),
    key            text NOT NULL,
    content_type   text,
    user_metadata  jsonb NOT NULL DEFAULT '[]',
    created_ms     bigint NOT NULL
);

CREATE TABLE multipart_parts (
    upload_id    text NOT NULL REFERENCES multipart_uploads (upload_id) ON DELETE CASCADE,
    part_number  integer NOT NULL,
    etag         text NOT NULL,
    size         bigint NOT NULL,
    blob         text NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);

-- Blobs no row references any more. They are deleted from S3 after the commit that orphaned them;
-- a row is left here when that delete failed (S3 down) and is retried later.
CREATE TABLE orphan_blobs (
    blob      text PRIMARY KEY,
    since_ms  bigint NOT NULL
);
