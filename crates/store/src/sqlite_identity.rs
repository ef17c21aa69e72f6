//! [`IdentityRepo`] for the embedded backend: `device_certificates` (with a `ca_id` column for the
//! by-CA rules), `ca_certificates`, `policies`, `policy_versions`, `policy_targets`,
//! `thing_principals` and the `settings` row holding the registration code. Every multi-row rule
//! runs in one immediate transaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::{self, json_column, to_i64};
use crate::identity_rules;
use crate::sqlite_records::{THINGS, Table, Write};
use crate::{
    CaCertificate, DeviceCertificate, IdentityRepo, Kind, Policy, PolicyVersion, Store, StoreError,
    StoreResult, Thing,
};

const CA_CERTIFICATES: Table = Table {
    name: "ca_certificates",
    kind: Kind::CaCertificate,
};
const POLICIES: Table = Table {
    name: "policies",
    kind: Kind::Policy,
};

/// The `settings` row of the registration code.
const REGISTRATION_CODE: &str = "registration_code";

fn count(conn: &Connection, sql: &str, key: &str) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(sql)?
        .query_row([key], |row| row.get(0))?;
    Ok(db::to_u64(n))
}

fn names(conn: &Connection, sql: &str, key: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([key], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn get_device(conn: &Connection, id: &str) -> StoreResult<Option<DeviceCertificate>> {
    Ok(conn
        .prepare_cached("SELECT body FROM device_certificates WHERE id = ?1")?
        .query_row([id], |row| json_column(row, 0))
        .optional()?)
}

fn policy_or_not_found(conn: &Connection, name: &str) -> StoreResult<Policy> {
    POLICIES
        .get(conn, name)?
        .ok_or_else(|| StoreError::not_found(Kind::Policy, name))
}

fn insert_version(conn: &Connection, version: &PolicyVersion) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO policy_versions (policy, version_id, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        version.policy_name,
        to_i64(version.version_id),
        serde_json::to_string(version)?
    ])?;
    Ok(())
}

fn version_exists(conn: &Connection, name: &str, version_id: u64) -> StoreResult<bool> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM policy_versions WHERE policy = ?1 AND version_id = ?2",
        )?
        .query_row(params![name, to_i64(version_id)], |row| row.get(0))?;
    Ok(n > 0)
}

impl IdentityRepo for Store {
    fn create_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()> {
        let changed = self
            .conn()
            .prepare_cached(
                "INSERT INTO device_certificates (id, ca_id, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![
                cert.id,
                cert.ca_certificate_id,
                serde_json::to_string(cert)?
            ])?;
        if changed == 0 {
            return Err(StoreError::already_exists(
                Kind::DeviceCertificate,
                &cert.id,
            ));
        }
        Ok(())
    }

    fn get_device_certificate(&self, id: &str) -> StoreResult<Option<DeviceCertificate>> {
        get_device(&self.conn(), id)
    }

    fn list_device_certificates(&self) -> StoreResult<Vec<DeviceCertificate>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT body FROM device_certificates ORDER BY seq")?;
        let rows = stmt.query_map([], |row| json_column(row, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn update_device_certificate(&self, cert: &DeviceCertificate) -> StoreResult<()> {
        let changed = self
            .conn()
            .prepare_cached("UPDATE device_certificates SET ca_id = ?2, body = ?3 WHERE id = ?1")?
            .execute(params![
                cert.id,
                cert.ca_certificate_id,
                serde_json::to_string(cert)?
            ])?;
        if changed == 0 {
            return Err(StoreError::not_found(Kind::DeviceCertificate, &cert.id));
        }
        Ok(())
    }

    fn delete_device_certificate(&self, id: &str, detach_policies: bool) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let cert = get_device(&tx, id)?
            .ok_or_else(|| StoreError::not_found(Kind::DeviceCertificate, id))?;
        let things = count(
            &tx,
            "SELECT COUNT(*) FROM thing_principals WHERE principal = ?1",
            &cert.arn,
        )?;
        let policies = count(
            &tx,
            "SELECT COUNT(*) FROM policy_targets WHERE target = ?1",
            &cert.arn,
        )?;
        identity_rules::check_certificate_delete(&cert, things, policies, detach_policies)?;
        tx.execute("DELETE FROM policy_targets WHERE target = ?1", [&cert.arn])?;
        tx.execute("DELETE FROM device_certificates WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn create_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()> {
        CA_CERTIFICATES.write(&self.conn(), &ca.id, ca, Write::Insert)
    }

    fn get_ca_certificate(&self, id: &str) -> StoreResult<Option<CaCertificate>> {
        CA_CERTIFICATES.get(&self.conn(), id)
    }

    fn list_ca_certificates(&self) -> StoreResult<Vec<CaCertificate>> {
        CA_CERTIFICATES.list(&self.conn())
    }

    fn update_ca_certificate(&self, ca: &CaCertificate) -> StoreResult<()> {
        CA_CERTIFICATES.write(&self.conn(), &ca.id, ca, Write::Update)
    }

    fn delete_ca_certificate(&self, id: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let ca: CaCertificate = CA_CERTIFICATES
            .get(&tx, id)?
            .ok_or_else(|| StoreError::not_found(Kind::CaCertificate, id))?;
        let certificates = count(
            &tx,
            "SELECT COUNT(*) FROM device_certificates WHERE ca_id = ?1",
            id,
        )?;
        identity_rules::check_ca_delete(&ca, certificates)?;
        CA_CERTIFICATES.delete(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    fn registration_code(&self, candidate: &str) -> StoreResult<String> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        tx.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![REGISTRATION_CODE, candidate],
        )?;
        let code: String = tx.query_row(
            "SELECT value FROM settings WHERE name = ?1",
            [REGISTRATION_CODE],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(code)
    }

    fn create_policy(&self, policy: &Policy, first: &PolicyVersion) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        POLICIES.write(&tx, &policy.name, policy, Write::Insert)?;
        tx.execute(
            "DELETE FROM policy_versions WHERE policy = ?1",
            [&policy.name],
        )?;
        insert_version(&tx, first)?;
        tx.commit()?;
        Ok(())
    }

    fn get_policy(&self, name: &str) -> StoreResult<Option<Policy>> {
        POLICIES.get(&self.conn(), name)
    }

    fn list_policies(&self) -> StoreResult<Vec<Policy>> {
        POLICIES.list(&self.conn())
    }

    fn delete_policy(&self, name: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        policy_or_not_found(&tx, name)?;
        let targets = count(
            &tx,
            "SELECT COUNT(*) FROM policy_targets WHERE policy = ?1",
            name,
        )?;
        let versions = count(
            &tx,
            "SELECT COUNT(*) FROM policy_versions WHERE policy = ?1",
            name,
        )?;
        identity_rules::check_policy_delete(name, targets, versions)?;
        tx.execute("DELETE FROM policy_versions WHERE policy = ?1", [name])?;
        POLICIES.delete(&tx, name)?;
        tx.commit()?;
        Ok(())
    }

    fn create_policy_version(
        &self,
        name: &str,
        document: &str,
        set_as_default: bool,
        now_ms: u64,
    ) -> StoreResult<(Policy, PolicyVersion)> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let policy = policy_or_not_found(&tx, name)?;
        let versions = count(
            &tx,
            "SELECT COUNT(*) FROM policy_versions WHERE policy = ?1",
            name,
        )?;
        let (policy, version) = identity_rules::next_policy_version(
            &policy,
            versions,
            document,
            set_as_default,
            now_ms,
        )?;
        insert_version(&tx, &version)?;
        POLICIES.write(&tx, name, &policy, Write::Update)?;
        tx.commit()?;
        Ok((policy, version))
    }

    fn list_policy_versions(&self, name: &str) -> StoreResult<Vec<PolicyVersion>> {
        let conn = self.conn();
        policy_or_not_found(&conn, name)?;
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM policy_versions WHERE policy = ?1 ORDER BY version_id",
        )?;
        let rows = stmt.query_map([name], |row| json_column(row, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn get_policy_version(
        &self,
        name: &str,
        version_id: u64,
    ) -> StoreResult<Option<PolicyVersion>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT body FROM policy_versions WHERE policy = ?1 AND version_id = ?2",
            )?
            .query_row(params![name, to_i64(version_id)], |row| json_column(row, 0))
            .optional()?)
    }

    fn set_default_policy_version(
        &self,
        name: &str,
        version_id: u64,
        now_ms: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let policy = policy_or_not_found(&tx, name)?;
        let exists = version_exists(&tx, name, version_id)?;
        let policy = identity_rules::with_default_version(&policy, version_id, exists, now_ms)?;
        POLICIES.write(&tx, name, &policy, Write::Update)?;
        tx.commit()?;
        Ok(())
    }

    fn delete_policy_version(&self, name: &str, version_id: u64) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        let policy = policy_or_not_found(&tx, name)?;
        let exists = version_exists(&tx, name, version_id)?;
        identity_rules::check_version_delete(&policy, version_id, exists)?;
        tx.execute(
            "DELETE FROM policy_versions WHERE policy = ?1 AND version_id = ?2",
            params![name, to_i64(version_id)],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn attach_policy(&self, policy: &str, target: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        policy_or_not_found(&tx, policy)?;
        tx.execute(
            "INSERT INTO policy_targets (policy, target) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![policy, target],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn detach_policy(&self, policy: &str, target: &str) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "DELETE FROM policy_targets WHERE policy = ?1 AND target = ?2",
            params![policy, target],
        )? > 0)
    }

    fn policies_for_target(&self, target: &str) -> StoreResult<Vec<String>> {
        names(
            &self.conn(),
            "SELECT policy FROM policy_targets WHERE target = ?1 ORDER BY seq",
            target,
        )
    }

    fn targets_for_policy(&self, policy: &str) -> StoreResult<Vec<String>> {
        names(
            &self.conn(),
            "SELECT target FROM policy_targets WHERE policy = ?1 ORDER BY seq",
            policy,
        )
    }

    fn attach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = db::write_tx(&mut conn)?;
        if THINGS.get::<Thing>(&tx, thing)?.is_none() {
            return Err(StoreError::not_found(Kind::Thing, thing));
        }
        tx.execute(
            "INSERT INTO thing_principals (thing, principal) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![thing, principal],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn detach_thing_principal(&self, thing: &str, principal: &str) -> StoreResult<bool> {
        Ok(self.conn().execute(
            "DELETE FROM thing_principals WHERE thing = ?1 AND principal = ?2",
            params![thing, principal],
        )? > 0)
    }

    fn thing_principals(&self, thing: &str) -> StoreResult<Vec<String>> {
        names(
            &self.conn(),
            "SELECT principal FROM thing_principals WHERE thing = ?1 ORDER BY seq",
            thing,
        )
    }

    fn principal_things(&self, principal: &str) -> StoreResult<Vec<String>> {
        names(
            &self.conn(),
            "SELECT thing FROM thing_principals WHERE principal = ?1 ORDER BY seq",
            principal,
        )
    }
}
