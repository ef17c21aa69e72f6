//! Shared by the `control_plane_*` tests: `otastream serve` as a child process on loopback
//! port 0, and the real `aws` CLI pointed at it with an isolated HOME.

#![allow(dead_code)]

pub mod identity;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_otastream");
/// IAM role ARN the workflow passes along (stored, never checked).
pub const ROLE: &str = "arn:aws:iam::123456789012:role/ota-role";
/// Credentials the server is started with and the CLI signs with.
pub const AKID: &str = "AKIACONTROLPLANETEST1";
/// Secret for [`AKID`].
pub const SECRET: &str = "control-plane-test-secret";

/// The `otastream` binary under test.
pub const OTASTREAM: &str = BIN;

/// A running `otastream serve` process (killed with SIGKILL when dropped).
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The plain MQTT listener.
    pub mqtt: SocketAddr,
    /// The MQTT over TLS listener.
    pub mqtts: SocketAddr,
    home: PathBuf,
}

impl Serve {
    /// Starts the server on `data`; the CLI's HOME (and scratch files) is `home`.
    pub fn start(data: &Path, home: &Path) -> Self {
        Self::start_on(data, home, None, &[])
    }

    /// [`Serve::start`] with extra `serve` arguments (`--public-host`, ...).
    pub fn start_with(data: &Path, home: &Path, extra: &[&str]) -> Self {
        Self::start_on(data, home, None, extra)
    }

    /// [`Serve::start_with`] with metadata and objects in `stack` (PostgreSQL + SeaweedFS) when
    /// given.
    pub fn start_on(
        data: &Path,
        home: &Path,
        stack: Option<&otastream_testkit::Stack>,
        extra: &[&str],
    ) -> Self {
        let mut command = Command::new(BIN);
        command
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--mqtt",
                "127.0.0.1:0",
                "--mqtts",
                "127.0.0.1:0",
                "--https",
                "127.0.0.1:0",
            ])
            .args([
                "--access-key-id",
                AKID,
                "--secret-access-key",
                SECRET,
                "--data-dir",
            ])
            .arg(data)
            .args(extra);
        if let Some(stack) = stack {
            command.args(stack.serve_args()).envs(stack.serve_env());
        }
        // The server's log, appended across restarts, quoted when it does not come up.
        let log_path = home.join("otastream-serve.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("server log");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn otastream serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let addr = |key: &str| -> String {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .unwrap_or_else(|| {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    panic!("otastream serve did not start: {log}")
                })
                .to_owned()
        };
        let mqtt = addr("mqtt=").parse().expect("mqtt address");
        let mqtts = addr("mqtts=").parse().expect("mqtts address");
        Self {
            endpoint: format!("http://{}", addr("http=")),
            mqtt,
            mqtts,
            child,
            home: home.to_path_buf(),
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Serve {
    /// A test that ends (or panics) without [`Serve::kill`] must not leave its server running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serve {
    /// One `aws` command (whitespace-separated arguments) signed with `secret`: JSON or stderr.
    pub fn try_aws_with(&self, secret: &str, line: &str) -> Result<Value, String> {
        let out = Command::new("aws")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(
                ["PYENV_ROOT", "PYENV_VERSION", "LANG"]
                    .iter()
                    .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
            )
            .env("HOME", &self.home)
            .env("AWS_CONFIG_FILE", self.home.join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.home.join("none"))
            .env("AWS_ACCESS_KEY_ID", AKID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .current_dir(&self.home)
            .args(["--endpoint-url", &self.endpoint, "--output", "json"])
            .args(line.split_whitespace())
            .output()
            .expect("the aws CLI is installed (pip install awscli)");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        Ok(if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or(Value::Null)
        })
    }

    /// [`Serve::try_aws_with`] with the right secret.
    pub fn try_aws(&self, line: &str) -> Result<Value, String> {
        self.try_aws_with(SECRET, line)
    }

    /// An `aws` command that must succeed.
    pub fn aws(&self, line: &str) -> Value {
        self.try_aws(line)
            .unwrap_or_else(|e| panic!("aws {line}: {e}"))
    }

    /// Polls an `aws` command until `done` holds (background work: signing, OTA creation).
    pub fn wait_for(&self, line: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.aws(line);
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{line} never finished: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Uploads `fw` to a new versioned bucket, signs it with the dev certificate through signer
    /// (profile `certname=ota.crt`) and returns (object version, signer job id, certificate ARN).
    pub fn upload_and_sign(&self, bucket: &str, fw: &[u8]) -> (String, String, String) {
        std::fs::write(self.home.join("fw.bin"), fw).expect("firmware");
        self.aws(&format!("s3 mb s3://{bucket}"));
        self.aws(&format!("s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"));
        let put = self.aws(&format!(
            "s3api put-object --bucket {bucket} --key fw.bin --body fw.bin"
        ));
        let version = put["VersionId"].as_str().expect("version").to_owned();
        let certs = self.aws("acm list-certificates");
        let cert = certs["CertificateSummaryList"][0]["CertificateArn"]
            .as_str()
            .expect("dev cert")
            .to_owned();
        self.aws(&format!(
            "signer put-signing-profile --profile-name p1 --platform AmazonFreeRTOS-Default \
             --signing-material certificateArn={cert} --signing-parameters certname=ota.crt"
        ));
        let job = self.aws(&format!(
            "signer start-signing-job --profile-name p1 --source s3={{bucketName={bucket},key=fw.bin,version={version}}} \
             --destination s3={{bucketName={bucket},prefix=SignedImages/}}"
        ));
        let job_id = job["jobId"].as_str().expect("job id").to_owned();
        let done = self.wait_for(
            &format!("signer describe-signing-job --job-id {job_id}"),
            |j| j["status"] != "InProgress",
        );
        assert_eq!(done["status"], "Succeeded", "{done}");
        (version, job_id, cert)
    }

    /// Writes `value` as JSON into HOME; returns its `file://` argument.
    pub fn json_file(&self, name: &str, value: &Value) -> String {
        let path = self.home.join(name);
        std::fs::write(&path, value.to_string()).expect("json file");
        format!("file://{}", path.display())
    }
}
