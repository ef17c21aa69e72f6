//! The HTTP listener's limits (issue 14), on the whole server: 2,000 slowloris connections (a
//! request head never finished) are all closed by the header timeout while a normal `aws` CLI
//! call still succeeds; a body that stops is cut off; a connection over the limit gets a clear
//! `503 SlowDown`. Outcomes are asserted, never timings: latencies are printed (`--nocapture`).

#[path = "../crates/api/tests/common/mod.rs"]
mod api_cli;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use otastream::http_listener::HttpLimits;
use otastream::server::{self, RunningServer, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Half-open connections of the slowloris test.
const SLOWLORIS: usize = 2_000;
/// The header (and idle) timeout the tests run with.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The slowloris test's header timeout: longer than an `aws` CLI call (≈ 3 s on the shared
/// machine), so the call runs while the half-open connections are still held.
const SLOWLORIS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A liveness bound for "the server closed it": far above the timeout, so never a timing claim.
const CLOSED_WITHIN: Duration = Duration::from_secs(60);

fn start(
    rt: &tokio::runtime::Runtime,
    data: &std::path::Path,
    header_timeout: Duration,
    max_connections: usize,
) -> RunningServer {
    let mut cfg = ServerConfig::ephemeral(data);
    cfg.api.access_key_id = api_cli::AKID.into();
    cfg.api.secret_access_key = api_cli::SECRET.into();
    cfg.http_limits = HttpLimits {
        header_timeout,
        body_idle_timeout: header_timeout,
        max_connections,
    };
    rt.block_on(server::start(cfg)).expect("server starts")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Raises the soft open-files limit far enough for both ends of `SLOWLORIS` connections.
fn ensure_open_files(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    if cur.current.is_some_and(|soft| soft >= want) || cur.current.is_none() {
        return;
    }
    let raised = Rlimit {
        current: Some(cur.maximum.map_or(want, |hard| hard.min(want))),
        maximum: cur.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        now >= want,
        "this test needs {want} open files (both ends of {SLOWLORIS} connections); the limit is {now}"
    );
}

/// Reads until the server closes the connection (EOF or reset); `false` if it is still open
/// after [`CLOSED_WITHIN`]. Returns what was read too.
async fn closed_by_server(stream: &mut TcpStream) -> (bool, Vec<u8>) {
    let (closed, seen, _) = closed_at(stream).await;
    (closed, seen)
}

/// [`closed_by_server`] and when the close was seen.
async fn closed_at(stream: &mut TcpStream) -> (bool, Vec<u8>, Instant) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(CLOSED_WITHIN, read_all).await.is_ok();
    (closed, seen, Instant::now())
}

/// One `aws` CLI call, timed.
fn timed_cli(cli: &api_cli::Cli, line: &str) -> Duration {
    let t = Instant::now();
    cli.cli(line);
    t.elapsed()
}

#[test]
fn slowloris_connections_are_closed_by_the_header_timeout_while_the_cli_still_works() {
    ensure_open_files(2 * SLOWLORIS as u64 + 512);
    let rt = runtime();
    let dir = tempfile::tempdir().expect("data dir");
    let home = tempfile::tempdir().expect("home");
    let server = start(&rt, dir.path(), SLOWLORIS_HEADER_TIMEOUT, 4 * SLOWLORIS);
    let cli = api_cli::Cli::new(server.http_addr.port(), home.path());
    let before = timed_cli(&cli, "iot list-things");

    let addr = server.http_addr;
    let opened_at = Instant::now();
    let attackers: Vec<_> = (0..SLOWLORIS)
        .map(|_| {
            rt.spawn(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(b"GET /streams HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await
                    .expect("half a request head");
                s
            })
        })
        .collect();
    let mut attackers: Vec<TcpStream> = attackers
        .into_iter()
        .map(|a| rt.block_on(a).expect("attacker"))
        .collect();
    let opened = opened_at.elapsed();
    // The close of every connection is watched from now on, while the CLI is served.
    let closing = rt.spawn(async move {
        let all = attackers.iter_mut().map(closed_at);
        let closes: Vec<_> = futures_util::future::join_all(all)
            .await
            .into_iter()
            .map(|(closed, seen, at)| (closed, seen.is_empty(), at))
            .collect();
        drop(attackers);
        closes
    });
    let during = timed_cli(&cli, "iot list-things");
    let cli_done = Instant::now();
    let closing = rt.block_on(closing).expect("watcher");
    let still_open = closing.iter().filter(|(closed, ..)| !closed).count();
    let answered = closing.iter().filter(|(_, empty, _)| !empty).count();
    let open_during_cli = closing.iter().filter(|(.., at)| *at > cli_done).count();
    let last_close = closing
        .iter()
        .map(|(.., at)| *at)
        .max()
        .unwrap_or(opened_at);
    let after = timed_cli(&cli, "iot list-things");
    eprintln!(
        "slowloris: {SLOWLORIS} half-open connections opened in {opened:?}; {open_during_cli} still open \
         when the CLI call during the attack returned; the last closed {:?} after the first was opened \
         (header timeout {SLOWLORIS_HEADER_TIMEOUT:?}); aws iot list-things {before:?} before, {during:?} \
         during, {after:?} after",
        last_close.duration_since(opened_at)
    );
    assert_eq!(still_open, 0, "connections the server never closed");
    assert_eq!(answered, 0, "a half-open request got an answer");
    rt.block_on(server.shutdown());
}

#[test]
fn a_body_that_stops_is_cut_off_and_an_idle_connection_closed() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("data dir");
    let server = start(&rt, dir.path(), HEADER_TIMEOUT, 64);
    let addr = server.http_addr;
    rt.block_on(async {
        // A complete head promising 100 bytes, then 10 and silence.
        let mut stalled = TcpStream::connect(addr).await.expect("connect");
        stalled
            .write_all(
                b"PUT /bucket/key HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
            )
            .await
            .expect("write");
        let (closed, _) = closed_by_server(&mut stalled).await;
        assert!(closed, "a stalled body keeps its connection");

        // A connection that never sends anything.
        let mut idle = TcpStream::connect(addr).await.expect("connect");
        let (closed, seen) = closed_by_server(&mut idle).await;
        assert!(closed && seen.is_empty(), "an idle connection stays open");

        // Keep-alive: one answered request, then silence.
        let mut kept = TcpStream::connect(addr).await.expect("connect");
        kept.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let (closed, seen) = closed_by_server(&mut kept).await;
        assert!(closed, "an idle keep-alive connection stays open");
        assert!(
            seen.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&seen)
        );
    });
    rt.block_on(server.shutdown());
}

#[test]
fn connections_over_the_limit_get_a_clear_refusal() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("data dir");
    // Timeouts far longer than the test: the held connections keep their slots throughout.
    let server = start(&rt, dir.path(), CLOSED_WITHIN, 4);
    let refused = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(open_and_check(server.http_addr).await);
        }
        let mut extra = TcpStream::connect(server.http_addr).await.expect("connect");
        // The refusal is sent at once and the connection closed (no request needed).
        let (closed, seen) = closed_by_server(&mut extra).await;
        assert!(closed);
        drop(held);
        String::from_utf8_lossy(&seen).into_owned()
    });
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("<Code>SlowDown</Code>"), "{refused}");
    rt.block_on(server.shutdown());
}

/// A connection that has been served once (so it holds a slot), kept open.
async fn open_and_check(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.expect("answer");
    assert_eq!(&buf, b"HTTP/1.1 200");
    s
}
