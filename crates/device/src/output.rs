//! The agent's outputs: what goes on the wire ([`Transmit`]), what happened ([`Event`]), and
//! lifetime counters ([`AgentStats`]).

use crate::jobdoc::Protocol;
use crate::status::{AppVersion, FailReason};

/// MQTT quality of service of an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QoS {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1.
    AtLeastOnce,
}

/// What a publish is for (drivers time GetStream requests to measure block latency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishKind {
    /// `$aws/things/<T>/jobs/$next/get`.
    NextJobRequest,
    /// `$aws/things/<T>/streams/<S>/get/<fmt>`.
    StreamRequest,
    /// `$aws/things/<T>/jobs/<J>/update`.
    JobStatus,
}

/// Something the driver must put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Subscribe to `topic`.
    Subscribe {
        /// Topic filter.
        topic: String,
        /// Requested QoS.
        qos: QoS,
    },
    /// Publish `payload` on `topic`.
    Publish {
        /// Topic.
        topic: String,
        /// Payload bytes.
        payload: Vec<u8>,
        /// QoS.
        qos: QoS,
        /// What the message is.
        kind: PublishKind,
    },
    /// `GET url` with `Range: bytes=range_start-range_end` (inclusive); answer with
    /// [`crate::Agent::handle_http_response`].
    HttpGet {
        /// The presigned URL from the job document.
        url: String,
        /// First byte.
        range_start: u64,
        /// Last byte (inclusive).
        range_end: u64,
    },
}

/// What happened inside the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `$next/get` answered with no pending job.
    NoJob,
    /// A job was accepted and its download starts (`resumed_blocks` > 0 when it continues from a
    /// persisted bitmap).
    JobReceived {
        /// Job id.
        job_id: String,
        /// Data protocol chosen.
        protocol: Protocol,
        /// File size in bytes.
        file_size: u64,
        /// Blocks already present.
        resumed_blocks: u32,
    },
    /// A new block was stored.
    BlockAccepted {
        /// Block index.
        index: u32,
        /// Blocks received so far.
        received: u32,
        /// Blocks in the file.
        total: u32,
    },
    /// A block the bitmap already had: ignored.
    DuplicateBlock {
        /// Block index.
        index: u32,
    },
    /// A job message arrived mid-download: the transfer was abandoned and restarts from block 0
    /// (the AWS agent does this; a correct server never triggers it).
    DownloadRestarted,
    /// Every block is in.
    DownloadComplete {
        /// SHA-256 of the file.
        sha256: [u8; 32],
    },
    /// The signature matched (or no certificate is configured: `checked` is false).
    Verified {
        /// Whether a signature was actually checked.
        checked: bool,
    },
    /// `self_test: ready` was published; the device activates the image.
    SelfTestReady,
    /// The device (re)booted and now runs `version`.
    Rebooted {
        /// The running firmware version.
        version: AppVersion,
    },
    /// `self_test: active` was published.
    SelfTestActive,
    /// The job ended SUCCEEDED.
    Succeeded {
        /// Job id.
        job_id: String,
        /// The version reported as accepted.
        version: AppVersion,
    },
    /// The job (or a plain stream download, `job_id` None) ended FAILED.
    Failed {
        /// Job id.
        job_id: Option<String>,
        /// The reason as published.
        reason: FailReason,
    },
    /// No self-test job document came in time: the image was rolled back.
    SelfTestTimedOut,
}

/// Counters over the agent's lifetime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStats {
    /// New blocks stored.
    pub blocks: u64,
    /// Payload bytes of new blocks.
    pub bytes: u64,
    /// Duplicate blocks ignored.
    pub duplicates: u64,
    /// GetStream requests and HTTP range requests sent.
    pub requests: u64,
    /// Requests sent because the request timer expired.
    pub retries: u64,
    /// Downloads restarted by a job message mid-download.
    pub restarts: u64,
    /// Reboots (injected, activation and explicit).
    pub reboots: u64,
    /// Data messages dropped by the loss fault.
    pub dropped: u64,
    /// Stream messages that arrived while no transfer of that stream was running.
    pub stray: u64,
    /// `$next/get` requests.
    pub job_requests: u64,
    /// Blocks whose payload length differed from their `l` (stored as `l` bytes, like the agent).
    pub length_mismatches: u64,
}
