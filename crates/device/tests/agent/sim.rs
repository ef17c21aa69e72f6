//! A simulated AWS IoT endpoint for the agent, written with the chunker crate: it answers
//! `$next/get` with a hand-made job execution (persisting `statusDetails` like the Jobs service),
//! serves GetStream requests by decoding the agent's bitmap and selecting blocks, answers HTTP
//! range requests, and records every status update. Time is a simulated millisecond clock.

use std::collections::{HashSet, VecDeque};

use base64::Engine as _;
use otastream_chunker::{FileLayout, Format, request, response, select, topic};
use otastream_device::{Agent, DeviceConfig, Event, PublishKind, Transmit};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

pub const THING: &str = "thing-vec";
pub const STREAM: &str = "AFR_OTA-vec-stream";
pub const JOB: &str = "AFR_OTA-vec-job";
pub const URL: &str = "http://127.0.0.1:9/bucket/fw.bin?X-Amz-Signature=1";

/// The fixtures' deterministic test image: byte i = (i·31 + 7) mod 251.
pub fn test_image(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

/// A P-256 code-signing identity made with rcgen; signs with p256.
pub struct Signer {
    pub cert_pem: String,
    key: p256::ecdsa::SigningKey,
}

impl Signer {
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["code-signer".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        Self {
            cert_pem: cert.pem(),
            key: signing,
        }
    }

    /// Base64 of the DER ECDSA signature over SHA-256(`data`).
    pub fn sign_b64(&self, data: &[u8]) -> String {
        let sig: p256::ecdsa::Signature = self.key.sign(data);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// The Jobs + Streams + S3 side of the simulation.
pub struct Sim {
    pub agent: Agent,
    pub now: u64,
    pub image: Vec<u8>,
    /// A faulty Jobs service that does not return `statusDetails`.
    pub omit_status_details: bool,
    /// A faulty Jobs service that loses the job once the device reports `self_test: ready`.
    pub forget_job_when_ready: bool,
    /// `afr_ota` document served while the job is pending; `None` = no job.
    pub job_document: Option<Value>,
    pub job_status: &'static str,
    pub status_details: Option<Value>,
    /// Every status update payload the device published, in order.
    pub updates: Vec<String>,
    /// Every GetStream request payload.
    pub stream_requests: Vec<Vec<u8>>,
    /// Every (start, end) HTTP range requested.
    pub http_ranges: Vec<(u64, u64)>,
    /// HTTP status codes to answer with before serving normally (front first).
    pub http_failures: VecDeque<u16>,
    /// Cut this many of the first 206 bodies in half.
    pub http_short_bodies: usize,
    /// Blocks whose first transmission is lost.
    pub lose_once: HashSet<u32>,
    /// Send every data message twice.
    pub duplicate_everything: bool,
    /// Answer GetStream requests (off when a test feeds recorded data messages itself).
    pub serve_streams: bool,
    /// Every publish of the device: (data messages delivered before it, topic, payload).
    pub published: Vec<(usize, String, Vec<u8>)>,
    /// Data messages delivered so far.
    pub data_delivered: usize,
    /// Every event of the agent.
    pub events: Vec<Event>,
    pub subscriptions: Vec<String>,
    inbox: VecDeque<(String, Vec<u8>)>,
    sent: HashSet<u32>,
}

impl Sim {
    pub fn new(cfg: DeviceConfig, image: Vec<u8>) -> Self {
        Self {
            agent: Agent::new(cfg).unwrap(),
            now: 1_000,
            image,
            omit_status_details: false,
            forget_job_when_ready: false,
            job_document: None,
            job_status: "QUEUED",
            status_details: None,
            updates: Vec::new(),
            stream_requests: Vec::new(),
            http_ranges: Vec::new(),
            http_failures: VecDeque::new(),
            http_short_bodies: 0,
            lose_once: HashSet::new(),
            duplicate_everything: false,
            serve_streams: true,
            published: Vec::new(),
            data_delivered: 0,
            events: Vec::new(),
            subscriptions: Vec::new(),
            inbox: VecDeque::new(),
            sent: HashSet::new(),
        }
    }

    /// An MQTT job for the image, signed by `signer` (or with `signature` verbatim).
    pub fn mqtt_document(&self, signature: &str) -> Value {
        json!({"afr_ota": {"protocols": ["MQTT"], "streamname": STREAM, "files": [{
            "filepath": "/device/updates", "filesize": self.image.len(), "fileid": 0,
            "certfile": "/certs/signer.pem", "fileType": 0, "sig-sha256-ecdsa": signature}]}})
    }

    /// An HTTP job for the image.
    pub fn http_document(&self, signature: &str) -> Value {
        json!({"afr_ota": {"protocols": ["HTTP"], "files": [{
            "filepath": "/device/updates", "filesize": self.image.len(), "fileid": 0,
            "certfile": "/certs/signer.pem", "update_data_url": URL,
            "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": signature}]}})
    }

    /// The execution as `$next/get/accepted` / `notify-next` carry it.
    pub fn execution(&self) -> Option<Value> {
        let doc = self.job_document.clone()?;
        let mut e = json!({"jobId": JOB, "status": self.job_status, "queuedAt": 1,
            "lastUpdatedAt": 2, "versionNumber": 1, "executionNumber": 1, "jobDocument": doc});
        if let Some(d) = self
            .status_details
            .as_ref()
            .filter(|_| !self.omit_status_details)
        {
            e["statusDetails"] = d.clone();
        }
        Some(e)
    }

    /// Queues a `notify-next` carrying the current execution.
    pub fn push_notify_next(&mut self) {
        let mut msg = json!({"timestamp": 2});
        if let Some(e) = self.execution() {
            msg["execution"] = e;
        }
        let topic = format!("$aws/things/{THING}/jobs/notify-next");
        self.inbox.push_back((topic, msg.to_string().into_bytes()));
    }

    pub fn connect(&mut self) {
        self.agent.handle_connected(self.now);
        self.pump();
    }

    /// Handles everything the agent wants to send.
    pub fn pump(&mut self) {
        while let Some(t) = self.agent.poll_transmit() {
            self.serve(t);
        }
        while let Some(e) = self.agent.poll_event() {
            self.events.push(e);
        }
    }

    /// Delivers one queued message; false when none was queued.
    pub fn deliver_one(&mut self) -> bool {
        let Some((topic, payload)) = self.inbox.pop_front() else {
            return false;
        };
        self.now += 1;
        if topic.contains("/streams/") {
            self.data_delivered += 1;
        }
        self.agent.handle_publish(self.now, &topic, &payload);
        self.pump();
        true
    }

    /// Runs until nothing is queued and no timer is set, firing timers on the simulated clock.
    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            if self.deliver_one() {
                continue;
            }
            let Some(deadline) = self.agent.poll_timeout() else {
                return;
            };
            self.now = self.now.max(deadline);
            self.agent.handle_timeout(self.now);
            self.pump();
        }
        panic!("simulation did not settle");
    }

    /// Runs only while messages are queued (timers are not fired).
    pub fn run_messages(&mut self) {
        while self.deliver_one() {}
    }

    pub fn data_topic(&self) -> String {
        format!("$aws/things/{THING}/streams/{STREAM}/data/cbor")
    }

    pub fn push_data(&mut self, payload: Vec<u8>) {
        let topic = self.data_topic();
        self.inbox.push_back((topic, payload));
    }

    fn serve(&mut self, t: Transmit) {
        match t {
            Transmit::Subscribe { topic, .. } => self.subscriptions.push(topic),
            Transmit::Publish {
                topic,
                payload,
                kind,
                ..
            } => {
                let before = self.data_delivered;
                self.published
                    .push((before, topic.clone(), payload.clone()));
                match kind {
                    PublishKind::NextJobRequest => self.answer_next_get(&payload),
                    PublishKind::StreamRequest => self.answer_get_stream(&topic, payload),
                    PublishKind::JobStatus => self.record_update(&payload),
                }
            }
            Transmit::HttpGet {
                url,
                range_start,
                range_end,
            } => {
                assert_eq!(url, URL);
                self.http_ranges.push((range_start, range_end));
                let status = self.http_failures.pop_front().unwrap_or(206);
                let body = if status == 206 {
                    let mut body = self.image[range_start as usize..=range_end as usize].to_vec();
                    if self.http_short_bodies > 0 {
                        self.http_short_bodies -= 1;
                        body.truncate(body.len() / 2);
                    }
                    body
                } else {
                    b"<Error><Code>AccessDenied</Code></Error>".to_vec()
                };
                self.now += 1;
                self.agent.handle_http_response(self.now, status, &body);
            }
        }
    }

    fn answer_next_get(&mut self, payload: &[u8]) {
        let req: Value = serde_json::from_slice(payload).unwrap();
        let mut reply = json!({"clientToken": req["clientToken"], "timestamp": 3});
        if let Some(e) = self.execution() {
            reply["execution"] = e;
        }
        let topic = format!("$aws/things/{THING}/jobs/$next/get/accepted");
        self.inbox
            .push_back((topic, reply.to_string().into_bytes()));
    }

    fn answer_get_stream(&mut self, topic: &str, payload: Vec<u8>) {
        if !self.serve_streams {
            return;
        }
        let t = topic::parse_stream_topic(topic).unwrap();
        assert_eq!((t.thing, t.stream, t.format), (THING, STREAM, Format::Cbor));
        let req = request::decode_get(Format::Cbor, &payload).unwrap();
        let layout = FileLayout::new(self.image.len() as u64, req.block_size);
        let blocks: Vec<u32> = select::select_blocks(&req, &layout).unwrap().collect();
        for i in blocks {
            if self.lose_once.contains(&i) && self.sent.insert(i) {
                continue;
            }
            let mut msg = Vec::new();
            let block = &self.image[layout.block_range(i)];
            response::encode_data(Format::Cbor, req.client_token, 0, i, block, &mut msg);
            if self.duplicate_everything {
                self.push_data(msg.clone());
            }
            self.push_data(msg);
        }
        self.stream_requests.push(payload);
    }

    fn record_update(&mut self, payload: &[u8]) {
        let text = String::from_utf8(payload.to_vec()).unwrap();
        let update: Value = serde_json::from_str(&text).unwrap();
        let status = update["status"].as_str().unwrap();
        self.job_status = match status {
            "IN_PROGRESS" => "IN_PROGRESS",
            "SUCCEEDED" | "FAILED" => {
                self.job_document = None;
                "TERMINAL"
            }
            other => panic!("unexpected status {other}"),
        };
        if self.forget_job_when_ready && text.contains(r#""self_test":"ready""#) {
            self.job_document = None;
        }
        if let Some(d) = update.get("statusDetails") {
            self.status_details = Some(d.clone());
        }
        self.updates.push(text);
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}
