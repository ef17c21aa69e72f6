//! Things and thing groups, OTA updates, signer profiles and jobs, ACM certificates: the
//! document tables of `documents.rs`, plus group membership rows.

use otastream_store::{
    Certificate, CertificateRepo, Kind, OtaRepo, OtaUpdate, SignerRepo, SigningJob, SigningProfile,
    StoreError, StoreResult, Thing, ThingGroup, ThingRepo,
};

use crate::PgBackend;
use crate::documents::{
    CERTIFICATES, OTA_UPDATES, SIGNING_JOBS, SIGNING_PROFILES, THING_GROUPS, THINGS,
};

impl ThingRepo for PgBackend {
    fn create_thing(&self, thing: &Thing) -> StoreResult<()> {
        self.run(async {
            THINGS
                .create(&self.pool.get().await?, &thing.name, thing)
                .await
        })
    }

    fn get_thing(&self, name: &str) -> StoreResult<Option<Thing>> {
        self.run(async { THINGS.get(&self.pool.get().await?, name).await })
    }

    fn list_things(&self) -> StoreResult<Vec<Thing>> {
        self.run(async { THINGS.list(&self.pool.get().await?).await })
    }

    fn delete_thing(&self, name: &str) -> StoreResult<bool> {
        // Memberships go with it (ON DELETE CASCADE), in the same statement.
        self.run(async { THINGS.delete(&self.pool.get().await?, name).await })
    }

    fn create_thing_group(&self, group: &ThingGroup) -> StoreResult<()> {
        self.run(async {
            THING_GROUPS
                .create(&self.pool.get().await?, &group.name, group)
                .await
        })
    }

    fn get_thing_group(&self, name: &str) -> StoreResult<Option<ThingGroup>> {
        self.run(async { THING_GROUPS.get(&self.pool.get().await?, name).await })
    }

    fn list_thing_groups(&self) -> StoreResult<Vec<ThingGroup>> {
        self.run(async { THING_GROUPS.list(&self.pool.get().await?).await })
    }

    fn add_thing_to_group(&self, group: &str, thing: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let group_found = tx
                .query_opt("SELECT 1 FROM thing_groups WHERE name = $1 FOR SHARE", &[&group])
                .await?;
            if group_found.is_none() {
                return Err(StoreError::not_found(Kind::ThingGroup, group).into());
            }
            let thing_found = tx
                .query_opt("SELECT 1 FROM things WHERE name = $1 FOR SHARE", &[&thing])
                .await?;
            if thing_found.is_none() {
                return Err(StoreError::not_found(Kind::Thing, thing).into());
            }
            tx.execute(
                "INSERT INTO thing_group_members (group_name, thing_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&group, &thing],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn remove_thing_from_group(&self, group: &str, thing: &str) -> StoreResult<bool> {
        self.run(async {
            let client = self.pool.get().await?;
            let removed = client
                .execute(
                    "DELETE FROM thing_group_members WHERE group_name = $1 AND thing_name = $2",
                    &[&group, &thing],
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn things_in_group(&self, group: &str) -> StoreResult<Vec<String>> {
        self.run(async {
            let client = self.pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT thing_name FROM thing_group_members WHERE group_name = $1 ORDER BY seq",
                )
                .await?;
            let rows = client.query(&statement, &[&group]).await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get(0))
                .collect::<Result<_, _>>()?)
        })
    }
}

impl OtaRepo for PgBackend {
    fn create_ota_update(&self, update: &OtaUpdate) -> StoreResult<()> {
        self.run(async {
            OTA_UPDATES
                .create(&self.pool.get().await?, &update.id, update)
                .await
        })
    }

    fn get_ota_update(&self, id: &str) -> StoreResult<Option<OtaUpdate>> {
        self.run(async { OTA_UPDATES.get(&self.pool.get().await?, id).await })
    }

    fn update_ota_update(&self, update: &OtaUpdate) -> StoreResult<()> {
        self.run(async {
            OTA_UPDATES
                .replace(&self.pool.get().await?, &update.id, update)
                .await
        })
    }

    fn list_ota_updates(&self) -> StoreResult<Vec<OtaUpdate>> {
        self.run(async { OTA_UPDATES.list(&self.pool.get().await?).await })
    }

    fn delete_ota_update(&self, id: &str) -> StoreResult<bool> {
        self.run(async { OTA_UPDATES.delete(&self.pool.get().await?, id).await })
    }
}

impl SignerRepo for PgBackend {
    fn put_signing_profile(&self, profile: &SigningProfile) -> StoreResult<()> {
        self.run(async {
            SIGNING_PROFILES
                .put(&self.pool.get().await?, &profile.name, profile)
                .await
        })
    }

    fn get_signing_profile(&self, name: &str) -> StoreResult<Option<SigningProfile>> {
        self.run(async { SIGNING_PROFILES.get(&self.pool.get().await?, name).await })
    }

    fn list_signing_profiles(&self) -> StoreResult<Vec<SigningProfile>> {
        self.run(async { SIGNING_PROFILES.list(&self.pool.get().await?).await })
    }

    fn create_signing_job(&self, job: &SigningJob) -> StoreResult<()> {
        self.run(async {
            SIGNING_JOBS
                .create(&self.pool.get().await?, &job.id, job)
                .await
        })
    }

    fn get_signing_job(&self, id: &str) -> StoreResult<Option<SigningJob>> {
        self.run(async { SIGNING_JOBS.get(&self.pool.get().await?, id).await })
    }

    fn update_signing_job(&self, job: &SigningJob) -> StoreResult<()> {
        self.run(async {
            SIGNING_JOBS
                .replace(&self.pool.get().await?, &job.id, job)
                .await
        })
    }

    fn list_signing_jobs(&self) -> StoreResult<Vec<SigningJob>> {
        self.run(async { SIGNING_JOBS.list(&self.pool.get().await?).await })
    }
}

impl CertificateRepo for PgBackend {
    fn put_certificate(&self, cert: &Certificate) -> StoreResult<()> {
        self.run(async {
            CERTIFICATES
                .put(&self.pool.get().await?, &cert.id, cert)
                .await
        })
    }

    fn get_certificate(&self, id: &str) -> StoreResult<Option<Certificate>> {
        self.run(async { CERTIFICATES.get(&self.pool.get().await?, id).await })
    }

    fn list_certificates(&self) -> StoreResult<Vec<Certificate>> {
        self.run(async { CERTIFICATES.list(&self.pool.get().await?).await })
    }

    fn delete_certificate(&self, id: &str) -> StoreResult<bool> {
        self.run(async { CERTIFICATES.delete(&self.pool.get().await?, id).await })
    }
}
