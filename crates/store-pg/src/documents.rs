//! Tables of typed records kept as JSON documents (`<key> text PRIMARY KEY, seq bigserial, doc
//! jsonb`): the store's record structs serialised with serde. `seq` gives creation order; an upsert
//! keeps the position of the row it replaces.

use deadpool_postgres::GenericClient;
use otastream_store::{Kind, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BackendError;

/// One document table.
pub(crate) struct Table {
    /// Table name.
    pub(crate) name: &'static str,
    /// Its primary-key column.
    pub(crate) key: &'static str,
    /// What its rows are, for errors.
    pub(crate) kind: Kind,
}

pub(crate) const THINGS: Table = Table {
    name: "things",
    key: "name",
    kind: Kind::Thing,
};
pub(crate) const THING_GROUPS: Table = Table {
    name: "thing_groups",
    key: "name",
    kind: Kind::ThingGroup,
};
pub(crate) const OTA_UPDATES: Table = Table {
    name: "ota_updates",
    key: "id",
    kind: Kind::OtaUpdate,
};
pub(crate) const SIGNING_PROFILES: Table = Table {
    name: "signing_profiles",
    key: "name",
    kind: Kind::SigningProfile,
};
pub(crate) const SIGNING_JOBS: Table = Table {
    name: "signing_jobs",
    key: "id",
    kind: Kind::SigningJob,
};
pub(crate) const CERTIFICATES: Table = Table {
    name: "certificates",
    key: "id",
    kind: Kind::Certificate,
};
pub(crate) const CA_CERTIFICATES: Table = Table {
    name: "ca_certificates",
    key: "id",
    kind: Kind::CaCertificate,
};
pub(crate) const POLICIES: Table = Table {
    name: "policies",
    key: "name",
    kind: Kind::Policy,
};
pub(crate) const JOBS: Table = Table {
    name: "jobs",
    key: "job_id",
    kind: Kind::Job,
};

pub(crate) fn to_json<T: Serialize>(doc: &T) -> Result<String, BackendError> {
    serde_json::to_string(doc)
        .map_err(|e| BackendError::Corrupt(format!("serialising a record: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(kind: Kind, text: &str) -> Result<T, BackendError> {
    serde_json::from_str(text).map_err(|e| BackendError::Corrupt(format!("stored {kind}: {e}")))
}

impl Table {
    /// Inserts a new document; `AlreadyExists(kind)` when the key is taken.
    pub(crate) async fn create<T: Serialize>(
        &self,
        client: &impl GenericClient,
        id: &str,
        doc: &T,
    ) -> Result<(), BackendError> {
        let sql = format!(
            "INSERT INTO {} ({}, doc) VALUES ($1, $2::text::jsonb) ON CONFLICT DO NOTHING",
            self.name, self.key
        );
        let statement = client.prepare_cached(&sql).await?;
        if client.execute(&statement, &[&id, &to_json(doc)?]).await? == 0 {
            return Err(StoreError::already_exists(self.kind, id).into());
        }
        Ok(())
    }

    /// Inserts or replaces a document (a replaced one keeps its position).
    pub(crate) async fn put<T: Serialize>(
        &self,
        client: &impl GenericClient,
        id: &str,
        doc: &T,
    ) -> Result<(), BackendError> {
        let sql = format!(
            "INSERT INTO {0} ({1}, doc) VALUES ($1, $2::text::jsonb) \
             ON CONFLICT ({1}) DO UPDATE SET doc = EXCLUDED.doc",
            self.name, self.key
        );
        let statement = client.prepare_cached(&sql).await?;
        client.execute(&statement, &[&id, &to_json(doc)?]).await?;
        Ok(())
    }

    /// Replaces an existing document; `NotFound(kind)` when there is none.
    pub(crate) async fn replace<T: Serialize>(
        &self,
        client: &impl GenericClient,
        id: &str,
        doc: &T,
    ) -> Result<(), BackendError> {
        let sql = format!(
            "UPDATE {} SET doc = $2::text::jsonb WHERE {} = $1",
            self.name, self.key
        );
        let statement = client.prepare_cached(&sql).await?;
        if client.execute(&statement, &[&id, &to_json(doc)?]).await? == 0 {
            return Err(StoreError::not_found(self.kind, id).into());
        }
        Ok(())
    }

    /// One document.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        client: &impl GenericClient,
        id: &str,
    ) -> Result<Option<T>, BackendError> {
        let sql = format!(
            "SELECT doc::text FROM {} WHERE {} = $1",
            self.name, self.key
        );
        let statement = client.prepare_cached(&sql).await?;
        match client.query_opt(&statement, &[&id]).await? {
            Some(row) => Ok(Some(from_json(self.kind, row.try_get(0)?)?)),
            None => Ok(None),
        }
    }

    /// Every document, in creation order.
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        client: &impl GenericClient,
    ) -> Result<Vec<T>, BackendError> {
        let sql = format!("SELECT doc::text FROM {} ORDER BY seq", self.name);
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &[]).await?;
        rows.iter()
            .map(|row| from_json(self.kind, row.try_get(0)?))
            .collect()
    }

    /// Deletes a document; `true` when it existed.
    pub(crate) async fn delete(
        &self,
        client: &impl GenericClient,
        id: &str,
    ) -> Result<bool, BackendError> {
        let sql = format!("DELETE FROM {} WHERE {} = $1", self.name, self.key);
        let statement = client.prepare_cached(&sql).await?;
        Ok(client.execute(&statement, &[&id]).await? > 0)
    }
}
