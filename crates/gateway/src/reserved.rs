//! Dispatch of the session's own reserved topics (`$aws/things/<thing>/...`) to in-process handlers.
//!
//! **Jobs plug in here.** [`StreamsHandler`] answers streams topics synchronously. [`JobsTopics`]
//! claims `$aws/things/<T>/jobs/...` for a [`JobsDriver`] (the jobs engine's driver, which persists
//! before it answers) that replies later through `Gateway::reply` and `Gateway::notify` — or
//! refuses a request at once ([`JobsAdmission::RejectNow`], e.g. `RequestThrottled` for a device
//! flooding it), and then [`JobsTopics`] writes that `…/rejected` answer into the device's own
//! replies, so it is never lost and a device that does not read its answers stops being read.
//! The server registers it once the jobs engine is wired in; until then jobs topics are not
//! claimed: a QoS 1 publish is still acknowledged, and nothing is answered.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, Publish};

use crate::metrics::Metrics;
use crate::policy;
use crate::streams::{self, StreamSource};
use crate::wire::Outbound;

/// An in-process answerer of reserved topics.
pub trait ReservedTopicHandler: Send + Sync {
    /// If this handler owns `publish.topic` (already checked to be under `$aws/things/<thing>/`),
    /// appends the complete reply frames for the requester to `out` and returns true; otherwise
    /// returns false and leaves `out` alone. Replies go to the requester whether or not it
    /// subscribed to the reply topic, as AWS does.
    fn handle(
        &self,
        thing: &str,
        publish: &Publish,
        scratch: &mut BytesMut,
        out: &mut Outbound,
    ) -> bool;
}

/// The streams service as a reserved-topic handler: claims `$aws/things/<T>/streams/...`.
pub struct StreamsHandler {
    source: Arc<dyn StreamSource>,
    metrics: Arc<Metrics>,
}

impl StreamsHandler {
    /// Serves streams from `source`, counting into `metrics`.
    pub fn new(source: Arc<dyn StreamSource>, metrics: Arc<Metrics>) -> Self {
        Self { source, metrics }
    }
}

impl ReservedTopicHandler for StreamsHandler {
    fn handle(
        &self,
        thing: &str,
        publish: &Publish,
        scratch: &mut BytesMut,
        out: &mut Outbound,
    ) -> bool {
        if own_service_suffix(thing, &publish.topic, "streams").is_none() {
            return false;
        }
        let outcome = streams::handle_stream_request(
            &publish.topic,
            &publish.payload,
            &*self.source,
            scratch,
            out,
        );
        self.metrics.record(outcome);
        true
    }
}

/// The part of `topic` after `$aws/things/<thing>/<service>/`, if `topic` is under it.
fn own_service_suffix<'t>(thing: &str, topic: &'t str, service: &str) -> Option<&'t str> {
    policy::own_reserved_suffix(thing, topic)?
        .strip_prefix(service)?
        .strip_prefix('/')
}

/// What a [`JobsDriver`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobsAdmission {
    /// Taken: the driver answers later (if the topic is a request at all).
    Queued,
    /// Refused at once: deliver this answer to the requester now, on the topic
    /// `$aws/things/<thing>/jobs/<topic_suffix>` (a `…/rejected` topic).
    RejectNow {
        /// E.g. `$next/get/rejected`.
        topic_suffix: String,
        /// The rejected payload.
        payload: Bytes,
    },
}

/// The jobs engine's driver as the gateway sees it.
pub trait JobsDriver: Send + Sync {
    /// One request from `thing` on `$aws/things/<thing>/jobs/<topic_suffix>` (e.g. `$next/get`).
    /// Must not block: persist on another thread, then answer with `Gateway::reply` (the
    /// `accepted`/`rejected` answer, delivered without a subscription) and `Gateway::notify`;
    /// or refuse it with [`JobsAdmission::RejectNow`], never drop it silently.
    fn handle_jobs_request(&self, thing: &str, topic_suffix: &str, payload: Bytes)
    -> JobsAdmission;
}

/// Claims `$aws/things/<T>/jobs/...` for a [`JobsDriver`]; writes only the driver's immediate
/// refusals (at QoS 0, into the requester's own replies, behind what it was already sent).
pub struct JobsTopics {
    driver: Arc<dyn JobsDriver>,
}

impl JobsTopics {
    /// Hands jobs requests to `driver`.
    pub fn new(driver: Arc<dyn JobsDriver>) -> Self {
        Self { driver }
    }
}

impl ReservedTopicHandler for JobsTopics {
    fn handle(
        &self,
        thing: &str,
        publish: &Publish,
        scratch: &mut BytesMut,
        out: &mut Outbound,
    ) -> bool {
        let Some(suffix) = own_service_suffix(thing, &publish.topic, "jobs") else {
            return false;
        };
        let admission = self
            .driver
            .handle_jobs_request(thing, suffix, publish.payload.clone());
        if let JobsAdmission::RejectNow {
            topic_suffix,
            payload,
        } = admission
        {
            let topic = format!("$aws/things/{thing}/jobs/{topic_suffix}");
            let answer = Packet::Publish(Publish::from_bytes(topic, QoS::AtMostOnce, payload));
            if let Err(e) = out.push_packet(&answer, scratch) {
                tracing::warn!(error = %e, thing, "jobs refusal could not be encoded");
            }
        }
        true
    }
}

/// The ordered list of reserved-topic handlers; the first that claims a topic answers it.
#[derive(Clone, Default)]
pub struct ReservedTopics {
    handlers: Vec<Arc<dyn ReservedTopicHandler>>,
}

impl ReservedTopics {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler after the existing ones (the jobs engine registers here).
    pub fn with_handler(mut self, handler: Arc<dyn ReservedTopicHandler>) -> Self {
        self.handlers.push(handler);
        self
    }

    /// Offers `publish` to each handler in turn; false if none claimed it.
    pub fn dispatch(
        &self,
        thing: &str,
        publish: &Publish,
        scratch: &mut BytesMut,
        out: &mut Outbound,
    ) -> bool {
        self.handlers
            .iter()
            .any(|h| h.handle(thing, publish, scratch, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::{FileLookup, SourceError, StreamDescription};
    use rumqttc::mqttbytes::QoS;

    /// A store with no streams at all.
    struct NoStreams;

    impl StreamSource for NoStreams {
        fn file(&self, _: &str, _: u8) -> Result<FileLookup, SourceError> {
            Ok(FileLookup::StreamNotFound)
        }
        fn describe(&self, _: &str) -> Result<Option<StreamDescription>, SourceError> {
            Ok(None)
        }
    }

    #[test]
    fn streams_topics_are_answered_and_jobs_topics_are_left_unclaimed() {
        let metrics = Arc::new(Metrics::new());
        let reserved = ReservedTopics::new().with_handler(Arc::new(StreamsHandler::new(
            Arc::new(NoStreams),
            Arc::clone(&metrics),
        )));
        let (mut scratch, mut out) = (BytesMut::new(), Outbound::new());

        let get = Publish::new(
            "$aws/things/dev1/streams/s1/get/json",
            QoS::AtMostOnce,
            br#"{"f":0,"l":1024}"#.to_vec(),
        );
        assert!(reserved.dispatch("dev1", &get, &mut scratch, &mut out));
        assert_eq!(out.chunk_count(), 1, "one rejected message");
        assert!(
            metrics
                .render()
                .contains("otastream_gateway_stream_rejects_total{code=\"ResourceNotFound\"} 1")
        );

        let mut out = Outbound::new();
        let jobs = Publish::new(
            "$aws/things/dev1/jobs/$next/get",
            QoS::AtMostOnce,
            b"{}".to_vec(),
        );
        assert!(!reserved.dispatch("dev1", &jobs, &mut scratch, &mut out));
        let shadow = Publish::new("$aws/things/dev1/shadow/get", QoS::AtMostOnce, Vec::new());
        assert!(!reserved.dispatch("dev1", &shadow, &mut scratch, &mut out));
        assert!(out.is_empty());
    }
}

#[cfg(test)]
mod jobs_tests {
    use super::*;
    use bytes::Buf;
    use std::sync::Mutex;

    /// Records what it is handed.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String, Bytes)>>);

    impl JobsDriver for Recorder {
        fn handle_jobs_request(
            &self,
            thing: &str,
            topic_suffix: &str,
            payload: Bytes,
        ) -> JobsAdmission {
            let mut seen = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.push((thing.into(), topic_suffix.into(), payload));
            JobsAdmission::Queued
        }
    }

    /// Refuses everything with a fixed answer.
    struct Refuser;

    impl JobsDriver for Refuser {
        fn handle_jobs_request(&self, _: &str, topic_suffix: &str, _: Bytes) -> JobsAdmission {
            JobsAdmission::RejectNow {
                topic_suffix: format!("{topic_suffix}/rejected"),
                payload: Bytes::from_static(br#"{"code":"RequestThrottled"}"#),
            }
        }
    }

    #[test]
    fn a_refused_jobs_request_is_answered_at_once_on_its_rejected_topic() {
        let reserved =
            ReservedTopics::new().with_handler(Arc::new(JobsTopics::new(Arc::new(Refuser))));
        let (mut scratch, mut out) = (BytesMut::new(), Outbound::new());
        let get = Publish::new(
            "$aws/things/dev1/jobs/get",
            QoS::AtLeastOnce,
            b"{}".to_vec(),
        );
        assert!(reserved.dispatch("dev1", &get, &mut scratch, &mut out));
        let mut written = BytesMut::new();
        while out.has_remaining() {
            let chunk = out.chunk().to_vec();
            written.extend_from_slice(&chunk);
            out.advance(chunk.len());
        }
        let Ok(Packet::Publish(answer)) = Packet::read(&mut written, 1 << 20) else {
            panic!("one PUBLISH expected");
        };
        assert_eq!(answer.topic, "$aws/things/dev1/jobs/get/rejected");
        assert_eq!(answer.qos, QoS::AtMostOnce);
        assert_eq!(&answer.payload[..], br#"{"code":"RequestThrottled"}"#);
        assert!(written.is_empty(), "exactly one packet");
    }

    #[test]
    fn jobs_topics_go_to_the_driver_and_nothing_else_does() {
        let recorder = Arc::new(Recorder::default());
        let reserved =
            ReservedTopics::new().with_handler(Arc::new(JobsTopics::new(recorder.clone())));
        let (mut scratch, mut out) = (BytesMut::new(), Outbound::new());
        let next = Publish::new(
            "$aws/things/dev1/jobs/$next/get",
            QoS::AtLeastOnce,
            b"{}".to_vec(),
        );
        assert!(reserved.dispatch("dev1", &next, &mut scratch, &mut out));
        let streams = Publish::new(
            "$aws/things/dev1/streams/s/get/cbor",
            QoS::AtMostOnce,
            vec![],
        );
        assert!(!reserved.dispatch("dev1", &streams, &mut scratch, &mut out));
        let jobsish = Publish::new("$aws/things/dev1/jobsx/get", QoS::AtMostOnce, vec![]);
        assert!(!reserved.dispatch("dev1", &jobsish, &mut scratch, &mut out));
        assert!(out.is_empty(), "the driver answers later, not here");
        let seen = recorder
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(
            *seen,
            vec![(
                "dev1".to_owned(),
                "$next/get".to_owned(),
                Bytes::from_static(b"{}")
            )]
        );
    }
}
