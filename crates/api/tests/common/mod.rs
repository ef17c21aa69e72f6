//! Test harness: the control plane on 127.0.0.1:0 over a Store in a tempdir, and the real `aws`
//! CLI / python3 (boto3) as clients with an isolated HOME and config.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use otastream_api::{ApiConfig, ApiState};
use otastream_store::Store;
use serde_json::Value;

pub const AKID: &str = "AKIATESTOTASTREAM001";
pub const SECRET: &str = "test-secret-for-the-control-plane";

/// A running in-process server; stops when dropped. Derefs to its [`Cli`].
pub struct TestServer {
    cli: Cli,
    _dir: tempfile::TempDir,
    _home: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for TestServer {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

/// The client side: the `aws` CLI and python3 pointed at one endpoint, with an isolated HOME.
pub struct Cli {
    endpoint: String,
    home: PathBuf,
}

impl TestServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = tempfile::tempdir().expect("home");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let data = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let port = listener.local_addr().expect("addr").port();
                let store = Store::open(&data).expect("store");
                let config = ApiConfig {
                    access_key_id: AKID.into(),
                    secret_access_key: SECRET.into(),
                    public_base_url: format!("http://127.0.0.1:{port}"),
                    ..ApiConfig::default()
                };
                let pki_dir = store.pki_dir();
                let state =
                    ApiState::new(std::sync::Arc::new(store), &pki_dir, config).expect("state");
                tokio::spawn(state.jobs.clone().run_timers(state.store.clone()));
                port_tx.send(port).expect("send port");
                axum::serve(listener, otastream_api::router(state))
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server started");
        let cli = Cli::new(port, home.path());
        Self {
            cli,
            _dir: dir,
            _home: home,
            shutdown: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Cli {
    /// A client for `127.0.0.1:port` whose HOME (and scratch files) is `home`.
    pub fn new(port: u16, home: &Path) -> Self {
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            home: home.to_path_buf(),
        }
    }

    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// A file path inside the test's scratch HOME.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.home.join(name)
    }

    fn env(&self, cmd: &mut Command, secret: &str) {
        let home = &self.home;
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_CONFIG_FILE", home.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
            .env("AWS_ACCESS_KEY_ID", AKID)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_PAGER", "");
        for var in [
            "PYENV_ROOT",
            "PYENV_VERSION",
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "LANG",
        ] {
            if let Ok(v) = std::env::var(var) {
                cmd.env(var, v);
            }
        }
    }

    /// Runs `aws --endpoint-url ... <args>` and returns (exit code, stdout, stderr).
    pub fn aws_with_secret(&self, secret: &str, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new("aws");
        self.env(&mut cmd, secret);
        cmd.arg("--endpoint-url")
            .arg(self.endpoint())
            .arg("--output")
            .arg("json")
            .args(args)
            .current_dir(&self.home);
        let out = cmd
            .output()
            .expect("the aws CLI is installed (pip install awscli)");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Runs an `aws` command that must succeed; returns its JSON output (`null` when empty).
    pub fn aws(&self, args: &[&str]) -> Value {
        let (rc, out, err) = self.aws_with_secret(SECRET, args);
        assert_eq!(rc, 0, "aws {args:?} failed: {err}");
        if out.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&out).unwrap_or(Value::String(out))
        }
    }

    /// Runs an `aws` command that must fail with `code`; returns stderr.
    pub fn aws_err(&self, code: &str, args: &[&str]) -> String {
        let (rc, _, err) = self.aws_with_secret(SECRET, args);
        assert_eq!(rc, 255, "aws {args:?} should fail with {code}: {err}");
        assert!(
            err.contains(&format!("({code})")),
            "aws {args:?}: expected {code}, got: {err}"
        );
        err
    }

    /// [`TestServer::aws`] with the arguments of one whitespace-separated line.
    pub fn cli(&self, line: &str) -> Value {
        self.aws(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// [`TestServer::aws_err`] with the arguments of one whitespace-separated line.
    pub fn cli_err(&self, code: &str, line: &str) -> String {
        self.aws_err(code, &line.split_whitespace().collect::<Vec<_>>())
    }

    /// Writes `value` as JSON into the scratch dir; returns the `file://` argument for it.
    pub fn json_file(&self, name: &str, value: &Value) -> String {
        let path = self.scratch(name);
        std::fs::write(&path, value.to_string()).expect("write json file");
        format!("file://{}", path.display())
    }

    /// Runs a python3 script (boto3) with the endpoint as argv[1]; returns stdout.
    pub fn python(&self, script: &Path) -> String {
        let mut cmd = Command::new("python3");
        self.env(&mut cmd, SECRET);
        let out = cmd
            .arg(script)
            .arg(self.endpoint())
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{} failed:\n{}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into()
    }

    /// Polls `get` until `done` holds (state changes made by background tasks).
    pub fn wait_for(
        &self,
        what: &str,
        mut get: impl FnMut() -> Value,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = get();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} never finished: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Deterministic firmware bytes.
pub fn firmware(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// A plain HTTP/1.1 GET (no signing) of `url` on 127.0.0.1: (status, headers, body).
pub fn http_get(url: &str, extra_headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in extra_headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head, raw[split + 4..].to_vec())
}
