//! The agent's data path: starting a transfer, GetStream requests with the whole-file bitmap,
//! ingesting data messages and HTTP range bodies, the request timer and momentum, and the end of
//! a transfer (hash, signature, self-test or SUCCEEDED).

use otastream_chunker::response;
use sha2::Digest as _;

use crate::agent::{Agent, Event, PublishKind, QoS, State, Transmit};
use crate::download::{Download, Ingest};
use crate::jobdoc::{OtaJob, Protocol};
use crate::status::{self, AppVersion, FailReason, code};

impl Agent {
    /// Starts downloading `stream` file `file_id` (`file_size` bytes) without a job — the
    /// `--mode stream` of load tests. Ends with [`Event::DownloadComplete`] or [`Event::Failed`].
    /// A reboot restarts it (from the bitmap with `resume_from_bitmap`).
    pub fn start_stream_download(&mut self, now: u64, stream: &str, file_id: u8, file_size: u64) {
        self.job = None;
        if file_size == 0 {
            // Nothing to fetch: complete at once rather than asking for no blocks.
            let sha256 = sha2::Sha256::digest([]).into();
            self.emit(Event::DownloadComplete { sha256 });
            return;
        }
        let download = match self.persisted.take() {
            Some((id, d)) if id.is_empty() && d.layout().file_size == file_size => d,
            _ => Download::new(file_size, self.cfg.block_size, file_id, self.cfg.keep_image),
        };
        self.start_mqtt_transfer(now, stream, download);
        self.stream_only = Some((stream.to_owned(), file_id, file_size));
    }

    /// `processJobHandler` → `initFileHandler`: choose the protocol, build the bitmap (or take
    /// the persisted one), subscribe and send the first request.
    pub(crate) fn start_job(&mut self, now: u64, job: OtaJob) {
        let offered = |p| job.protocols.contains(&p);
        let preferred = self.cfg.preferred_protocol;
        let other = match preferred {
            Protocol::Mqtt => Protocol::Http,
            Protocol::Http => Protocol::Mqtt,
        };
        let protocol = [preferred, other].into_iter().find(|&p| {
            offered(p)
                && match p {
                    Protocol::Mqtt => job.stream.is_some(),
                    Protocol::Http => job.file.update_data_url.is_some(),
                }
        });
        let Some(protocol) = protocol else {
            self.fail_job(FailReason::WithValue {
                main: code::INVALID_DATA_PROTOCOL,
                sub: 0,
            });
            return;
        };
        let download = match self.persisted.take() {
            Some((id, d)) if id == job.job_id && d.layout().file_size == job.file.size => d,
            _ => Download::new(
                job.file.size,
                self.cfg.block_size,
                job.file.file_id,
                self.cfg.keep_image,
            ),
        };
        self.emit(Event::JobReceived {
            job_id: job.job_id.clone(),
            protocol,
            file_size: job.file.size,
            resumed_blocks: download.received(),
        });
        match protocol {
            Protocol::Mqtt => {
                let stream = job.stream.clone().unwrap_or_default();
                self.start_mqtt_transfer(now, &stream, download);
            }
            Protocol::Http => {
                self.download = Some(download);
                self.momentum = 0;
                self.state = State::Downloading(Protocol::Http);
                self.request_blocks(now, Protocol::Http);
            }
        }
    }

    fn start_mqtt_transfer(&mut self, now: u64, stream: &str, download: Download) {
        self.stream_prefix = Some(format!(
            "$aws/things/{}/streams/{stream}/",
            self.cfg.thing_name
        ));
        self.download = Some(download);
        self.momentum = 0;
        self.state = State::Downloading(Protocol::Mqtt);
        self.resubscribe_data();
        self.request_blocks(now, Protocol::Mqtt);
    }

    /// (Re)subscribes to the running transfer's data topic at QoS 0, like `initFileTransfer_Mqtt`.
    pub(crate) fn resubscribe_data(&mut self) {
        if let Some(prefix) = &self.stream_prefix {
            let topic = format!("{prefix}data/{}", self.cfg.format.as_str());
            self.subscribe(topic, QoS::AtMostOnce);
        }
    }

    /// Messages on the running stream's `data` or `rejected` topics reach the block decoder (the
    /// AWS demos route `…/streams/#` to the agent, so a rejection fails the job).
    pub(crate) fn is_data_topic(&self, topic: &str) -> bool {
        let Some(rest) = self
            .stream_prefix
            .as_deref()
            .and_then(|p| topic.strip_prefix(p))
        else {
            return false;
        };
        let format = self.cfg.format.as_str();
        rest.strip_prefix("data/")
            .or_else(|| rest.strip_prefix("rejected/"))
            == Some(format)
    }

    /// `requestDataHandler`: one more request unless the momentum is spent, which aborts.
    pub(crate) fn request_blocks(&mut self, now: u64, protocol: Protocol) {
        let Some(download) = &self.download else {
            return;
        };
        if self.momentum >= self.cfg.max_request_momentum {
            self.fail_job(FailReason::Aborted(0));
            return;
        }
        let transmit = match protocol {
            Protocol::Mqtt => {
                let mut payload = Vec::new();
                download.encode_request(self.cfg.format, self.cfg.blocks_per_request, &mut payload);
                let prefix = self.stream_prefix.as_deref().unwrap_or_default();
                Transmit::Publish {
                    topic: format!("{prefix}get/{}", self.cfg.format.as_str()),
                    payload,
                    qos: QoS::AtMostOnce,
                    kind: PublishKind::StreamRequest,
                }
            }
            Protocol::Http => {
                let Some(index) = download.first_missing() else {
                    return;
                };
                let range = download.layout().block_range(index);
                self.http_block = Some(index);
                Transmit::HttpGet {
                    url: self
                        .job
                        .as_ref()
                        .and_then(|j| j.job.file.update_data_url.clone())
                        .unwrap_or_default(),
                    range_start: range.start as u64,
                    range_end: range.end.saturating_sub(1) as u64,
                }
            }
        };
        self.push_transmit(transmit);
        self.momentum += 1;
        self.blocks_to_receive = self.cfg.blocks_per_request;
        self.stats.requests += 1;
        self.request_deadline = Some(now + self.cfg.request_wait_ms);
    }

    /// A message on the data topic.
    pub(crate) fn handle_data(&mut self, now: u64, payload: &[u8]) {
        let (State::Downloading(Protocol::Mqtt), Some(download)) = (self.state, &mut self.download)
        else {
            self.stats.stray += 1;
            return;
        };
        // The request timer restarts on every data message.
        self.request_deadline = Some(now + self.cfg.request_wait_ms);
        let ingest = match response::decode_data(self.cfg.format, payload) {
            Ok(msg) => download.ingest_message(&msg),
            Err(_) => Ingest::Bad,
        };
        self.after_ingest(now, ingest, Protocol::Mqtt);
    }

    /// The answer to the last [`Transmit::HttpGet`]: 206 carries the block; 400/403/404 make the
    /// agent fetch the job document again for a fresh URL; anything else waits for the timer.
    pub fn handle_http_response(&mut self, now: u64, status: u16, body: &[u8]) {
        let (State::Downloading(Protocol::Http), Some(index)) = (self.state, self.http_block)
        else {
            self.stats.stray += 1;
            return;
        };
        self.http_block = None;
        match status {
            206 => {
                let Some(download) = &mut self.download else {
                    return;
                };
                let ingest = download.ingest_http(index, body);
                self.after_ingest(now, ingest, Protocol::Http);
            }
            400 | 403 | 404 => {
                self.request_deadline = None;
                self.state = State::RefreshingUrl;
                self.request_job();
            }
            _ => {}
        }
    }

    /// `processDataHandler` after a block was decoded and checked.
    fn after_ingest(&mut self, now: u64, ingest: Ingest, protocol: Protocol) {
        let total = self
            .download
            .as_ref()
            .map_or(0, |d| d.layout().block_count());
        if let Some(d) = &mut self.download {
            self.stats.length_mismatches += u64::from(std::mem::take(&mut d.length_mismatches));
        }
        match ingest {
            Ingest::Accepted { index, received } => {
                self.count_block(index);
                self.momentum = 0;
                self.emit(Event::BlockAccepted {
                    index,
                    received,
                    total,
                });
                if let Some(p) =
                    status::receive_progress(received, total, self.cfg.status_frequency)
                {
                    self.publish_status(p, QoS::AtMostOnce);
                }
                if self.reboot_fault_armed && self.cfg.faults.reboot_at_block == Some(received) {
                    self.reboot_fault_armed = false;
                    self.handle_reboot(now);
                    return;
                }
                if protocol == Protocol::Http || self.blocks_to_receive <= 1 {
                    self.request_blocks(now, protocol);
                } else {
                    self.blocks_to_receive -= 1;
                }
            }
            Ingest::Duplicate(index) => {
                self.stats.duplicates += 1;
                self.emit(Event::DuplicateBlock { index });
                if protocol == Protocol::Http {
                    self.request_blocks(now, protocol);
                }
            }
            Ingest::Complete { index, sha256 } => {
                self.count_block(index);
                self.emit(Event::BlockAccepted {
                    index,
                    received: total,
                    total,
                });
                self.finish(now, sha256);
            }
            Ingest::Bad => self.fail_job(FailReason::WithValue {
                main: code::PAL_UNINITIALIZED,
                sub: 0,
            }),
        }
    }

    fn count_block(&mut self, index: u32) {
        self.stats.blocks += 1;
        if let Some(d) = &self.download {
            self.stats.bytes += u64::from(d.layout().block_len(index));
        }
    }

    /// The file is complete: the PAL's `closeFile` (signature), then self-test or SUCCEEDED.
    fn finish(&mut self, now: u64, sha256: [u8; 32]) {
        self.request_deadline = None;
        self.emit(Event::DownloadComplete { sha256 });
        let Some(job) = self.job.as_ref().map(|j| j.job.clone()) else {
            // A plain stream download ends here.
            self.end_transfer();
            return;
        };
        let checked = match &self.signer {
            None => false,
            Some(signer) => {
                let ok = job
                    .file
                    .signature
                    .as_deref()
                    .is_some_and(|sig| signer.verify_digest(&sha256, sig));
                if !ok {
                    self.fail_job(FailReason::WithValue {
                        main: code::PAL_SIGNATURE_CHECK_FAILED,
                        sub: 0,
                    });
                    return;
                }
                true
            }
        };
        self.emit(Event::Verified { checked });
        if job.file.file_type == 0 {
            self.activate(now);
        } else {
            let updated_by = job.updated_by.unwrap_or_default();
            self.publish_status(
                status::succeeded(AppVersion(job.file.file_type), updated_by),
                QoS::AtLeastOnce,
            );
            self.job = None;
            self.end_transfer();
            self.emit(Event::Succeeded {
                job_id: job.job_id,
                version: AppVersion(job.file.file_type),
            });
        }
    }
}
