//! SeaweedFS as the S3 service: `weed server -s3` in a temporary directory, every port on
//! 127.0.0.1 and free (each one's gRPC companion, port + 10000, too), telemetry off, the
//! Iceberg/Lance ports disabled, and one identity given through `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY` (SeaweedFS then checks every request's signature).
//!
//! `weed` comes from `OTASTREAM_WEED`, else from the directory `pip` installs scripts to (pyenv's
//! shims would run it under a wrapper whose PID is not the server's), else `PATH`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;

use crate::{Error, Server, free_port, http_answers, port_is_free, run};

/// How long start-up may take (master election, volume registration).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `weed` gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// SeaweedFS opens a gRPC port at each HTTP port + this.
const GRPC_OFFSET: u16 = 10_000;

/// The identity the server accepts (and the only one).
const ACCESS_KEY_ID: &str = "otastream-test";
const SECRET_ACCESS_KEY: &str = "otastream-test-secret";

/// A running SeaweedFS with its S3 gateway, stopped by PID and removed when dropped.
pub struct SeaweedFs {
    server: Option<Server>,
    weed: PathBuf,
    ports: Ports,
    dir: TempDir,
}

/// The four HTTP ports `weed server -s3` listens on (gRPC on each + 10000).
#[derive(Clone, Copy)]
struct Ports {
    master: u16,
    volume: u16,
    filer: u16,
    s3: u16,
}

impl SeaweedFs {
    /// Starts a new, empty server; fails (never skips) when `weed` is not installed.
    pub fn start() -> Result<Self, Error> {
        let weed = weed_binary();
        let dir = tempfile::Builder::new()
            .prefix("otastream-weed-")
            .tempdir()
            .map_err(|e| Error::new(format!("seaweedfs: temporary directory: {e}")))?;
        std::fs::create_dir(dir.path().join("data"))
            .map_err(|e| Error::new(format!("seaweedfs: data directory: {e}")))?;
        let mut server = Self {
            server: None,
            weed,
            ports: Ports::free()?,
            dir,
        };
        server.resume()?;
        Ok(server)
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.s3)
    }

    /// The access key id requests must be signed with.
    pub fn access_key_id(&self) -> &'static str {
        ACCESS_KEY_ID
    }

    /// The secret access key requests must be signed with.
    pub fn secret_access_key(&self) -> &'static str {
        SECRET_ACCESS_KEY
    }

    /// Creates bucket `name` (3+ characters) through `weed shell`.
    pub fn create_bucket(&self, name: &str) -> Result<(), Error> {
        if name.len() < 3
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::new(format!("seaweedfs: bad bucket name {name:?}")));
        }
        let mut shell = Command::new(&self.weed);
        shell
            .arg("shell")
            .arg(format!("-master=127.0.0.1:{}", self.ports.master))
            .arg(format!("-filer=127.0.0.1:{}", self.ports.filer))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = shell
            .spawn()
            .map_err(|e| Error::new(format!("seaweedfs: weed shell: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "s3.bucket.create -name {name}");
        }
        let output = child
            .wait_with_output()
            .map_err(|e| Error::new(format!("seaweedfs: weed shell: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains(&format!("created bucket {name}")) {
            return Err(Error::new(format!(
                "seaweedfs: creating bucket {name}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// Stops the server and keeps its data: [`SeaweedFs::resume`] restarts it on the same ports.
    /// For tests of an unreachable object store.
    pub fn pause(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Signal::TERM, STOP_GRACE);
        }
    }

    /// Starts the server on the existing directory and waits until S3 answers.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.server.is_some() {
            return Ok(());
        }
        let root = self.dir.path();
        let log = root.join("weed.log");
        let Ports {
            master,
            volume,
            filer,
            s3,
        } = self.ports;
        let mut command = Command::new(&self.weed);
        command
            .current_dir(root)
            .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-dir={}", root.join("data").display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            .args(["-s3", &format!("-s3.port={s3}")])
            .args([
                "-master.telemetry=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=0"])
            .arg(format!(
                "-filer.localSocket={}",
                root.join("filer.sock").display()
            ))
            .arg(format!(
                "-s3.localSocket={}",
                root.join("s3.sock").display()
            ))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY);
        let server = Server::start("seaweedfs", command, &log, START_TIMEOUT, || {
            http_answers(s3)
        })?;
        self.server = Some(server);
        Ok(())
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.pause();
    }
}

impl Ports {
    /// Four distinct free ports whose gRPC companions (+10000) are free too.
    fn free() -> Result<Self, Error> {
        let mut found: Vec<u16> = Vec::with_capacity(4);
        for _ in 0..500 {
            let port = free_port()?;
            let usable = port.checked_add(GRPC_OFFSET).is_some_and(port_is_free)
                && !found.contains(&port)
                && !found
                    .iter()
                    .any(|p| p + GRPC_OFFSET == port || port + GRPC_OFFSET == *p);
            if usable {
                found.push(port);
                if let [master, volume, filer, s3] = found[..] {
                    return Ok(Self {
                        master,
                        volume,
                        filer,
                        s3,
                    });
                }
            }
        }
        Err(Error::new(
            "seaweedfs: no four free ports with free port+10000",
        ))
    }
}

/// `OTASTREAM_WEED`, else `weed` in pip's scripts directory, else `weed` on `PATH`.
fn weed_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("OTASTREAM_WEED") {
        return PathBuf::from(path);
    }
    let scripts = run(
        "seaweedfs: python scripts directory",
        Command::new("python3").args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ]),
    );
    if let Ok(scripts) = scripts {
        let candidate = PathBuf::from(scripts.trim()).join("weed");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("weed")
}
