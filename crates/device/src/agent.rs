//! The sans-IO OTA agent: the AWS embedded agent's state machine (`ota.c`), with no socket and no
//! clock inside.
//!
//! # Calling protocol (quinn style)
//! 1. Inputs (`handle_*`): [`Agent::handle_connected`] once the MQTT session is up,
//!    [`Agent::handle_publish`] for every incoming message, [`Agent::handle_http_response`] for
//!    the answer to an [`Transmit::HttpGet`], [`Agent::handle_timeout`] when the deadline from
//!    [`Agent::poll_timeout`] has passed, and [`Agent::handle_reboot`] to power-cycle the device.
//!    `now` is in milliseconds on any monotonic clock.
//! 2. After each input, drain the outputs: [`Agent::poll_transmit`] (subscriptions, publishes,
//!    HTTP requests, in order), [`Agent::poll_event`] (what happened), and re-read
//!    [`Agent::poll_timeout`].
//!
//! The data path (blocks, requests, verification, HTTP) is in the private `transfer` module.

use std::collections::VecDeque;

use crate::config::DeviceConfig;
use crate::download::Download;
use crate::jobdoc::{self, JobMessage, OtaJob, Protocol};
pub use crate::output::{AgentStats, Event, PublishKind, QoS, Transmit};
use crate::status::{self, AppVersion, FailReason, SelfTestPhase, code};
use crate::verify::{CertError, CodeSigner};

/// Where the agent is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Not connected yet.
    Stopped,
    /// Waiting for a job document (asked, or waiting for notify-next).
    WaitingForJob,
    /// Transferring the active file.
    Downloading(Protocol),
    /// HTTP answered 400/403/404: the job document was requested again for a fresh URL.
    RefreshingUrl,
}

/// The job being worked on.
#[derive(Clone, Debug)]
pub(crate) struct ActiveJob {
    pub(crate) job: OtaJob,
    pub(crate) update_topic: String,
}

/// A freshly activated image waiting for its self-test verdict.
#[derive(Clone, Copy, Debug)]
struct PendingCommit {
    previous: AppVersion,
}

/// The simulated AWS OTA agent (see the module docs for the calling protocol).
#[derive(Debug)]
pub struct Agent {
    pub(crate) cfg: DeviceConfig,
    pub(crate) signer: Option<CodeSigner>,
    pub(crate) state: State,
    pub(crate) running: AppVersion,
    pending_commit: Option<PendingCommit>,
    pub(crate) job: Option<ActiveJob>,
    pub(crate) download: Option<Download>,
    /// `(job id, download)` kept across a reboot when `resume_from_bitmap` is set.
    pub(crate) persisted: Option<(String, Download)>,
    /// `…/streams/<S>/` of the running transfer, and its data topic.
    pub(crate) stream_prefix: Option<String>,
    /// `(stream, file id, size)` of a job-less stream download, restarted after a reboot.
    pub(crate) stream_only: Option<(String, u8, u64)>,
    next_get_counter: u32,
    pub(crate) request_deadline: Option<u64>,
    self_test_deadline: Option<u64>,
    pub(crate) momentum: u32,
    pub(crate) blocks_to_receive: u32,
    pub(crate) http_block: Option<u32>,
    pub(crate) reboot_fault_armed: bool,
    pub(crate) rng: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    pub(crate) stats: AgentStats,
    notify_next_topic: String,
    next_accepted_topic: String,
    /// `$aws/things/<T>/streams/`: stream messages outside the running transfer are stray.
    streams_topic_prefix: String,
}

impl Agent {
    /// A powered-on device that has not connected yet. Fails only on an unusable code-signing
    /// certificate.
    pub fn new(cfg: DeviceConfig) -> Result<Self, CertError> {
        let signer = cfg
            .code_signing_cert_pem
            .as_deref()
            .map(CodeSigner::from_cert_pem)
            .transpose()?;
        let jobs = format!("$aws/things/{}/jobs/", cfg.thing_name);
        Ok(Self {
            signer,
            state: State::Stopped,
            running: cfg.firmware_version,
            pending_commit: None,
            job: None,
            download: None,
            persisted: None,
            stream_prefix: None,
            stream_only: None,
            next_get_counter: 0,
            request_deadline: None,
            self_test_deadline: None,
            momentum: 0,
            blocks_to_receive: 0,
            http_block: None,
            reboot_fault_armed: cfg.faults.reboot_at_block.is_some(),
            rng: cfg.faults.seed,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: AgentStats::default(),
            notify_next_topic: format!("{jobs}notify-next"),
            next_accepted_topic: format!("{jobs}$next/get/accepted"),
            streams_topic_prefix: format!("$aws/things/{}/streams/", cfg.thing_name),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DeviceConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> &AgentStats {
        &self.stats
    }

    /// The firmware version the device runs now.
    pub fn running_version(&self) -> AppVersion {
        self.running
    }

    /// The current transfer, if one is running.
    pub fn download(&self) -> Option<&Download> {
        self.download.as_ref()
    }

    /// Whether a transfer is running.
    pub fn is_downloading(&self) -> bool {
        matches!(self.state, State::Downloading(_) | State::RefreshingUrl)
    }

    /// The next output to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Agent::handle_timeout`] must be called next (ms), if a timer runs.
    pub fn poll_timeout(&self) -> Option<u64> {
        match (self.request_deadline, self.self_test_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The MQTT session is up (first connect or reconnect): subscribe to `notify-next` and ask
    /// for the next job; a running MQTT transfer re-subscribes to its data topic.
    pub fn handle_connected(&mut self, now: u64) {
        if !self.cfg.use_jobs {
            self.resubscribe_data();
            return;
        }
        self.subscribe(self.notify_next_topic.clone(), QoS::AtLeastOnce);
        match self.state {
            State::Stopped | State::WaitingForJob | State::RefreshingUrl => {
                if self.state == State::Stopped {
                    self.state = State::WaitingForJob;
                }
                self.request_job();
                if self.pending_commit.is_some() && self.self_test_deadline.is_none() {
                    self.self_test_deadline = Some(now + self.cfg.self_test_wait_ms);
                }
            }
            State::Downloading(_) => self.resubscribe_data(),
        }
    }

    /// An incoming MQTT message.
    pub fn handle_publish(&mut self, now: u64, topic: &str, payload: &[u8]) {
        if self.is_data_topic(topic) {
            if self.drop_by_fault() {
                self.stats.dropped += 1;
                return;
            }
            self.handle_data(now, payload);
        } else if self.cfg.use_jobs
            && (topic == self.notify_next_topic || topic == self.next_accepted_topic)
        {
            self.handle_job_message(now, payload);
        } else if topic.starts_with(&self.streams_topic_prefix) {
            self.stats.stray += 1;
        }
    }

    /// Timers: the request timer re-sends the current request; the self-test timer rolls a
    /// pending image back.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.request_deadline.is_some_and(|d| d <= now) {
            self.request_deadline = None;
            if let State::Downloading(protocol) = self.state {
                self.stats.retries += 1;
                self.request_blocks(now, protocol);
            }
        }
        if self.self_test_deadline.is_some_and(|d| d <= now) {
            self.self_test_deadline = None;
            if let Some(p) = self.pending_commit.take() {
                self.running = p.previous;
                self.events.push_back(Event::SelfTestTimedOut);
            }
        }
    }

    /// Power-cycles the device and reconnects at once. Kept: the running version, an image
    /// pending commit and, with `resume_from_bitmap`, the transfer so far. Lost: everything else.
    pub fn handle_reboot(&mut self, now: u64) {
        self.stats.reboots += 1;
        let stream_only = self.stream_only.take().filter(|_| self.is_downloading());
        self.persisted = match (self.cfg.resume_from_bitmap, &self.job, self.download.take()) {
            (true, Some(job), Some(d)) => Some((job.job.job_id.clone(), d)),
            // A job-less stream download is keyed by the empty job id.
            (true, None, Some(d)) if stream_only.is_some() => Some((String::new(), d)),
            _ => None,
        };
        self.job = None;
        self.stream_prefix = None;
        self.http_block = None;
        self.request_deadline = None;
        self.next_get_counter = 0;
        self.state = State::Stopped;
        self.events.push_back(Event::Rebooted {
            version: self.running,
        });
        self.handle_connected(now);
        if let Some((stream, file_id, size)) = stream_only {
            self.start_stream_download(now, &stream, file_id, size);
        }
    }

    pub(crate) fn subscribe(&mut self, topic: String, qos: QoS) {
        self.transmits.push_back(Transmit::Subscribe { topic, qos });
    }

    pub(crate) fn publish(&mut self, topic: String, payload: Vec<u8>, qos: QoS, kind: PublishKind) {
        self.transmits.push_back(Transmit::Publish {
            topic,
            payload,
            qos,
            kind,
        });
    }

    pub(crate) fn push_transmit(&mut self, t: Transmit) {
        self.transmits.push_back(t);
    }

    pub(crate) fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Publishes `$next/get` (QoS 1) with the agent's client token.
    pub(crate) fn request_job(&mut self) {
        let payload = status::next_get_payload(self.next_get_counter, &self.cfg.thing_name);
        self.next_get_counter = self.next_get_counter.wrapping_add(1);
        self.stats.job_requests += 1;
        let topic = format!("$aws/things/{}/jobs/$next/get", self.cfg.thing_name);
        self.publish(
            topic,
            payload,
            QoS::AtLeastOnce,
            PublishKind::NextJobRequest,
        );
    }

    /// Publishes a job status update on the active job (QoS 1 unless it is `receive` progress).
    pub(crate) fn publish_status(&mut self, payload: Vec<u8>, qos: QoS) {
        if let Some(job) = &self.job {
            let topic = job.update_topic.clone();
            self.publish(topic, payload, qos, PublishKind::JobStatus);
        }
    }

    /// Ends the active job (or stream download) FAILED.
    pub(crate) fn fail_job(&mut self, reason: FailReason) {
        self.publish_status(status::failed(reason), QoS::AtLeastOnce);
        let job_id = self.job.take().map(|j| j.job.job_id);
        self.end_transfer();
        self.emit(Event::Failed { job_id, reason });
    }

    /// Forgets the transfer and waits for the next job.
    pub(crate) fn end_transfer(&mut self) {
        self.download = None;
        self.stream_only = None;
        self.stream_prefix = None;
        self.http_block = None;
        self.request_deadline = None;
        self.state = State::WaitingForJob;
    }

    fn handle_job_message(&mut self, now: u64, payload: &[u8]) {
        if let State::Downloading(_) = self.state {
            // `jobNotificationHandler`: any job document mid-download aborts the transfer and
            // asks for the next job; the same job then starts again from block 0.
            self.stats.restarts += 1;
            self.job = None;
            self.end_transfer();
            self.emit(Event::DownloadRestarted);
            self.request_job();
            return;
        }
        let max_blocks = self.cfg.max_blocks();
        let parsed = jobdoc::parse(
            payload,
            &self.cfg.signature_key,
            max_blocks,
            self.cfg.block_size.get(),
        );
        match parsed {
            JobMessage::NoJob => {
                if self.state == State::RefreshingUrl {
                    // The job went away while we asked for a fresh URL: drop the transfer.
                    self.job = None;
                    self.end_transfer();
                }
                self.emit(Event::NoJob);
            }
            JobMessage::Ignored => {}
            JobMessage::Unusable {
                job_id,
                parse_error,
            } => {
                self.job = Some(self.active(job_id_only(&job_id)));
                self.fail_job(FailReason::WithValue {
                    main: code::JOB_PARSER_ERROR,
                    sub: parse_error,
                });
            }
            JobMessage::Job(job) => self.handle_job(now, job),
        }
    }

    fn handle_job(&mut self, now: u64, job: OtaJob) {
        if self.state == State::RefreshingUrl {
            let same = self
                .job
                .as_ref()
                .is_some_and(|a| a.job.job_id == job.job_id);
            if same {
                // `verifyActiveJobStatus`: same job, take the fresh URL and carry on.
                if let Some(active) = &mut self.job {
                    active.job.file.update_data_url = job.file.update_data_url;
                }
                self.state = State::Downloading(Protocol::Http);
                self.request_blocks(now, Protocol::Http);
                return;
            }
            self.end_transfer();
        }
        self.job = Some(self.active(job.clone()));
        if job.self_test {
            self.handle_self_test(&job);
        } else if self.pending_commit.is_some() {
            // A new image is pending commit but the job lost its self-test details.
            self.fail_job(FailReason::Rejected(code::IMAGE_STATE_MISMATCH));
            self.roll_back();
        } else {
            self.start_job(now, job);
        }
    }

    fn active(&self, job: OtaJob) -> ActiveJob {
        ActiveJob {
            update_topic: format!(
                "$aws/things/{}/jobs/{}/update",
                self.cfg.thing_name, job.job_id
            ),
            job,
        }
    }

    /// `handleSelfTestJobDoc`: the image that performed the update must be older than the one
    /// running now.
    fn handle_self_test(&mut self, job: &OtaJob) {
        self.self_test_deadline = None;
        let updated_by = job.updated_by.unwrap_or_default();
        let rejection = if updated_by == self.running {
            Some(code::SAME_FIRMWARE_VERSION)
        } else if updated_by > self.running {
            Some(code::DOWNGRADE_NOT_ALLOWED)
        } else {
            None
        };
        if let Some(c) = rejection {
            self.fail_job(FailReason::Rejected(c));
            self.roll_back();
            return;
        }
        self.publish_status(
            status::self_test(SelfTestPhase::Active, self.running),
            QoS::AtLeastOnce,
        );
        self.emit(Event::SelfTestActive);
        // The application's self test passes at once: accept the image.
        self.pending_commit = None;
        self.publish_status(
            status::succeeded(self.running, updated_by),
            QoS::AtLeastOnce,
        );
        let job_id = job.job_id.clone();
        self.job = None;
        self.emit(Event::Succeeded {
            job_id,
            version: self.running,
        });
    }

    /// The PAL resets into the previous image.
    fn roll_back(&mut self) {
        if let Some(p) = self.pending_commit.take() {
            self.running = p.previous;
        }
    }

    /// Firmware verified: publish `self_test: ready`, then activate — reboot into the new
    /// version and ask for the job again.
    pub(crate) fn activate(&mut self, now: u64) {
        self.publish_status(
            status::self_test(SelfTestPhase::Ready, self.running),
            QoS::AtLeastOnce,
        );
        self.emit(Event::SelfTestReady);
        self.job = None;
        self.end_transfer();
        self.pending_commit = Some(PendingCommit {
            previous: self.running,
        });
        self.running = self
            .cfg
            .new_image_version
            .unwrap_or_else(|| self.running.next_build());
        self.handle_reboot(now);
    }

    /// Deterministic loss decision (SplitMix64 over the seed).
    fn drop_by_fault(&mut self) -> bool {
        let pct = self.cfg.faults.drop_data_percent;
        if pct <= 0.0 {
            return false;
        }
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 100.0 < pct
    }
}

/// An `OtaJob` that only names a job (for FAILED updates on unusable documents).
fn job_id_only(job_id: &str) -> OtaJob {
    OtaJob {
        job_id: job_id.to_owned(),
        protocols: Vec::new(),
        stream: None,
        file: jobdoc::OtaFile {
            path: None,
            size: 0,
            file_id: 0,
            cert_file: None,
            file_type: 0,
            signature: None,
            update_data_url: None,
            auth_scheme: None,
        },
        self_test: false,
        updated_by: None,
    }
}
