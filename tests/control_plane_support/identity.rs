//! Device-identity helpers of the `control_plane_identity` and `identity_mtls` tests: certificates
//! made with the `openssl` command line (a user's own CA, as the AWS IoT developer guide does).

use std::path::Path;
use std::process::Command;

/// A JSON string's text (panics on anything else).
pub fn text(v: &serde_json::Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// `openssl` with `args` in `dir`; must succeed.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `<name>.key` / `<name>.pem` in `dir`, CN `cn`, signed by `ca.pem` / `ca.key` (an X.509 v3
/// client certificate: TLS libraries refuse v1 ones).
pub fn signed_by_ca(dir: &Path, name: &str, cn: &str) {
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    .expect("extensions file");
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    // PKCS#8, the form every TLS client library reads.
    let pkcs8 = format!("{name}.pk8");
    openssl(
        dir,
        &["pkcs8", "-topk8", "-nocrypt", "-in", &key, "-out", &pkcs8],
    );
    std::fs::rename(dir.join(&pkcs8), dir.join(&key)).expect("key");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "leaf.ext",
            "-out",
            &pem,
        ],
    );
}
