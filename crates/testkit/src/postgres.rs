//! A throw-away PostgreSQL cluster: `initdb` in a temporary directory, `postgres` on 127.0.0.1 and a
//! free port with its unix socket in that directory, trust authentication for the `postgres` role.
//!
//! PostgreSQL refuses to run as root, so under root both run as `nobody` (through `setpriv`) and the
//! directory is handed to that user. The binaries come from `OTASTREAM_PG_BIN` or the newest
//! `/usr/lib/postgresql/<N>/bin` (Debian's `postgresql` package).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;

use crate::{Error, Server, free_port, run};

/// The unprivileged user the cluster runs as when the tests run as root (`nobody` on Debian).
const UNPRIVILEGED_UID: u32 = 65534;
const UNPRIVILEGED_GID: u32 = 65534;
/// How long start-up (including crash recovery after a kill) may take.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a fast shutdown (its checkpoint, on a busy machine) may take before the server is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A running PostgreSQL cluster, stopped by PID and removed when dropped.
pub struct Postgres {
    server: Option<Server>,
    bin: PathBuf,
    port: u16,
    dir: TempDir,
}

impl Postgres {
    /// Creates and starts a new cluster; fails (never skips) when PostgreSQL is not installed.
    pub fn start() -> Result<Self, Error> {
        let bin = server_bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("otastream-pg-")
            .tempdir()
            .map_err(|e| Error::new(format!("postgres: temporary directory: {e}")))?;
        if as_root() {
            std::os::unix::fs::chown(dir.path(), Some(UNPRIVILEGED_UID), Some(UNPRIVILEGED_GID))
                .map_err(|e| Error::new(format!("postgres: chown {:?}: {e}", dir.path())))?;
        }
        let data = dir.path().join("data");
        let mut initdb = unprivileged(&bin.join("initdb"));
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .env("LC_ALL", "C");
        run("postgres: initdb", &mut initdb)?;
        let mut cluster = Self {
            server: None,
            bin,
            port: free_port()?,
            dir,
        };
        cluster.resume()?;
        Ok(cluster)
    }

    /// The superuser URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on this cluster (as the `postgres` superuser).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` (lower-case letters, digits, `_`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::new(format!("postgres: bad database name {name:?}")));
        }
        run(
            "postgres: create database",
            Command::new(self.bin.join("psql"))
                .args(["--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--quiet"])
                .arg(format!("--dbname={}", self.url()))
                .arg(format!("--command=CREATE DATABASE {name}")),
        )?;
        Ok(self.database_url(name))
    }

    /// Stops the server (fast shutdown, then kill) and keeps the data: [`Postgres::resume`] restarts
    /// it on the same port. For tests of an unreachable database.
    pub fn pause(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Signal::INT, STOP_GRACE);
        }
    }

    /// Kills the server without a shutdown (`SIGKILL`), as a crash would; [`Postgres::resume`]
    /// recovers it.
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop(Signal::KILL, STOP_GRACE);
        }
    }

    /// Starts the server on the existing data directory and waits until it accepts connections.
    pub fn resume(&mut self) -> Result<(), Error> {
        if self.server.is_some() {
            return Ok(());
        }
        let log = self.dir.path().join("postgres.log");
        let mut command = unprivileged(&self.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-k")
            .arg(self.dir.path())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-c",
                "max_connections=200",
                "-c",
                "listen_addresses=127.0.0.1",
            ]);
        let (isready, port) = (self.bin.join("pg_isready"), self.port.to_string());
        let server = Server::start("postgres", command, &log, START_TIMEOUT, || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        self.server = Some(server);
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.pause();
    }
}

/// True when this process runs as root (PostgreSQL then runs as `nobody`).
fn as_root() -> bool {
    rustix::process::getuid().is_root()
}

/// `program`, run as the unprivileged user when we are root.
fn unprivileged(program: &Path) -> Command {
    if as_root() {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={UNPRIVILEGED_UID}"))
            .arg(format!("--regid={UNPRIVILEGED_GID}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The PostgreSQL server binaries: `OTASTREAM_PG_BIN`, else the newest `/usr/lib/postgresql/<N>/bin`.
fn server_bin_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("OTASTREAM_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        Error::new(
            "postgres: no PostgreSQL server binaries in /usr/lib/postgresql/<N>/bin \
             (apt-get install postgresql, or set OTASTREAM_PG_BIN)",
        )
    })
}
