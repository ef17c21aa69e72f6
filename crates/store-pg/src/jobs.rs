//! Jobs and job executions as documents; [`JobRepo::save_jobs`] applies a whole batch in one
//! transaction, with each run of saves sent as one multi-row upsert (`unnest` of arrays), so a
//! group commit of thousands of execution updates is a handful of statements.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use otastream_jobs::execution::JobExecution;
use otastream_jobs::model::Job;
use otastream_store::{JobRepo, JobWrite, JobsSnapshot, Kind, StoreResult};

use crate::PgBackend;
use crate::documents::{JOBS, from_json, to_json};
use crate::error::BackendError;

/// Saves collected between two deletes: the last write of each key wins, at its first position.
#[derive(Default)]
struct PendingSaves {
    jobs: Vec<(String, String)>,
    job_index: HashMap<String, usize>,
    executions: Vec<(String, String, String)>,
    execution_index: HashMap<(String, String), usize>,
}

impl PendingSaves {
    fn job(&mut self, job: &Job) -> Result<(), BackendError> {
        let doc = to_json(job)?;
        let id = job.spec.job_id.clone();
        match self.job_index.get(&id) {
            Some(&i) => self.jobs[i].1 = doc,
            None => {
                self.job_index.insert(id.clone(), self.jobs.len());
                self.jobs.push((id, doc));
            }
        }
        Ok(())
    }

    fn execution(&mut self, execution: &JobExecution) -> Result<(), BackendError> {
        let doc = to_json(execution)?;
        let key = (execution.job_id.clone(), execution.thing_name.clone());
        match self.execution_index.get(&key) {
            Some(&i) => self.executions[i].2 = doc,
            None => {
                self.execution_index
                    .insert(key.clone(), self.executions.len());
                self.executions.push((key.0, key.1, doc));
            }
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &Transaction<'_>) -> Result<(), BackendError> {
        if !self.jobs.is_empty() {
            let (ids, docs): (Vec<String>, Vec<String>) = self.jobs.drain(..).unzip();
            let statement = tx
                .prepare_cached(
                    "INSERT INTO jobs (job_id, doc) \
                     SELECT id, doc::jsonb FROM unnest($1::text[], $2::text[]) AS u(id, doc) \
                     ON CONFLICT (job_id) DO UPDATE SET doc = EXCLUDED.doc",
                )
                .await?;
            tx.execute(&statement, &[&ids, &docs]).await?;
            self.job_index.clear();
        }
        if !self.executions.is_empty() {
            let mut jobs = Vec::with_capacity(self.executions.len());
            let mut things = Vec::with_capacity(self.executions.len());
            let mut docs = Vec::with_capacity(self.executions.len());
            for (job, thing, doc) in self.executions.drain(..) {
                jobs.push(job);
                things.push(thing);
                docs.push(doc);
            }
            let statement = tx
                .prepare_cached(
                    "INSERT INTO job_executions (job_id, thing_name, doc) \
                     SELECT job, thing, doc::jsonb FROM unnest($1::text[], $2::text[], $3::text[]) \
                         AS u(job, thing, doc) \
                     ON CONFLICT (job_id, thing_name) DO UPDATE SET doc = EXCLUDED.doc",
                )
                .await?;
            tx.execute(&statement, &[&jobs, &things, &docs]).await?;
            self.execution_index.clear();
        }
        Ok(())
    }
}

impl JobRepo for PgBackend {
    fn load_jobs(&self) -> StoreResult<JobsSnapshot> {
        self.run(async {
            let client = self.pool.get().await?;
            let jobs = JOBS.list(&client).await?;
            let rows = client
                .query("SELECT doc::text FROM job_executions ORDER BY seq", &[])
                .await?;
            let executions = rows
                .iter()
                .map(|row| from_json(Kind::JobExecution, row.try_get(0)?))
                .collect::<Result<_, _>>()?;
            Ok(JobsSnapshot { jobs, executions })
        })
    }

    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let mut pending = PendingSaves::default();
            for write in writes {
                match write {
                    JobWrite::SaveJob(job) => pending.job(job)?,
                    JobWrite::SaveExecution(execution) => pending.execution(execution)?,
                    JobWrite::DeleteJob { job_id } => {
                        pending.flush(&tx).await?;
                        tx.execute("DELETE FROM job_executions WHERE job_id = $1", &[job_id])
                            .await?;
                        tx.execute("DELETE FROM jobs WHERE job_id = $1", &[job_id])
                            .await?;
                    }
                    JobWrite::DeleteExecution { job_id, thing } => {
                        pending.flush(&tx).await?;
                        tx.execute(
                            "DELETE FROM job_executions WHERE job_id = $1 AND thing_name = $2",
                            &[job_id, thing],
                        )
                        .await?;
                    }
                }
            }
            pending.flush(&tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
