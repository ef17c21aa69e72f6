//! `otastream serve --database-url ... --object-store s3://... --s3-endpoint ...`: an unreachable
//! PostgreSQL or S3 service at start-up is one error line naming it, and a non-zero exit. (Serving
//! from a reachable backend is `control_plane_cli`'s seed workflow on PostgreSQL and S3.)

use std::net::TcpListener;
use std::process::{Command, Output};

use otastream_testkit::Postgres;

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `otastream serve` with the PostgreSQL backend flags, on ephemeral ports.
fn serve(database_url: &str, bucket: &str, endpoint: &str, secret: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_otastream"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--http",
            "127.0.0.1:0",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtts",
            "127.0.0.1:0",
        ])
        .args(["--database-url", database_url])
        .args(["--object-store", &format!("s3://{bucket}")])
        .args(["--s3-endpoint", endpoint])
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("AWS_ACCESS_KEY_ID", "otastream-test")
        .env("AWS_REGION", "us-east-1");
    if let Some(secret) = secret {
        command.env("AWS_SECRET_ACCESS_KEY", secret);
    }
    command.output().expect("run otastream")
}

/// The error lines of a failed run (the dev-credentials notice aside).
fn error_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with("otastream: using the dev"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn unreachable_postgres_or_s3_at_start_up_is_one_line_and_a_failed_exit() {
    let port = closed_port();
    let out = serve(
        &format!("postgres://otastream:pw@127.0.0.1:{port}/otastream"),
        "firmware",
        &format!("http://127.0.0.1:{}", closed_port()),
        Some("x"),
    );
    assert!(!out.status.success());
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("PostgreSQL at 127.0.0.1:{port}/otastream")),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("onnection refused"),
        "the cause is named: {lines:?}"
    );
    assert!(
        !lines[0].contains("pw@"),
        "no password in errors: {lines:?}"
    );

    let pg = Postgres::start().expect("PostgreSQL (apt-get install postgresql)");
    let url = pg.create_database("otastream").expect("database");
    let s3_port = closed_port();
    let out = serve(
        &url,
        "firmware",
        &format!("http://127.0.0.1:{s3_port}"),
        Some("x"),
    );
    assert!(!out.status.success());
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!(
            "object store s3://firmware at http://127.0.0.1:{s3_port}"
        )),
        "{lines:?}"
    );

    let out = serve(&url, "firmware", "http://127.0.0.1:1", None);
    assert!(!out.status.success());
    let lines = error_lines(&out);
    assert!(lines[0].contains("AWS_SECRET_ACCESS_KEY"), "{lines:?}");
}
