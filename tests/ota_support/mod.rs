//! Shared harness of the OTA end-to-end tests: the whole server (`otastream::server`) on
//! 127.0.0.1 port 0, OTA updates created through its control plane with the real `aws` CLI
//! (S3 upload with versioning, the dev ACM certificate, signer, things and groups,
//! `create-ota-update`), and simulated AWS OTA agents (`otastream_device` over rumqttc) as devices.
//!
//! The CLI side is the control-plane tests' client (`crates/api/tests/common`), pointed at the
//! server's HTTP port with an isolated HOME.

#![allow(dead_code)] // each test binary uses a different part of the harness

#[path = "../../crates/api/tests/common/mod.rs"]
mod api_cli;

use std::time::Duration;

use otastream::server::{self, RunningServer, ServerConfig};
use otastream_device::{
    AppVersion, DeviceConfig, DeviceReport, FinalStatus, RunOptions, run_device_with,
};
use serde_json::{Value, json};

#[allow(unused_imports)] // not every test binary needs every helper
pub use api_cli::{Cli, SECRET, firmware, http_get, parse_response};

/// The bucket every test uploads to (created with versioning on first upload).
pub const BUCKET: &str = "ota-bucket";
/// The role the CLI passes to `create-ota-update` (recorded, not enforced).
pub const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";
/// The signing profile every test signs with (the dev ACM certificate).
pub const PROFILE: &str = "ota_profile";
/// How long a device may take for a whole update.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The version a device runs after an update (devices start on 0.0.1).
pub const UPDATED: AppVersion = AppVersion::new(0, 0, 2);

/// A running server, its CLI client and the runtime its tasks and the devices run on. The test
/// body itself is synchronous: it runs the CLI while devices run on the runtime.
pub struct OtaServer {
    rt: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    /// PostgreSQL and SeaweedFS when the server runs on them (stopped after the server).
    pub stack: Option<otastream_testkit::Stack>,
    cli: Cli,
    /// PEM of the dev code-signing certificate (from `aws acm get-certificate`).
    pub cert_pem: String,
    _dir: tempfile::TempDir,
    _home: tempfile::TempDir,
}

impl std::ops::Deref for OtaServer {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Drop for OtaServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

impl OtaServer {
    /// Starts the server with the CLI's credentials, then (through the CLI) creates the bucket
    /// with versioning and the signing profile over the dev ACM certificate.
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// [`Self::start`] with metadata in PostgreSQL and object bytes in SeaweedFS (both started
    /// for this server and stopped after it).
    pub fn start_on_postgres() -> Self {
        let stack = otastream_testkit::Stack::start()
            .expect("PostgreSQL and SeaweedFS (.ci/run installs them)");
        Self::start_with(None, Some(stack))
    }

    /// [`Self::start`] with presigned URLs on `public_url` and the CLI on the HTTPS port,
    /// verifying the server against the dev CA (`<data-dir>/pki/ca.pem`).
    pub fn start_https(public_url: &str) -> Self {
        Self::start_with(Some(public_url), None)
    }

    fn start_with(https_public_url: Option<&str>, stack: Option<otastream_testkit::Stack>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("data dir");
        let home = tempfile::tempdir().expect("home");
        let mut cfg = ServerConfig::ephemeral(dir.path());
        cfg.api.access_key_id = api_cli::AKID.into();
        cfg.api.secret_access_key = SECRET.into();
        if let Some(url) = https_public_url {
            cfg.api.public_base_url = otastream_api::public_base_url(url).expect("public URL");
        }
        if let Some(stack) = &stack {
            cfg.storage = server::Storage::Postgres(pg_config(stack, &dir.path().join("pg-cache")));
        }
        let server = rt.block_on(server::start(cfg)).expect("server starts");
        let cli = match https_public_url {
            None => Cli::new(server.http_addr.port(), home.path()),
            Some(_) => {
                // The same file as <data-dir>/pki/ca.pem.
                let ca = home.path().join("ca.pem");
                std::fs::write(&ca, &server.pki.ca_cert_pem).expect("write ca.pem");
                Cli::https(server.https_addr.port(), home.path(), &ca)
            }
        };

        cli.cli(&format!("s3 mb s3://{BUCKET}"));
        cli.cli(&format!(
            "s3api put-bucket-versioning --bucket {BUCKET} --versioning-configuration Status=Enabled"
        ));
        let certs = cli.cli("acm list-certificates");
        let cert_arn = certs["CertificateSummaryList"][0]["CertificateArn"]
            .as_str()
            .expect("the dev code-signing certificate")
            .to_owned();
        let cert = cli.cli(&format!("acm get-certificate --certificate-arn {cert_arn}"));
        let cert_pem = cert["Certificate"].as_str().expect("PEM").to_owned();
        cli.cli(&format!(
            "signer put-signing-profile --profile-name {PROFILE} --platform-id AmazonFreeRTOS-Default \
             --signing-material certificateArn={cert_arn} --signing-parameters certname=otasigner.crt"
        ));
        Self {
            rt,
            server: Some(server),
            stack,
            cli,
            cert_pem,
            _dir: dir,
            _home: home,
        }
    }

    /// The running server (addresses, jobs engine, store).
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("running until dropped")
    }

    /// Runs `fut` on the server's runtime.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Uploads `data` with `aws s3 cp` and returns the object's version id.
    pub fn upload(&self, key: &str, data: &[u8]) -> String {
        let file = key.replace('/', "_");
        std::fs::write(self.scratch(&file), data).expect("write firmware");
        let put = self.cli(&format!("s3 cp {file} s3://{BUCKET}/{key}"));
        assert!(put.is_null() || put.is_string(), "{put}");
        let versions = self.cli(&format!(
            "s3api list-object-versions --bucket {BUCKET} --prefix {key}"
        ));
        versions["Versions"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["IsLatest"] == true))
            .and_then(|v| v["VersionId"].as_str())
            .expect("a version id")
            .to_owned()
    }

    /// Deterministic firmware of `len` bytes, uploaded to `key` and signed; returns the image and
    /// the signing job id.
    pub fn signed_firmware(&self, key: &str, len: usize, seed: u8) -> (Vec<u8>, String) {
        let fw = firmware(len, seed);
        let signer_job = self.upload_and_sign(key, &fw);
        (fw, signer_job)
    }

    /// Uploads `data` and signs that exact version with `aws signer start-signing-job`; returns
    /// the signing job id once it succeeded.
    pub fn upload_and_sign(&self, key: &str, data: &[u8]) -> String {
        let version = self.upload(key, data);
        let started = self.cli(&format!(
            "signer start-signing-job --profile-name {PROFILE} \
             --source s3={{bucketName={BUCKET},key={key},version={version}}} \
             --destination s3={{bucketName={BUCKET},prefix=SignedImages/}}"
        ));
        let job_id = started["jobId"]
            .as_str()
            .expect("signing job id")
            .to_owned();
        let job = self.wait_for(
            "signing job",
            || self.cli(&format!("signer describe-signing-job --job-id {job_id}")),
            |j| j["status"] != "InProgress",
        );
        assert_eq!(job["status"], "Succeeded", "{job}");
        job_id
    }

    /// Creates things `<prefix>-0` … `<prefix>-<count-1>` with `aws iot create-thing`.
    pub fn create_things(&self, prefix: &str, count: usize) -> Vec<String> {
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
        for name in &names {
            self.cli(&format!("iot create-thing --thing-name {name}"));
        }
        names
    }

    /// `create-thing-group` and `add-thing-to-thing-group` for each member; returns its ARN.
    pub fn create_group(&self, group: &str, members: &[String]) -> String {
        self.cli(&format!(
            "iot create-thing-group --thing-group-name {group}"
        ));
        for thing in members {
            self.cli(&format!(
                "iot add-thing-to-thing-group --thing-group-name {group} --thing-name {thing}"
            ));
        }
        format!("arn:aws:iot:us-east-1:123456789012:thinggroup/{group}")
    }

    /// `aws iot create-ota-update` with `files` (see [`Self::signed_file`]) plus `extra` request fields (rollout, abort, timeout, target selection…), given
    /// as `--cli-input-json`; waits for CREATE_COMPLETE and returns `otaUpdateInfo`.
    pub fn create_ota(
        &self,
        id: &str,
        files: Value,
        targets: &[String],
        protocols: &[&str],
        extra: Value,
    ) -> Value {
        let mut input = json!({
            "otaUpdateId": id,
            "targets": targets,
            "protocols": protocols,
            "files": files,
            "roleArn": ROLE,
        });
        if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
            input.extend(extra.clone());
        }
        let arg = self.json_file(&format!("{id}.json"), &input);
        let created = self.aws(&["iot", "create-ota-update", "--cli-input-json", &arg]);
        assert_eq!(created["awsIotJobId"], format!("AFR_OTA-{id}"), "{created}");
        let info = self.wait_for(
            id,
            || self.cli(&format!("iot get-ota-update --ota-update-id {id}")),
            |v| v["otaUpdateInfo"]["otaUpdateStatus"] != "CREATE_PENDING",
        )["otaUpdateInfo"]
            .clone();
        assert_eq!(info["otaUpdateStatus"], "CREATE_COMPLETE", "{info}");
        info
    }

    /// The files JSON of one firmware image signed by `signer_job` (the server streams it).
    pub fn signed_file(signer_job: &str) -> Value {
        json!([{ "fileName": "/device/firmware.bin", "fileVersion": "1", "fileType": 0,
                 "codeSigning": { "awsSignerJobId": signer_job } }])
    }

    /// A device that trusts the dev code-signing certificate and takes 8 blocks per request.
    pub fn device(&self, thing: &str) -> DeviceConfig {
        let mut cfg = DeviceConfig::new(thing).fast(8);
        cfg.code_signing_cert_pem = Some(self.cert_pem.clone());
        cfg.self_test_wait_ms = 5_000;
        cfg
    }

    /// Starts `cfg` over plain MQTT (client id = thing name) on the server's runtime.
    pub fn spawn_device(
        &self,
        cfg: DeviceConfig,
        deadline: Duration,
    ) -> tokio::task::JoinHandle<DeviceReport> {
        let opts = RunOptions {
            deadline,
            ..RunOptions::default()
        };
        self.rt
            .spawn(run_device_with(cfg, self.server().mqtt_addr, None, opts))
    }

    /// Runs one device to its end (or `deadline`).
    pub fn run_device(&self, cfg: DeviceConfig, deadline: Duration) -> DeviceReport {
        let device = self.spawn_device(cfg, deadline);
        self.rt.block_on(device).expect("device task")
    }

    /// Waits for the devices' reports, in the order given.
    pub fn reports(
        &self,
        devices: Vec<tokio::task::JoinHandle<DeviceReport>>,
    ) -> Vec<DeviceReport> {
        devices
            .into_iter()
            .map(|d| self.rt.block_on(d).expect("device task"))
            .collect()
    }

    /// `aws iot describe-job` → `job`.
    pub fn job(&self, job_id: &str) -> Value {
        self.cli(&format!("iot describe-job --job-id {job_id}"))["job"].clone()
    }

    /// Polls `describe-job` until the job has `status`.
    pub fn wait_job(&self, job_id: &str, status: &str) -> Value {
        self.wait_for(job_id, || self.job(job_id), |j| j["status"] == status)
    }

    /// `aws iot describe-job-execution` → `execution`.
    pub fn execution(&self, job_id: &str, thing: &str) -> Value {
        self.cli(&format!(
            "iot describe-job-execution --job-id {job_id} --thing-name {thing}"
        ))["execution"]
            .clone()
    }
}

/// The backend configuration of `stack`, as `serve --database-url … --object-store s3://…
/// --s3-endpoint …` builds it from its flags and environment.
fn pg_config(
    stack: &otastream_testkit::Stack,
    cache: &std::path::Path,
) -> otastream_store_pg::PgConfig {
    otastream_store_pg::PgConfig {
        database_url: stack.database_url.clone(),
        objects: otastream_store_pg::S3Location {
            bucket: otastream_testkit::STACK_BUCKET.to_owned(),
            endpoint: Some(stack.s3.endpoint()),
            region: "us-east-1".to_owned(),
            access_key_id: stack.s3.access_key_id().to_owned(),
            secret_access_key: stack.s3.secret_access_key().to_owned(),
        },
        cache_dir: cache.to_owned(),
        pool_size: otastream_store_pg::DEFAULT_POOL_SIZE,
    }
}

/// The ARNs of things `names`.
pub fn thing_arns(names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|name| format!("arn:aws:iot:us-east-1:123456789012:thing/{name}"))
        .collect()
}

/// The device updated: SUCCEEDED on [`UPDATED`], the final status acknowledged, and the download
/// never restarted (notify-next is not repeated mid-download).
pub fn assert_updated(report: &DeviceReport) {
    assert_eq!(
        report.status,
        FinalStatus::Succeeded { version: UPDATED },
        "{report:?}"
    );
    assert!(report.final_status_acked, "{report:?}");
    assert_eq!(report.stats.restarts, 0, "{report:?}");
}
