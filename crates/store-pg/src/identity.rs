//! [`IdentityRepo`] on PostgreSQL (migration 3): device and CA certificates and policies as
//! document tables, policy versions, policy attachments and thing principals as rows, and the
//! `settings` row of the registration code. A rule over several rows runs in one transaction
//! that first locks the row it is about (`FOR UPDATE`); the rules themselves are the store's
//! [`identity_rules`], the same for every backend.

use deadpool_postgres::GenericClient;
use otastream_store::identity_rules;
use otastream_store::{
    CaCertificate, DeviceCertificate, IdentityRepo, Kind, Policy, PolicyVersion, StoreError,
    StoreResult,
};

use crate::documents::{CA_CERTIFICATES, POLICIES, THINGS, from_json, to_json};
use crate::error::BackendError;
use crate::{PgBackend, to_i64, to_u64};

/// The `settings` row of the registration code.
const REGISTRATION_CODE: &str = "registration_code";

/// `SELECT count(*) ...` with one text parameter.
async fn count(client: &impl GenericClient, sql: &str, key: &str) -> Result<u64, BackendError> {
    let statement = client.prepare_cached(sql).await?;
    let n: i64 = client.query_one(&statement, &[&key]).await?.try_get(0)?;
    Ok(to_u64(n))
}

/// One text column of every row, in `seq` order.
async fn names(
    client: &impl GenericClient,
    sql: &str,
    key: &str,
) -> Result<Vec<String>, BackendError> {
    let statement = client.prepare_cached(sql).await?;
    let rows = client.query(&statement, &[&key]).await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// A device certificate, locked for the rest of the transaction when `lock`.
async fn device(
    client: &impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<DeviceCertificate>, BackendError> {
    let sql = if lock {
        "SELECT doc::text FROM device_certificates WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT doc::text FROM device_certificates WHERE id = $1"
    };
    let statement = client.prepare_cached(sql).await?;
    match client.query_opt(&statement, &[&id]).await? {
        Some(row) => Ok(Some(from_json(Kind::DeviceCertificate, row.try_get(0)?)?)),
        None => Ok(None),
    }
}

/// The policy `name`, locked for the rest of the transaction; `NotFound(Policy)`.
async fn locked_policy(client: &impl GenericClient, name: &str) -> Result<Policy, BackendError> {
    let statement = client
        .prepare_cached("SELECT doc::text FROM policies WHERE name = $1 FOR UPDATE")
        .await?;
    match client.query_opt(&statement, &[&name]).await? {
        Some(row) => Ok(from_json(Kind::Policy, row.try_get(0)?)?),
        None => Err(StoreError::not_found(Kind::Policy, name).into()),
    }
}

async fn insert_version(
    client: &impl GenericClient,
    version: &PolicyVersion,
) -> Result<(), BackendError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO policy_versions (policy, version_id, doc) VALUES ($1, $2, $3::text::jsonb)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &version.policy_name,
                &to_i64(version.version_id),
                &to_json(version)?,
            ],
        )
        .await?;
    Ok(())
}

async fn version_exists(
    client: &impl GenericClient,
    name: &str,
    version_id: u64,
) -> Result<bool, BackendError> {
    let statement = client
        .prepare_cached("SELECT 1 FROM policy_versions WHERE policy = $1 AND version_id = $2")
        .await?;
    Ok(client
        .query_opt(&statement, &[&name, &to_i64(version_id)])
        .await?
        .is_some())
}

/// Writes a device certificate row: a new one (`AlreadyExists`) or an existing one (`NotFound`).
async fn write_device(
    client: &impl GenericClient,
    cert: &DeviceCertificate,
    insert: bool,
) -> Result<(), BackendError> {
    let sql = if insert {
        "INSERT INTO device_certificates (id, ca_id, doc) VALUES ($1, $2, $3::text::jsonb) \
         ON CONFLICT (id) DO NOTHING"
    } else {
        "UPDATE device_certificates SET ca_id = $2, doc = $3::text::jsonb WHERE id = $1"
    };
    let statement = client.prepare_cached(sql).await?;
    let changed = client
        .execute(
            &statement,
            &[&cert.id, &cert.ca_certificate_id, &to_json(cert)?],
        )
        .await?;
    match (changed, insert) {
        (0, true) => Err(StoreError::already_exists(Kind::DeviceCertificate, &cert.id).into()),
        (0, false) => Err(StoreError::not_found(Kind::DeviceCertificate, &cert.id).into()),
        _ => Ok(()),
    }
}

impl IdentityRepo for PgBackend {
    fn create_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()> {
        self.run(async { write_device(&self.pool.get().await?, cert, true).await })
    }

    fn get_device_certificate(&self, id: &str) -> StoreResult<Option<DeviceCertificate>> {
        self.run(async { device(&self.pool.get().await?, id, false).await })
    }

    fn list_device_certificates(&self) -> StoreResult<Vec<DeviceCertificate>> {
        self.run(async {
            let client = self.pool.get().await?;
            let statement = client
                .prepare_cached("SELECT doc::text FROM device_certificates ORDER BY seq")
                .await?;
            let rows = client.query(&statement, &[]).await?;
            rows.iter()
                .map(|row| from_json(Kind::DeviceCertificate, row.try_get(0)?))
                .collect()
        })
    }

    fn update_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()> {
        self.run(async { write_device(&self.pool.get().await?, cert, false).await })
    }

    fn delete_device_certificate(&self, id: &str, detach_policies: bool) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let cert = device(&tx, id, true)
                .await?
                .ok_or_else(|| StoreError::not_found(Kind::DeviceCertificate, id))?;
            let things = count(
                &tx,
                "SELECT count(*) FROM thing_principals WHERE principal = $1",
                &cert.arn,
            )
            .await?;
            let policies = count(
                &tx,
                "SELECT count(*) FROM policy_targets WHERE target = $1",
                &cert.arn,
            )
            .await?;
            identity_rules::check_certificate_delete(&cert, things, policies, detach_policies)?;
            tx.execute("DELETE FROM policy_targets WHERE target = $1", &[&cert.arn])
                .await?;
            tx.execute("DELETE FROM device_certificates WHERE id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()> {
        self.run(async {
            CA_CERTIFICATES
                .create(&self.pool.get().await?, &ca.id, ca)
                .await
        })
    }

    fn get_ca_certificate(&self, id: &str) -> StoreResult<Option<CaCertificate>> {
        self.run(async { CA_CERTIFICATES.get(&self.pool.get().await?, id).await })
    }

    fn list_ca_certificates(&self) -> StoreResult<Vec<CaCertificate>> {
        self.run(async { CA_CERTIFICATES.list(&self.pool.get().await?).await })
    }

    fn update_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()> {
        self.run(async {
            CA_CERTIFICATES
                .replace(&self.pool.get().await?, &ca.id, ca)
                .await
        })
    }

    fn delete_ca_certificate(&self, id: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    "SELECT doc::text FROM ca_certificates WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await?
                .ok_or_else(|| StoreError::not_found(Kind::CaCertificate, id))?;
            let ca: CaCertificate = from_json(Kind::CaCertificate, row.try_get(0)?)?;
            let certificates = count(
                &tx,
                "SELECT count(*) FROM device_certificates WHERE ca_id = $1",
                id,
            )
            .await?;
            identity_rules::check_ca_delete(&ca, certificates)?;
            CA_CERTIFICATES.delete(&tx, id).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn registration_code(&self, candidate: &str) -> StoreResult<String> {
        self.run(async {
            let client = self.pool.get().await?;
            client
                .execute(
                    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&REGISTRATION_CODE, &candidate],
                )
                .await?;
            let row = client
                .query_one(
                    "SELECT value FROM settings WHERE name = $1",
                    &[&REGISTRATION_CODE],
                )
                .await?;
            Ok(row.try_get(0)?)
        })
    }

    fn create_policy(&self, policy: &Policy, first: &PolicyVersion) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            POLICIES.create(&tx, &policy.name, policy).await?;
            insert_version(&tx, first).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn get_policy(&self, name: &str) -> StoreResult<Option<Policy>> {
        self.run(async { POLICIES.get(&self.pool.get().await?, name).await })
    }

    fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        self.run(async { POLICIES.list(&self.pool.get().await?).await })
    }

    fn delete_policy(&self, name: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            locked_policy(&tx, name).await?;
            let targets = count(
                &tx,
                "SELECT count(*) FROM policy_targets WHERE policy = $1",
                name,
            )
            .await?;
            let versions = count(
                &tx,
                "SELECT count(*) FROM policy_versions WHERE policy = $1",
                name,
            )
            .await?;
            identity_rules::check_policy_delete(name, targets, versions)?;
            // Its one version goes with it (ON DELETE CASCADE).
            POLICIES.delete(&tx, name).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
        now_ms: u64,
    ) -> StoreResult<(Policy, PolicyVersion)> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let policy = locked_policy(&tx, name).await?;
            let versions = count(
                &tx,
                "SELECT count(*) FROM policy_versions WHERE policy = $1",
                name,
            )
            .await?;
            let (policy, version) = identity_rules::next_policy_version(
                &policy,
                versions,
                document,
                set_as_default,
                now_ms,
            )?;
            insert_version(&tx, &version).await?;
            POLICIES.replace(&tx, name, &policy).await?;
            tx.commit().await?;
            Ok((policy, version))
        })
    }

    fn list_policy_versions(&self, name: &str) -> StoreResult<Vec<PolicyVersion>> {
        self.run(async {
            let client = self.pool.get().await?;
            if POLICIES.get::<Policy>(&client, name).await?.is_none() {
                return Err(StoreError::not_found(Kind::Policy, name).into());
            }
            let statement = client
                .prepare_cached(
                    "SELECT doc::text FROM policy_versions WHERE policy = $1 ORDER BY version_id",
                )
                .await?;
            let rows = client.query(&statement, &[&name]).await?;
            rows.iter()
                .map(|row| from_json(Kind::PolicyVersion, row.try_get(0)?))
                .collect()
        })
    }

    fn get_policy_version(
        &self,
        name: &str,
        version_id: u64,
    ) -> StoreResult<Option<PolicyVersion>> {
        self.run(async {
            let client = self.pool.get().await?;
            let statement = client
                .prepare_cached(
                    "SELECT doc::text FROM policy_versions WHERE policy = $1 AND version_id = $2",
                )
                .await?;
            match client
                .query_opt(&statement, &[&name, &to_i64(version_id)])
                .await?
            {
                Some(row) => Ok(Some(from_json(Kind::PolicyVersion, row.try_get(0)?)?)),
                None => Ok(None),
            }
        })
    }

    fn set_default_policy_version(
        &self,
        name: &str,
        version_id: u64,
        now_ms: u64,
    ) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let policy = locked_policy(&tx, name).await?;
            let exists = version_exists(&tx, name, version_id).await?;
            let policy = identity_rules::with_default_version(&policy, version_id, exists, now_ms)?;
            POLICIES.replace(&tx, name, &policy).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn delete_policy_version(&self, name: &str, version_id: u64) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let policy = locked_policy(&tx, name).await?;
            let exists = version_exists(&tx, name, version_id).await?;
            identity_rules::check_version_delete(&policy, version_id, exists)?;
            tx.execute(
                "DELETE FROM policy_versions WHERE policy = $1 AND version_id = $2",
                &[&name, &to_i64(version_id)],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn attach_policy(&self, policy: &str, target: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            if tx
                .query_opt("SELECT 1 FROM policies WHERE name = $1 FOR SHARE", &[&policy])
                .await?
                .is_none()
            {
                return Err(StoreError::not_found(Kind::Policy, policy).into());
            }
            tx.execute(
                "INSERT INTO policy_targets (policy, target) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&policy, &target],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn detach_policy(&self, policy: &str, target: &str) -> StoreResult<bool> {
        self.run(async {
            let client = self.pool.get().await?;
            let removed = client
                .execute(
                    "DELETE FROM policy_targets WHERE policy = $1 AND target = $2",
                    &[&policy, &target],
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn policies_for_target(&self, target: &str) -> StoreResult<Vec<String>> {
        self.run(async {
            names(
                &self.pool.get().await?,
                "SELECT policy FROM policy_targets WHERE target = $1 ORDER BY seq",
                target,
            )
            .await
        })
    }

    fn targets_for_policy(&self, policy: &str) -> StoreResult<Vec<String>> {
        self.run(async {
            names(
                &self.pool.get().await?,
                "SELECT target FROM policy_targets WHERE policy = $1 ORDER BY seq",
                policy,
            )
            .await
        })
    }

    fn attach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<()> {
        self.run(async {
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            if tx
                .query_opt("SELECT 1 FROM things WHERE name = $1 FOR SHARE", &[&thing])
                .await?
                .is_none()
            {
                return Err(StoreError::not_found(THINGS.kind, thing).into());
            }
            tx.execute(
                "INSERT INTO thing_principals (thing, principal) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&thing, &principal],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn detach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<bool> {
        self.run(async {
            let client = self.pool.get().await?;
            let removed = client
                .execute(
                    "DELETE FROM thing_principals WHERE thing = $1 AND principal = $2",
                    &[&thing, &principal],
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn thing_principals(&self, thing: &str) -> StoreResult<Vec<String>> {
        self.run(async {
            names(
                &self.pool.get().await?,
                "SELECT principal FROM thing_principals WHERE thing = $1 ORDER BY seq",
                thing,
            )
            .await
        })
    }

    fn principal_things(&self, principal: &str) -> StoreResult<Vec<String>> {
        self.run(async {
            names(
                &self.pool.get().await?,
                "SELECT thing FROM thing_principals WHERE principal = $1 ORDER BY seq",
                principal,
            )
            .await
        })
    }
}
