//! Throughput of job-execution writes on the PostgreSQL backend, the way the jobs driver
//! group-commits them: batches of `BATCH` execution saves, each batch one `save_jobs` call (one
//! transaction). Starts its own PostgreSQL and SeaweedFS (testkit). Prints updates per second.
//!
//! `cargo bench -p otastream-store-pg --bench save_jobs` (optionally `-- <executions> <batch>`).

use std::time::Instant;

use otastream_jobs::execution::{ExecutionStatus, JobExecution};
use otastream_store::{JobRepo, JobWrite};
use otastream_store_pg::{PgBackend, PgConfig, S3Location};
use otastream_testkit::{Postgres, SeaweedFs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let executions = args.next().unwrap_or(20_000);
    let batch = args.next().unwrap_or(500).max(1);
    let pg = Postgres::start()?;
    let s3 = SeaweedFs::start()?;
    s3.create_bucket("bench-blobs")?;
    let cache = tempfile::tempdir()?;
    let backend = PgBackend::connect(&PgConfig {
        database_url: pg.create_database("bench")?,
        objects: S3Location {
            bucket: "bench-blobs".into(),
            endpoint: Some(s3.endpoint()),
            region: "us-east-1".into(),
            access_key_id: s3.access_key_id().into(),
            secret_access_key: s3.secret_access_key().into(),
        },
        cache_dir: cache.path().to_owned(),
        pool_size: 4,
    })?;
    let mut rows: Vec<JobExecution> = (0..executions)
        .map(|i| JobExecution::queued("bench", &format!("bench-{i}"), 1, 1))
        .collect();
    let run = |label: &str, rows: &[JobExecution]| -> Result<(), Box<dyn std::error::Error>> {
        let started = Instant::now();
        for chunk in rows.chunks(batch) {
            let writes: Vec<JobWrite<'_>> = chunk.iter().map(JobWrite::SaveExecution).collect();
            backend.save_jobs(&writes)?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{label}: {} executions in batches of {batch}: {secs:.3} s, {:.0} updates/s",
            rows.len(),
            rows.len() as f64 / secs
        );
        Ok(())
    };
    run("insert (QUEUED)", &rows)?;
    for row in &mut rows {
        row.status = ExecutionStatus::InProgress;
        row.version_number += 1;
    }
    run("update (IN_PROGRESS)", &rows)?;
    for row in &mut rows {
        row.status = ExecutionStatus::Succeeded;
        row.version_number += 1;
    }
    run("update (SUCCEEDED)", &rows)?;
    let loaded = backend.load_jobs()?;
    assert_eq!(
        loaded.executions.len(),
        executions,
        "every execution stored once"
    );
    assert!(
        loaded
            .executions
            .iter()
            .all(|e| e.status == ExecutionStatus::Succeeded)
    );
    Ok(())
}
