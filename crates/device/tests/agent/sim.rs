//! A simulated AWS IoT endpoint for the agent: the shared Jobs and streams services
//! (`support`), an S3 face answering HTTP range requests, loss and duplication of data messages,
//! and a simulated millisecond clock.

use std::collections::{HashSet, VecDeque};

use otastream_device::{Agent, DeviceConfig, Event, PublishKind, Transmit};
use serde_json::Value;

use crate::support::{self, JobService};
pub use crate::support::{JOB, STREAM, Signer, THING, test_image};

pub const URL: &str = "http://127.0.0.1:9/bucket/fw.bin?X-Amz-Signature=1";

/// The device and its simulated endpoint.
pub struct Sim {
    pub agent: Agent,
    pub now: u64,
    pub image: Vec<u8>,
    pub jobs: JobService,
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
            jobs: JobService::new(None),
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

    /// An MQTT job document for the image with `signature`.
    pub fn mqtt_document(&self, signature: &str) -> Value {
        support::mqtt_document(self.image.len(), signature)
    }

    /// An HTTP job document for the image with `signature`.
    pub fn http_document(&self, signature: &str) -> Value {
        support::http_document(self.image.len(), URL, signature)
    }

    /// Queues a `notify-next` carrying the current execution.
    pub fn push_notify_next(&mut self) {
        let msg = self.jobs.notify_next();
        self.inbox.push_back(msg);
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

    pub fn push_data(&mut self, payload: Vec<u8>) {
        let format = self.agent.config().format.as_str();
        let topic = format!("$aws/things/{THING}/streams/{STREAM}/data/{format}");
        self.inbox.push_back((topic, payload));
    }

    /// The last status update the device published.
    pub fn last_update(&self) -> &str {
        self.jobs.last_update()
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
                self.published
                    .push((self.data_delivered, topic.clone(), payload.clone()));
                match kind {
                    PublishKind::NextJobRequest => {
                        let reply = self.jobs.answer_next_get(&payload);
                        self.inbox.push_back(reply);
                    }
                    PublishKind::StreamRequest => self.answer_get_stream(&topic, payload),
                    PublishKind::JobStatus => self.jobs.record_update(&payload),
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

    fn answer_get_stream(&mut self, topic: &str, payload: Vec<u8>) {
        if self.serve_streams {
            let (data_topic, messages) = support::answer_get_stream(&self.image, topic, &payload);
            for (i, msg) in messages {
                if self.lose_once.contains(&i) && self.sent.insert(i) {
                    continue;
                }
                if self.duplicate_everything {
                    self.inbox.push_back((data_topic.clone(), msg.clone()));
                }
                self.inbox.push_back((data_topic.clone(), msg));
            }
        }
        self.stream_requests.push(payload);
    }

    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}
