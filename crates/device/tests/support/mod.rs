//! The server side shared by the device tests: the fixtures' test image, a P-256 code signer
//! (rcgen certificate, p256 signatures), a Jobs service holding one OTA execution, and a streams
//! service answering GetStream requests with the chunker crate.

#![allow(dead_code)] // each test binary uses a different part

use base64::Engine as _;
use otastream_chunker::{FileLayout, request, response, select, topic};
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::DecodePrivateKey as _;
use serde_json::{Value, json};

pub const THING: &str = "thing-vec";
pub const STREAM: &str = "AFR_OTA-vec-stream";
pub const JOB: &str = "AFR_OTA-vec-job";

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

/// An MQTT `afr_ota` document for a `size`-byte firmware file.
pub fn mqtt_document(size: usize, signature: &str) -> Value {
    json!({"afr_ota": {"protocols": ["MQTT"], "streamname": STREAM, "files": [{
        "filepath": "/device/updates", "filesize": size, "fileid": 0,
        "certfile": "/certs/signer.pem", "fileType": 0, "sig-sha256-ecdsa": signature}]}})
}

/// An HTTP `afr_ota` document for a `size`-byte firmware file at `url`.
pub fn http_document(size: usize, url: &str, signature: &str) -> Value {
    json!({"afr_ota": {"protocols": ["HTTP"], "files": [{
        "filepath": "/device/updates", "filesize": size, "fileid": 0,
        "certfile": "/certs/signer.pem", "update_data_url": url,
        "auth_scheme": "aws.s3.presigned", "sig-sha256-ecdsa": signature}]}})
}

/// The Jobs service for one thing and one job, persisting `statusDetails` like AWS.
pub struct JobService {
    /// The document while the execution is pending; `None` = no job.
    pub document: Option<Value>,
    pub status: &'static str,
    pub status_details: Option<Value>,
    /// A faulty service that does not return `statusDetails`.
    pub omit_status_details: bool,
    /// A faulty service that loses the job once the device reports `self_test: ready`.
    pub forget_job_when_ready: bool,
    /// Every update payload, in order.
    pub updates: Vec<String>,
}

impl JobService {
    pub fn new(document: Option<Value>) -> Self {
        Self {
            document,
            status: "QUEUED",
            status_details: None,
            omit_status_details: false,
            forget_job_when_ready: false,
            updates: Vec::new(),
        }
    }

    /// The execution as `$next/get/accepted` / `notify-next` carry it.
    pub fn execution(&self) -> Option<Value> {
        let doc = self.document.clone()?;
        let mut e = json!({"jobId": JOB, "status": self.status, "queuedAt": 1,
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

    /// The `$next/get/accepted` reply (topic, payload) to a `$next/get` payload.
    pub fn answer_next_get(&self, request: &[u8]) -> (String, Vec<u8>) {
        let req: Value = serde_json::from_slice(request).unwrap();
        let mut reply = json!({"clientToken": req["clientToken"], "timestamp": 3});
        if let Some(e) = self.execution() {
            reply["execution"] = e;
        }
        let topic = format!("$aws/things/{THING}/jobs/$next/get/accepted");
        (topic, reply.to_string().into_bytes())
    }

    /// A `notify-next` (topic, payload) with the current execution.
    pub fn notify_next(&self) -> (String, Vec<u8>) {
        let mut msg = json!({"timestamp": 2});
        if let Some(e) = self.execution() {
            msg["execution"] = e;
        }
        let topic = format!("$aws/things/{THING}/jobs/notify-next");
        (topic, msg.to_string().into_bytes())
    }

    /// Applies an `…/update` payload.
    pub fn record_update(&mut self, payload: &[u8]) {
        let text = String::from_utf8(payload.to_vec()).unwrap();
        let update: Value = serde_json::from_str(&text).unwrap();
        self.status = match update["status"].as_str().unwrap() {
            "IN_PROGRESS" => "IN_PROGRESS",
            "SUCCEEDED" | "FAILED" => {
                self.document = None;
                "TERMINAL"
            }
            other => panic!("unexpected status {other}"),
        };
        if self.forget_job_when_ready && text.contains(r#""self_test":"ready""#) {
            self.document = None;
        }
        if let Some(d) = update.get("statusDetails") {
            self.status_details = Some(d.clone());
        }
        self.updates.push(text);
    }

    /// The last update, if any.
    pub fn last_update(&self) -> &str {
        self.updates.last().map_or("", String::as_str)
    }
}

/// The blocks a GetStream request selects, as (index, data message) pairs on the data topic of
/// the request's format.
pub fn answer_get_stream(
    image: &[u8],
    get_topic: &str,
    payload: &[u8],
) -> (String, Vec<(u32, Vec<u8>)>) {
    let t = topic::parse_stream_topic(get_topic).unwrap();
    assert_eq!((t.thing, t.stream), (THING, STREAM));
    let req = request::decode_get(t.format, payload).unwrap();
    let layout = FileLayout::new(image.len() as u64, req.block_size);
    let messages = select::select_blocks(&req, &layout)
        .unwrap()
        .map(|i| {
            let mut msg = Vec::new();
            response::encode_data(
                t.format,
                req.client_token,
                0,
                i,
                &image[layout.block_range(i)],
                &mut msg,
            );
            (i, msg)
        })
        .collect();
    (t.reply(topic::StreamOp::Data).to_string(), messages)
}
