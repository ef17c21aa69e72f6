//! `--mode ota`: the whole AWS OTA workflow for every device. Set-up goes through the control
//! plane like `aws iot create-thing` + `aws s3 cp` + `aws iot create-ota-update` with a custom
//! code signature (a fresh P-256 key and self-signed certificate per run, made with rcgen); each
//! device is the simulated AWS agent of `otastream-device` (`run_device_with`): notify-next,
//! `$next/get`, stream download, SHA-256 + ECDSA check against that certificate, the self-test
//! reboot and SUCCEEDED.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use bytes::Bytes;
use otastream_device::driver::{FinalStatus, RunOptions, run_device_with};
use otastream_device::{DeviceConfig, Faults};
use rcgen::{CertificateParams, KeyPair, SigningKey as _};
use rumqttc::TlsConfiguration;
use serde_json::json;

use crate::download::DownloadStats;
use crate::link::{Endpoint, client_tls};
use crate::setup::{BUCKET, ControlPlane};
use crate::stats::FleetStats;
use crate::worker::{Device, Failure, FleetPlan};

/// Requests in flight while the things are created.
const CREATE_CONCURRENCY: usize = 8;

/// What every device of an OTA run needs: the certificate the firmware is signed with. The
/// agents connect to the fleet's endpoint, plain MQTT or mTLS.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OtaPlan {
    /// PEM of the code-signing certificate.
    pub code_signing_cert_pem: String,
}

/// Signs `image`, uploads it, creates one thing per name and one OTA update targeting them all;
/// returns what the devices need.
pub async fn prepare(
    cp: &ControlPlane,
    ota_id: &str,
    image: Bytes,
    things: &[String],
) -> anyhow::Result<OtaPlan> {
    let key = KeyPair::generate().context("generating the code-signing key")?;
    let cert = CertificateParams::new(vec!["otastream-loadgen code signing".to_owned()])?
        .self_signed(&key)?;
    let signature = key.sign(&image).context("signing the image")?;
    let object = format!("{ota_id}.bin");
    cp.upload(&object, image).await?;
    create_things(cp, things).await?;
    let arns: Vec<String> = things
        .iter()
        .map(|t| format!("arn:aws:iot:{}:123456789012:thing/{t}", cp.region))
        .collect();
    let doc = json!({
        "description": "otastream-loadgen",
        "targets": arns,
        "protocols": ["MQTT"],
        "targetSelection": "SNAPSHOT",
        "roleArn": "arn:aws:iam::123456789012:role/otastream-loadgen",
        "files": [{
            "fileName": "firmware.bin",
            "fileLocation": {"s3Location": {"bucket": BUCKET, "key": object}},
            "codeSigning": {"customCodeSigning": {
                "signature": {"inlineDocument": base64::engine::general_purpose::STANDARD.encode(&signature)},
                "certificateChain": {"certificateName": "loadgen.crt"},
                "hashAlgorithm": "SHA256",
                "signatureAlgorithm": "ECDSA",
            }},
        }],
    });
    cp.post_json(
        "CreateOTAUpdate",
        "iot",
        &format!("/otaUpdates/{ota_id}"),
        &doc,
    )
    .await?;
    Ok(OtaPlan {
        code_signing_cert_pem: cert.pem(),
    })
}

/// `CreateThing` for every name, a few requests at a time.
async fn create_things(cp: &ControlPlane, things: &[String]) -> anyhow::Result<()> {
    let chunk = things.len().div_ceil(CREATE_CONCURRENCY).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for names in things.chunks(chunk) {
        let (cp, names) = (cp.clone(), names.to_vec());
        tasks.spawn(async move {
            for name in names {
                cp.post_json("CreateThing", "iot", &format!("/things/{name}"), &json!({}))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Runs one device through its OTA job and accounts for it in `stats`.
pub async fn run_device(
    plan: &FleetPlan,
    ota: &OtaPlan,
    device: &mut Device,
    stats: &FleetStats,
    remaining: Duration,
) -> Result<(), Failure> {
    let blocks = plan.download.layout.block_count();
    let mut cfg = DeviceConfig::new(device.thing.clone()).fast(plan.download.blocks_per_request);
    cfg.block_size = plan.download.layout.block_size;
    cfg.format = plan.download.format;
    cfg.code_signing_cert_pem = Some(ota.code_signing_cert_pem.clone());
    cfg.request_wait_ms = plan.download.retry_after.as_millis() as u64;
    cfg.resume_from_bitmap = true;
    cfg.faults = Faults {
        drop_data_percent: plan.loss * 100.0,
        seed: device.rng.u64(..),
        reboot_at_block: (blocks > 1 && device.rng.f64() < plan.reboot)
            .then(|| device.rng.u32(1..blocks)),
    };
    let opts = RunOptions {
        deadline: remaining,
        stream: None,
        max_latency_samples: blocks as usize * 2,
    };
    let (addr, tls) = match &plan.endpoint {
        Endpoint::Mqtt(addr) => (*addr, None),
        Endpoint::Mqtts(addr, files) => {
            let tls = client_tls(files, &device.thing).map_err(Failure::Connect)?;
            (*addr, Some(TlsConfiguration::Rustls(Arc::new(tls))))
        }
        Endpoint::Raw(_) => return Err(Failure::Job("bad device config")),
    };
    let report = run_device_with(cfg, addr, tls, opts).await;
    let s = &report.stats;
    let progress = DownloadStats {
        requests: s.requests,
        retries: s.retries,
        blocks: s.blocks,
        bytes: s.bytes,
        duplicate_blocks: s.duplicates,
        server_duplicates: 0,
    };
    stats.add_progress(&DownloadStats::default(), &progress);
    stats.add_faults(s.dropped, s.reboots);
    stats.add_agent(s.restarts, s.job_requests);
    for us in &report.block_latency_us {
        stats.record_latency(Duration::from_micros(u64::from(*us)));
    }
    match report.status {
        FinalStatus::Succeeded { .. } => Ok(()),
        other => Err(Failure::Job(job_failure(&other))),
    }
}

/// A short reason for a job that did not succeed.
fn job_failure(status: &FinalStatus) -> &'static str {
    match status {
        FinalStatus::Failed { .. } => "job failed",
        FinalStatus::SelfTestTimedOut => "self-test timed out",
        FinalStatus::DeadlineReached => "time limit",
        FinalStatus::BadConfig(_) => "bad device config",
        _ => "job not succeeded",
    }
}
