//! `otastream serve` refuses the unauthenticated plain MQTT port off loopback unless asked
//! explicitly (issue 12). Only the refusal is tested: tests never bind anything but loopback.

use std::process::Command;

#[test]
fn plain_mqtt_off_loopback_is_refused_without_the_explicit_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_otastream"))
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .args(["--mqtts", "127.0.0.1:0", "--mqtt", "0.0.0.0:0"])
        .output()
        .expect("run otastream");
    assert!(!out.status.success(), "refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address")
            && stderr.contains("--unauthenticated-mqtt-on-network"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("data dir")
            .next()
            .is_none(),
        "refused before opening the data directory"
    );
}
