//! HTTPS and the AWS embedded C agent's HTTP path (issue 14): the whole control plane and S3 are
//! driven with the `aws` CLI over the HTTPS port (`--ca-bundle` = the dev CA); presigned URLs are
//! built on `--public-url https://localhost` (no port, as the C agent needs) while the listener is
//! on an ephemeral port, which the device is given separately, as the agent's compile-time port.

mod ota_support;

use std::sync::Arc;

use ota_support::{
    BUCKET, DEADLINE, OtaServer, assert_updated, firmware, parse_response, thing_arns,
};
use otastream_device::{HttpTarget, Protocol};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The public URL of these tests: the default HTTPS port, so presigned URLs carry no port.
const PUBLIC_URL: &str = "https://localhost";

#[test]
fn an_http_ota_update_is_downloaded_over_https_with_a_port_less_presigned_url() {
    let ota = OtaServer::start_https(PUBLIC_URL);
    assert!(ota.endpoint().starts_with("https://"), "{}", ota.endpoint());
    let (fw, signer_job) = ota.signed_firmware("fw/https.bin", 50 * 1024 + 17, 9);
    let one = ota.create_things("https", 1);
    let thing = &one[0];
    ota.create_ota(
        "ota_https",
        OtaServer::signed_file(&signer_job),
        &thing_arns(&one),
        &["HTTP"],
        json!({ "awsJobPresignedUrlConfig": { "expiresInSec": 600 } }),
    );

    let doc = device_document(&ota, "AFR_OTA-ota_https", thing);
    let url = doc["afr_ota"]["files"][0]["update_data_url"]
        .as_str()
        .expect("presigned url")
        .to_owned();
    // The signed image (the signer's destination object) on the public URL, no port.
    assert!(
        url.starts_with(&format!("{PUBLIC_URL}/{BUCKET}/SignedImages/")),
        "{url}"
    );
    // The signature holds for the Host the C agent sends (no port) and with the default port.
    let port = ota.server().https_addr.port();
    let ca = ota.server().pki.ca_cert_pem.clone();
    for host in ["localhost", "localhost:443"] {
        let (status, head, body) = ota.block_on(https_get(&ca, port, host, &url, "bytes=0-99"));
        assert_eq!(
            (status, body.as_slice()),
            (206, &fw[..100]),
            "{host}: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-range: bytes 0-99/{}", fw.len())),
            "{head}"
        );
    }

    let mut cfg = ota.device(thing);
    cfg.preferred_protocol = Protocol::Http;
    cfg.http = HttpTarget {
        ca_pem: Some(ca),
        port: Some(port),
    };
    let report = ota.run_device(cfg, DEADLINE);
    assert_updated(&report);
    assert_eq!(report.sha256, Some(Sha256::digest(&fw).into()));
    assert!(report.stats.requests > 0, "{report:?}");
    let exec = ota.execution("AFR_OTA-ota_https", thing);
    assert_eq!(exec["status"], "SUCCEEDED", "{exec}");
}

#[test]
fn a_custom_job_document_with_aws_form_s3_urls_is_presigned_to_the_local_object() {
    let ota = OtaServer::start_https(PUBLIC_URL);
    let data = firmware(9_000, 4);
    ota.upload("docs/custom.bin", &data);
    let one = ota.create_things("custom", 1);
    let thing = &one[0];
    let forms = [
        format!("https://s3.amazonaws.com/{BUCKET}/docs/custom.bin"),
        format!("https://{BUCKET}.s3.amazonaws.com/docs/custom.bin"),
        format!("https://s3.eu-west-1.amazonaws.com/{BUCKET}/docs/custom.bin"),
    ];
    let document = json!({
        "operation": "download",
        "urls": forms.iter().map(|u| format!("${{aws:iot:s3-presigned-url:{u}}}")).collect::<Vec<_>>(),
    });
    let arns = thing_arns(&one);
    ota.aws(&[
        "iot",
        "create-job",
        "--job-id",
        "custom-doc",
        "--targets",
        &arns[0],
        "--document",
        &document.to_string(),
        "--presigned-url-config",
        "expiresInSec=300",
    ]);
    let doc = device_document(&ota, "custom-doc", thing);
    let urls = doc["urls"].as_array().expect("urls");
    assert_eq!(urls.len(), forms.len(), "{doc}");
    let (port, ca) = (
        ota.server().https_addr.port(),
        &ota.server().pki.ca_cert_pem,
    );
    for url in urls {
        let url = url.as_str().expect("url");
        assert!(
            url.starts_with(&format!("{PUBLIC_URL}/{BUCKET}/docs/custom.bin?"))
                && url.contains("X-Amz-Expires=300"),
            "{url}"
        );
        let (status, head, body) = ota.block_on(https_get(ca, port, "localhost", url, "bytes=0-"));
        assert_eq!((status, body.len()), (206, data.len()), "{head}");
        assert_eq!(body, data);
    }
}

/// The job document as the device gets it (`iot-jobs-data describe-job-execution`).
fn device_document(ota: &OtaServer, job_id: &str, thing: &str) -> Value {
    let described = ota.cli(&format!(
        "iot-jobs-data describe-job-execution --job-id {job_id} --thing-name {thing} --include-job-document"
    ));
    serde_json::from_str(
        described["execution"]["jobDocument"]
            .as_str()
            .expect("document"),
    )
    .expect("json document")
}

/// One `GET` of `url`'s path over TLS to 127.0.0.1:`port`, verified against `ca_pem` for the
/// name `localhost`, with `Host: host` and `Range: range`: (status, head, body).
async fn https_get(
    ca_pem: &str,
    port: u16,
    host: &str,
    url: &str,
    range: &str,
) -> (u16, String, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the dev CA's server certificate");
    let path = &url[url.find("://").map_or(0, |i| i + 3)..];
    let path = &path[path.find('/').expect("path")..];
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nRange: {range}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    // A close_notify-less close is an error in rustls; everything up to it has been read.
    let _ = tls.read_to_end(&mut raw).await;
    parse_response(&raw)
}
