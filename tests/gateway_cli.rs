//! The `otastream` binary: `serve` prints one ready line with the bound addresses and stops cleanly
//! on SIGTERM; `dev-cert` writes a device certificate the running server accepts.

mod gateway_support;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use gateway_support::Device;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_otastream");

/// `otastream ready http=A mqtt=B mqtts=C` → (A, B, C).
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
    Ok((next("http")?, next("mqtt")?, next("mqtts")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(unix)]
async fn serve_prints_one_ready_line_accepts_dev_certs_and_stops_on_sigterm() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let any = "127.0.0.1:0";
    let mut server = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--http", any, "--mqtt", any, "--mqtts", any])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdout = BufReader::new(server.stdout.take().context("stdout")?);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line)).await??;
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

    let pid = server.id().context("pid")?;
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    assert!(killed.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait()).await??;
    assert!(exit.success(), "exit status {exit:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await?;
    assert_eq!(rest, "", "exactly one line on stdout");
    Ok(())
}
