//! The control-plane repositories of the embedded backend: one SQLite table per record kind
//! (`things`, `thing_groups`, `group_members`, `jobs`, `job_executions`, `ota_updates`,
//! `signing_profiles`, `signing_jobs`, `certificates`), each row a typed record as JSON text keyed
//! by its id, listed in insertion order (`seq`).

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::db::{self, json_column};
use crate::{
    Backend, Certificate, CertificateRepo, JobRepo, JobWrite, JobsSnapshot, Kind, OtaRepo,
    OtaUpdate, SignerRepo, SigningJob, SigningProfile, Store, StoreError, StoreResult, Thing,
    ThingGroup, ThingRepo,
};

/// One record table: its name and the kind its rows are.
#[derive(Clone, Copy)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

pub(crate) const THINGS: Table = Table {
    name: "things",
    kind: Kind::Thing,
};
pub(crate) const THING_GROUPS: Table = Table {
    name: "thing_groups",
    kind: Kind::ThingGroup,
};
pub(crate) const JOBS: Table = Table {
    name: "jobs",
    kind: Kind::Job,
};
pub(crate) const OTA_UPDATES: Table = Table {
    name: "ota_updates",
    kind: Kind::OtaUpdate,
};
pub(crate) const SIGNING_PROFILES: Table = Table {
    name: "signing_profiles",
    kind: Kind::SigningProfile,
};
pub(crate) const SIGNING_JOBS: Table = Table {
    name: "signing_jobs",
    kind: Kind::SigningJob,
};
pub(crate) const CERTIFICATES: Table = Table {
    name: "certificates",
    kind: Kind::Certificate,
};

/// How a write treats an existing row.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// `AlreadyExists` when present.
    Insert,
    /// Replace, keeping the list position.
    Upsert,
    /// Replace; `NotFound` when absent.
    Update,
}

impl Table {
    pub(crate) fn write<T: Serialize>(
        self,
        conn: &Connection,
        id: &str,
        record: &T,
        mode: Write,
    ) -> StoreResult<()> {
        let body = serde_json::to_string(record)?;
        let sql = match mode {
            Write::Insert => format!(
                "INSERT INTO {} (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                self.name
            ),
            Write::Upsert => format!(
                "INSERT INTO {} (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                self.name
            ),
            Write::Update => format!("UPDATE {} SET body = ?2 WHERE id = ?1", self.name),
        };
        let changed = conn.prepare_cached(&sql)?.execute(params![id, body])?;
        match (mode, changed) {
            (Write::Insert, 0) => Err(StoreError::already_exists(self.kind, id)),
            (Write::Update, 0) => Err(StoreError::not_found(self.kind, id)),
            _ => Ok(()),
        }
    }

    pub(crate) fn get<T: DeserializeOwned>(
        self,
        conn: &Connection,
        id: &str,
    ) -> StoreResult<Option<T>> {
        let sql = format!("SELECT body FROM {} WHERE id = ?1", self.name);
        Ok(conn
            .prepare_cached(&sql)?
            .query_row([id], |row| json_column(row, 0))
            .optional()?)
    }

    pub(crate) fn list<T: DeserializeOwned>(self, conn: &Connection) -> StoreResult<Vec<T>> {
        let sql = format!("SELECT body FROM {} ORDER BY seq", self.name);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |row| json_column(row, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(crate) fn delete(self, conn: &Connection, id: &str) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE id = ?1", self.name);
        Ok(conn.prepare_cached(&sql)?.execute([id])? > 0)
    }
}

impl Backend for Store {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

impl ThingRepo for Store {
    fn create_thing(&self, thing: &Thing) -> StoreResult<()> {
        THINGS.write(&self.conn(), &thing.name, thing, Write::Insert)
    }

    fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>> {
        THINGS.get(&self.conn(), name)
    }

    fn list_things(&self) -> StoreResult<Vec<Thing>> {
        THINGS.list(&self.conn())
    }

    fn delete_thing(&self, name: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        tx.execute("DELETE FROM group_members WHERE thing = ?1", [name])?;
        tx.execute("DELETE FROM thing_principals WHERE thing = ?1", [name])?;
        let existed = THINGS.delete(&tx, name)?;
        tx.commit()?;
        Ok(existed)
    }

    fn create_thing_group(&self, group: &ThingGroup) -> StoreResult<()> {
        THING_GROUPS.write(&self.conn(), &group.name, group, Write::Insert)
    }

    fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>> {
        THING_GROUPS.get(&self.conn(), name)
    }

    fn list_thing_groups(&self) -> StoreResult<Vec<ThingGroup>> {
        THING_GROUPS.list(&self.conn())
    }

    fn add_thing_to_group(&self, group: &str, thing: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        if THING_GROUPS.get::<ThingGroup>(&tx, group)?.is_none() {
            return Err(StoreError::not_found(Kind::ThingGroup, group));
        }
        if THINGS.get::<Thing>(&tx, thing)?.is_none() {
            return Err(StoreError::not_found(Kind::Thing, thing));
        }
        tx.execute(
            "INSERT INTO group_members (group_name, thing) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![group, thing],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "DELETE FROM group_members WHERE group_name = ?1 AND thing = ?2",
            params![group, thing],
        )? > 0)
    }

    fn things_in_group(&self, group: &str) -> StoreResult<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT thing FROM group_members WHERE group_name = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([group], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl JobRepo for Store {
    fn load_jobs(&self) -> StoreResult<JobsSnapshot> {
        let conn = self.conn();
        let executions = {
            let mut stmt = conn.prepare_cached("SELECT body FROM job_executions ORDER BY seq")?;
            let rows = stmt.query_map([], |row| json_column(row, 0))?;
            rows.collect::<Result<_, _>>()?
        };
        Ok(JobsSnapshot {
            jobs: JOBS.list(&conn)?,
            executions,
        })
    }

    fn save_jobs(&self, writes: &[JobWrite<'_>]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        for write in writes {
            match write {
                JobWrite::SaveJob(job) => JOBS.write(&tx, &job.spec.job_id, job, Write::Upsert)?,
                JobWrite::SaveExecution(e) => {
                    tx.prepare_cached(
                        "INSERT INTO job_executions (job_id, thing, body) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (job_id, thing) DO UPDATE SET body = excluded.body",
                    )?
                    .execute(params![
                        e.job_id,
                        e.thing_name,
                        serde_json::to_string(e)?
                    ])?;
                }
                JobWrite::DeleteJob { job_id } => {
                    tx.execute("DELETE FROM job_executions WHERE job_id = ?1", [job_id])?;
                    JOBS.delete(&tx, job_id)?;
                }
                JobWrite::DeleteExecution { job_id, thing } => {
                    tx.execute(
                        "DELETE FROM job_executions WHERE job_id = ?1 AND thing = ?2",
                        params![job_id, thing],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl OtaRepo for Store {
    fn create_ota_update(&self, update: &OtaUpdate) -> StoreResult<()> {
        OTA_UPDATES.write(&self.conn(), &update.id, update, Write::Insert)
    }

    fn get_ota_update(&self, id: &str) -> StoreResult<Option<OtaUpdate>> {
        OTA_UPDATES.get(&self.conn(), id)
    }

    fn update_ota_update(&self, update: &OtaUpdate) -> StoreResult<()> {
        OTA_UPDATES.write(&self.conn(), &update.id, update, Write::Update)
    }

    fn list_ota_updates(&self) -> StoreResult<Vec<OtaUpdate>> {
        OTA_UPDATES.list(&self.conn())
    }

    fn delete_ota_update(&self, id: &str) -> StoreResult<bool> {
        OTA_UPDATES.delete(&self.conn(), id)
    }
}

impl SignerRepo for Store {
    fn put_signing_profile(&self, profile: &SigningProfile) -> StoreResult<()> {
        SIGNING_PROFILES.write(&self.conn(), &profile.name, profile, Write::Upsert)
    }

    fn get_signing_profile(&self, name: &str) -> StoreResult<Option<SigningProfile>> {
        SIGNING_PROFILES.get(&self.conn(), name)
    }

    fn list_signing_profiles(&self) -> StoreResult<Vec<SigningProfile>> {
        SIGNING_PROFILES.list(&self.conn())
    }

    fn create_signing_job(&self, job: &SigningJob) -> StoreResult<()> {
        SIGNING_JOBS.write(&self.conn(), &job.id, job, Write::Insert)
    }

    fn get_signing_job(&self, id: &str) -> StoreResult<Option<SigningJob>> {
        SIGNING_JOBS.get(&self.conn(), id)
    }

    fn update_signing_job(&self, job: &SigningJob) -> StoreResult<()> {
        SIGNING_JOBS.write(&self.conn(), &job.id, job, Write::Update)
    }

    fn list_signing_jobs(&self) -> StoreResult<Vec<SigningJob>> {
        SIGNING_JOBS.list(&self.conn())
    }
}

impl CertificateRepo for Store {
    fn put_certificate(&self, cert: &Certificate) -> StoreResult<()> {
        CERTIFICATES.write(&self.conn(), &cert.id, cert, Write::Upsert)
    }

    fn get_certificate(&self, id: &str) -> StoreResult<Option<Certificate>> {
        CERTIFICATES.get(&self.conn(), id)
    }

    fn list_certificates(&self) -> StoreResult<Vec<Certificate>> {
        CERTIFICATES.list(&self.conn())
    }

    fn delete_certificate(&self, id: &str) -> StoreResult<bool> {
        CERTIFICATES.delete(&self.conn(), id)
    }
}
