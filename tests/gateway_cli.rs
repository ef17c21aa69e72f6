//! The `otastream` binary: `serve` prints one ready line with the bound addresses and stops cleanly
//! on SIGTERM, also while devices and HTTP clients still hold connections open; `dev-cert` writes a
//! device certificate the running server accepts.

mod gateway_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use gateway_support::Device;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_otastream");

/// `otastream ready http=A https=H mqtt=B mqtts=C` → (A, B, C) (HTTPS: tests/https_cli.rs).
fn parse_ready(line: &str) -> anyhow::Result<(SocketAddr, SocketAddr, SocketAddr)> {
    let rest = line
        .strip_prefix("otastream ready ")
        .context("ready prefix")?;
    let mut addrs = rest.split(' ').map(|kv| {
        kv.split_once('=')
            .map(|(k, v)| (k, v.parse::<SocketAddr>()))
    });
    let mut next = |key: &str| -> anyhow::Result<SocketAddr> {
        match addrs.next().flatten() {
            Some((k, Ok(addr))) if k == key => Ok(addr),
            other => anyhow::bail!("expected {key}=<addr>, got {other:?}"),
        }
    };
    let http = next("http")?;
    next("https")?;
    Ok((http, next("mqtt")?, next("mqtts")?))
}

/// Starts `otastream serve` on port 0 everywhere; returns the child, its stdout after the first
/// line, and that line.
async fn serve(data: &Path) -> anyhow::Result<(Child, BufReader<ChildStdout>, String)> {
    let any = "127.0.0.1:0";
    let mut server = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--http", any, "--https", any, "--mqtt", any, "--mqtts", any])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = BufReader::new(server.stdout.take().context("stdout")?);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await??;
    Ok((server, stdout, line))
}

/// Sends SIGTERM and requires a successful exit within 20 s (a liveness bound, not a timing
/// claim: a clean stop takes well under a second; the server's own drain limits total 10 s).
async fn sigterm_and_wait(server: &mut Child) -> anyhow::Result<()> {
    let pid = server.id().context("pid")?;
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .context("the server did not exit within 20 s of SIGTERM")??;
    assert!(exit.success(), "exit status {exit:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(unix)]
async fn serve_prints_one_ready_line_accepts_dev_certs_and_stops_on_sigterm() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (mut server, mut stdout, line) = serve(&data).await?;
    let (http, mqtt, mqtts) = parse_ready(line.trim_end())?;
    assert!(
        [http, mqtt, mqtts]
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() != 0),
        "{line}"
    );
    assert!(
        data.join("pki").join("ca.pem").exists(),
        "the dev CA was generated"
    );

    Device::tcp(mqtt, "cli-dev").await?;

    let certs = dir.path().join("certs");
    let status = Command::new(BIN)
        .args(["dev-cert", "--data-dir"])
        .arg(&data)
        .args(["--thing", "cli-tls", "--out"])
        .arg(&certs)
        .stdout(Stdio::null())
        .status()
        .await?;
    assert!(status.success());
    let cert = std::fs::read_to_string(certs.join("cli-tls.cert.pem"))?;
    let key = std::fs::read_to_string(certs.join("cli-tls.key.pem"))?;
    let ca = std::fs::read_to_string(data.join("pki").join("ca.pem"))?;
    Device::tls(mqtts, "cli-tls", &ca, Some((&cert, &key))).await?;

    sigterm_and_wait(&mut server).await?;
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await?;
    assert_eq!(rest, "", "exactly one line on stdout");
    Ok(())
}

/// SIGTERM while clients still hold connections open: connected devices (clean and persistent
/// sessions), an HTTP keep-alive connection after a response, and an HTTP client that sent half a
/// request and went silent (axum's graceful shutdown alone waits for that one forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(unix)]
async fn sigterm_stops_the_server_while_clients_hold_connections() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut server, _stdout, line) = serve(&dir.path().join("data")).await?;
    let (http, mqtt, _) = parse_ready(line.trim_end())?;

    let mut devices = Vec::new();
    for i in 0..20 {
        let thing = format!("held-{i}");
        devices.push(if i % 2 == 0 {
            Device::tcp(mqtt, &thing).await?
        } else {
            Device::tcp_persistent(mqtt, &thing).await?
        });
    }
    let mut keep_alive = TcpStream::connect(http).await?;
    keep_alive
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: otastream\r\n\r\n")
        .await?;
    let mut response = [0u8; 64];
    let n = keep_alive.read(&mut response).await?;
    assert!(response[..n].starts_with(b"HTTP/1.1 200"), "{response:?}");
    let mut half_request = TcpStream::connect(http).await?;
    half_request
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: otastream\r\n")
        .await?;
    // The accept loop takes connections in order: once a later connection is answered, the half
    // request's connection has been accepted and handed to its own task.
    let mut probe = TcpStream::connect(http).await?;
    probe
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: otastream\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).await?;
    assert!(answer.starts_with(b"HTTP/1.1 200"));

    sigterm_and_wait(&mut server).await?;
    drop((devices, keep_alive, half_request));
    Ok(())
}
