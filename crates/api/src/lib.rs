//! # otastream-api: the HTTP control plane
//!
//! One axum server answers every AWS service the OTA workflow uses. Paths collide between
//! services (`GET /streams` is both iot ListStreams and an S3 ListObjects on bucket `streams`,
//! AWS-API.md §3), so requests are told apart by the service in the SigV4 credential scope:
//! `s3` goes to an s3s service over the [`otastream_store::Store`] (s3s verifies the signature,
//! header or presigned V2/V4), while `iot`, `signer`, `acm` and `iot-jobs-data` go to axum
//! routers behind [`sigv4::verify`]. Unsigned or wrongly signed requests are refused with the
//! AWS error shape of their protocol.
//!
//! ## Layout
//! - [`sigv4`]: SigV4 verification for the rest-json services (sans-IO: head + body + `now`).
//! - [`error`]: [`error::ApiError`], the one place where failures become rest-json wire errors.
//! - `route`: picks the service from the credential scope and dispatches.
//! - `s3` (+ `s3_convert`, `s3_list`, `s3_multipart`): `impl s3s::S3` over the store (buckets, versioning,
//!   objects, ranges, listings, multipart); `s3_front`: what S3 checks around s3s (access key,
//!   scope region, default port, ranges S3 ignores, request ids).
//! - `validate`: identifier and enum checks the CLI does not do (AWS-API.md §7.2).
//! - [`jobs_hub`]: the control plane's side of the jobs driver (`otastream-jobs-driver`): the
//!   wire errors of jobs calls per plane, [`jobs_hub::start_jobs`] (the jobs wiring both
//!   binaries use) and the jobs repository over the store.
//! - `presign`: SigV4 presigned S3 GETs for `${aws:iot:s3-presigned-url:…}` (HTTP OTA).
//! - `iot_certificates` (device certificates, `DescribeEndpoint`), `iot_ca` (CA certificates,
//!   registration code), `iot_policies` (policies, versions, attachments), `iot_principals`
//!   (thing principals): AWS IoT device identity over [`otastream_store::IdentityRepo`].
//! - `iot_things`, `iot_streams`, `acm`, `signer` (+ `signer_jobs`), `ota` (+ `ota_doc`, `ota_files`),
//!   `jobs`, `jobs_data`:
//!   one module per AWS API group.
//!
//! ## Key types
//! [`ApiConfig`] (region, account, credentials), [`ApiState`] (store + config), [`router`].

pub mod error;
pub mod jobs_hub;
pub mod sigv4;

mod acm;
mod iot_ca;
mod iot_certificates;
mod iot_policies;
mod iot_principals;
mod iot_streams;
mod iot_things;
mod jobs;
mod jobs_data;
mod ota;
mod ota_doc;
mod ota_files;
mod presign;
mod route;
mod s3;
mod s3_convert;
mod s3_front;
mod s3_list;
mod s3_multipart;
mod signer;
mod signer_jobs;
mod util;
mod validate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use otastream_store::{Backend, StoreError};

use crate::error::{ApiError, ApiResult};

/// `Some(record)` or `ResourceNotFoundException` "<what> <id> does not exist".
pub(crate) fn found<T>(record: Option<T>, what: &str, id: &str) -> ApiResult<T> {
    record.ok_or_else(|| ApiError::not_found(format!("{what} {id} does not exist")))
}
pub use crate::iot_certificates::register_dev_certificate;
use crate::jobs_hub::JobsHandle;
pub use crate::presign::public_base_url;

/// Access key id used when none is configured (printed at start-up by the binary).
pub const DEV_ACCESS_KEY_ID: &str = "AKIAOTASTREAMDEV0001";
/// Secret used when none is configured (printed at start-up by the binary).
pub const DEV_SECRET_ACCESS_KEY: &str = "otastream-dev-secret-do-not-use-in-production";

/// Control-plane configuration.
#[derive(Clone)]
pub struct ApiConfig {
    /// Region used in ARNs (`us-east-1` by default).
    pub region: String,
    /// Account id used in ARNs (`123456789012` by default).
    pub account_id: String,
    /// Access key id every request must be signed with.
    pub access_key_id: String,
    /// Secret for [`ApiConfig::access_key_id`].
    pub secret_access_key: String,
    /// Base URL devices reach S3 at, put into presigned URLs (`--public-url`, normalised by
    /// [`public_base_url`]), e.g. `http://127.0.0.1:8080` or `https://ota.example`.
    pub public_base_url: String,
    /// Host name `DescribeEndpoint` answers for every endpoint type (`--public-host`; the server
    /// puts its bound address there when none is given).
    pub public_host: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            access_key_id: DEV_ACCESS_KEY_ID.into(),
            secret_access_key: DEV_SECRET_ACCESS_KEY.into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            public_host: "127.0.0.1".into(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("public_base_url", &self.public_base_url)
            .field("public_host", &self.public_host)
            .finish_non_exhaustive()
    }
}

impl ApiConfig {
    /// `arn:aws:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account_id
        )
    }
}

/// Shared state of every handler: the storage backend and the configuration. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// The storage backend (every repository).
    pub store: Arc<dyn Backend>,
    /// Directory of the dev PKI (the dev code-signing certificate comes from it).
    pub pki_dir: PathBuf,
    /// Configuration.
    pub config: Arc<ApiConfig>,
    /// The jobs engine (shared with the device gateway by the server wiring).
    pub jobs: JobsHandle,
    /// Closes the live device connections of a thing (set once by the server wiring; until then a
    /// status change closes nothing).
    disconnect: Arc<std::sync::OnceLock<DisconnectHook>>,
}

/// What [`ApiState::set_disconnect_hook`] installs: closes the connections acting for a thing.
pub type DisconnectHook = Box<dyn Fn(&str) + Send + Sync>;

impl ApiState {
    /// Builds the state and makes sure the dev code-signing certificate exists in ACM
    /// (created with the store's dev PKI on first start, found again afterwards).
    pub fn new(
        store: Arc<dyn Backend>,
        pki_dir: &Path,
        config: ApiConfig,
    ) -> Result<Self, StoreError> {
        let jobs = JobsHandle::restore(store.clone())?;
        Self::with_jobs(store, pki_dir, config, jobs)
    }

    /// Like [`ApiState::new`] with a jobs engine the caller also hands to the device gateway.
    /// Installs the S3 presigner (the configured key and `public_base_url`) into the engine.
    pub fn with_jobs(
        store: Arc<dyn Backend>,
        pki_dir: &Path,
        config: ApiConfig,
        jobs: JobsHandle,
    ) -> Result<Self, StoreError> {
        jobs.set_presigner(Box::new(presign::S3Presigner::new(&config)));
        let state = Self {
            store,
            pki_dir: pki_dir.to_path_buf(),
            config: Arc::new(config),
            jobs,
            disconnect: Arc::default(),
        };
        acm::ensure_dev_certificate(&state)?;
        // Signing first: an interrupted OTA update may wait for an interrupted signing job.
        signer_jobs::resume_interrupted(&state)?;
        ota::resume_interrupted(&state)?;
        Ok(state)
    }

    /// The ARN of the dev code-signing certificate created by [`ApiState::new`].
    pub fn dev_certificate_arn(&self) -> Result<Option<String>, StoreError> {
        acm::dev_certificate_arn(self)
    }

    /// Installs the hook that closes a thing's live connections when one of its certificates stops
    /// being usable (UpdateCertificate away from `ACTIVE`, UpdateCACertificate to `INACTIVE`). Only
    /// the first call has an effect.
    pub fn set_disconnect_hook(&self, hook: DisconnectHook) {
        let _ = self.disconnect.set(hook);
    }

    /// Closes the live connections of every thing `certificate_arn` is attached to.
    pub(crate) fn disconnect_principal(&self, certificate_arn: &str) -> ApiResult<()> {
        if let Some(hook) = self.disconnect.get() {
            for thing in self.store.principal_things(certificate_arn)? {
                hook(&thing);
            }
        }
        Ok(())
    }

    /// Runs blocking store work off the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
    }
}

/// The whole control plane on one router: s3, iot, signer, acm and iot-jobs-data.
pub fn router(state: ApiState) -> axum::Router {
    route::router(state)
}
