//! The HTTP data path (`--protocol http`): each device fetches the image from the control
//! plane's S3 as SigV4-signed `GetObject` range requests of `n` blocks, one after the other on
//! its own keep-alive connection — the transfer of an HTTP OTA job, where the AWS agent GETs
//! ranges of a presigned URL. `--loss` drops a response (the device asks again), `--reboot`
//! reconnects mid-download and resumes at the first missing block.

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::anyhow;
use bytes::Bytes;
use otastream_chunker::response::BlockError;
use tokio::time::Instant as TokioInstant;

use crate::download::{DownloadError, DownloadStats};
use crate::setup::{ControlPlane, HttpConn};
use crate::stats::FleetStats;
use crate::worker::{Device, Failure, FleetPlan};

/// Where the HTTP data path reads the image.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HttpSource {
    /// The signing client of the control plane.
    pub control_plane: ControlPlane,
    /// `/bucket/key` of the image object.
    pub path: String,
}

/// Downloads the whole image over `conn` in ranges of `n` blocks.
pub async fn download(
    plan: &FleetPlan,
    device: &mut Device,
    stats: &FleetStats,
    mut conn: HttpConn,
    deadline: TokioInstant,
) -> Result<(), Failure> {
    let src = plan
        .http
        .as_ref()
        .ok_or_else(|| Failure::Connect(anyhow!("no HTTP source configured")))?;
    let layout = plan.download.layout;
    let total = layout.block_count();
    let per_request = plan.download.blocks_per_request.max(1);
    let mut reboot_at =
        (total > 1 && device.rng.f64() < plan.reboot).then(|| device.rng.u32(1..total));
    let mut next = 0u32;
    let mut last_request: Option<Instant> = None;
    while next < total {
        if reboot_at.is_some_and(|at| next >= at) {
            reboot_at = None;
            stats.reboots.fetch_add(1, Ordering::Relaxed);
            drop(conn);
            let source = plan.source_address(device.index);
            conn = tokio::time::timeout_at(deadline, src.control_plane.connect_from(source))
                .await
                .map_err(|_| Failure::TimeLimit)?
                .map_err(Failure::Connect)?;
        }
        if let Some(at) = last_request {
            tokio::time::sleep_until(TokioInstant::from_std(at + plan.download.pace)).await;
        }
        if let Some(pacer) = &plan.pacer {
            pacer.wait().await;
        }
        let last = (next + per_request).min(total) - 1;
        let range = layout.block_range(next).start..layout.block_range(last).end;
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let req = src
            .control_plane
            .request(
                "s3",
                "GET",
                &src.path,
                &[(http::header::RANGE, &header)],
                Bytes::new(),
            )
            .map_err(Failure::Link)?;
        let sent = Instant::now();
        last_request = Some(sent);
        let (status, body) = tokio::time::timeout_at(deadline, conn.send(req))
            .await
            .map_err(|_| Failure::TimeLimit)?
            .map_err(Failure::Link)?;
        let mut progress = DownloadStats {
            requests: 1,
            ..DownloadStats::default()
        };
        if status != http::StatusCode::PARTIAL_CONTENT {
            let text = String::from_utf8_lossy(&body);
            return Err(DownloadError::Rejected(format!("GET {header}: {status} {text}")).into());
        }
        if body.len() != range.len() {
            return Err(DownloadError::BadBlock(BlockError::PayloadLengthMismatch).into());
        }
        if plan.loss > 0.0 && device.rng.f64() < plan.loss {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            progress.retries = 1;
            stats.add_progress(&DownloadStats::default(), &progress);
            continue;
        }
        if let Some(image) = &plan.download.expected
            && image.get(range.clone()) != Some(&body[..])
        {
            return Err(DownloadError::Corrupt(next).into());
        }
        let latency = sent.elapsed();
        for _ in next..=last {
            stats.record_latency(latency);
        }
        progress.blocks = u64::from(last - next + 1);
        progress.bytes = body.len() as u64;
        stats.add_progress(&DownloadStats::default(), &progress);
        next = last + 1;
    }
    Ok(())
}
