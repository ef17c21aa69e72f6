//! Sans-IO tests of the streams service: simulated devices build requests with the chunker's
//! device-side encoder and decode the reply frames; no sockets.

use std::collections::BTreeMap;

use bytes::Buf;
use otastream_chunker::request::GetStreamRequest;
use otastream_chunker::{BlockSize, FileId};
use otastream_device::download::{Download, Ingest};
use rumqttc::mqttbytes::v4::{Packet, Publish};

use super::*;
use crate::wire::MAX_INCOMING_PACKET;

/// One stream kept in memory: (version, description, files).
type MapStream = (u64, String, Vec<(u8, Bytes)>);

/// Streams kept in memory by id.
#[derive(Default)]
struct MapSource(BTreeMap<String, MapStream>);

impl MapSource {
    fn with(id: &str, version: u64, files: Vec<(u8, Bytes)>) -> Self {
        let mut m = Self::default();
        m.0.insert(id.into(), (version, "fw".into(), files));
        m
    }
}

impl StreamSource for MapSource {
    fn file(&self, stream_id: &str, file_id: u8) -> Result<FileLookup, SourceError> {
        if stream_id == "broken" {
            return Err(SourceError("disk on fire".into()));
        }
        Ok(match self.0.get(stream_id) {
            None => FileLookup::StreamNotFound,
            Some((version, _, files)) => match files.iter().find(|(id, _)| *id == file_id) {
                None => FileLookup::FileNotFound { version: *version },
                Some((_, data)) => FileLookup::Found {
                    version: *version,
                    data: data.clone(),
                },
            },
        })
    }

    fn describe(&self, stream_id: &str) -> Result<Option<StreamDescription>, SourceError> {
        Ok(self
            .0
            .get(stream_id)
            .map(|(version, d, files)| StreamDescription {
                version: *version,
                description: d.clone(),
                files: files.iter().map(|(id, b)| (*id, b.len() as u64)).collect(),
            }))
    }
}

/// The test image of the fixtures: byte[i] = (i * 31 + 7) mod 251.
fn image(len: usize) -> Bytes {
    (0..len)
        .map(|i| ((i * 31 + 7) % 251) as u8)
        .collect::<Vec<_>>()
        .into()
}

/// Runs one request and returns the reply PUBLISH packets as a device would read them.
fn ask(source: &MapSource, topic: &str, payload: &[u8]) -> (Outcome, Vec<Publish>) {
    let mut out = Outbound::new();
    let outcome = handle_stream_request(topic, payload, source, &mut BytesMut::new(), &mut out);
    let mut wire = BytesMut::from(&out.copy_to_bytes(out.remaining())[..]);
    let mut replies = Vec::new();
    while !wire.is_empty() {
        match Packet::read(&mut wire, MAX_INCOMING_PACKET * 2).expect("well-formed frame") {
            Packet::Publish(p) => replies.push(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    (outcome, replies)
}

/// Downloads file 0 of stream `fw` with the device simulator's [`Download`] (whole-file bitmap of
/// missing blocks, `o = 0`, `n` blocks per request, like the AWS agent); checks that every request
/// is answered with exactly `min(n, 128 KiB / l, missing)` new, valid blocks. Returns the rebuilt
/// image and the number of requests.
fn download(
    source: &MapSource,
    format: Format,
    size: usize,
    block: u32,
    n: u32,
) -> (Vec<u8>, usize) {
    let mut dl = Download::new(size as u64, BlockSize::new(block).unwrap(), 0, true);
    let topic = format!("$aws/things/dev1/streams/fw/get/{}", format.as_str());
    let mut requests = 0;
    while dl.remaining() > 0 {
        requests += 1;
        let mut payload = Vec::new();
        dl.encode_request(format, n, &mut payload);
        let expected = n.min(131_072 / block).min(dl.remaining());
        let (outcome, replies) = ask(source, &topic, &payload);
        assert!(
            matches!(outcome, Outcome::Served { blocks, .. } if blocks == expected),
            "{outcome:?}"
        );
        assert_eq!(replies.len(), expected as usize);
        for p in replies {
            assert_eq!(
                p.topic,
                format!("$aws/things/dev1/streams/fw/data/{}", format.as_str())
            );
            let msg = response::decode_data(format, &p.payload).expect("data message");
            assert_eq!(msg.client_token.as_deref(), Some("rdy"));
            let ingest = dl.ingest_message(&msg);
            assert!(
                matches!(ingest, Ingest::Accepted { .. } | Ingest::Complete { .. }),
                "{ingest:?}"
            );
        }
    }
    (dl.image().expect("kept").to_vec(), requests)
}

#[test]
fn devices_rebuild_the_image_in_cbor_and_json() {
    let size = 300_001;
    let data = image(size);
    let source = MapSource::with("fw", 1, vec![(0, data.clone())]);
    for format in [Format::Cbor, Format::Json] {
        for (n, block, requests) in [(1, 4096, 74), (32, 4096, 3), (40, 4096, 3), (8, 1024, 37)] {
            let (got, made) = download(&source, format, size, block, n);
            assert!(got == data[..], "{format:?} n={n} l={block}: image differs");
            assert_eq!(made, requests, "{format:?} n={n} l={block}");
        }
    }
}

#[test]
fn without_n_a_bitmap_request_gets_every_set_bit_up_to_128_kib() {
    let source = MapSource::with("fw", 1, vec![(0, image(1 << 20))]);
    // 256 blocks of 4 KiB, all wanted, no `n`: the 32 lowest (128 KiB), ascending.
    let req = GetStreamRequest {
        client_token: None,
        stream_version: Some(1),
        file_id: FileId::new(0).unwrap(),
        block_size: BlockSize::new(4096).unwrap(),
        offset: 0,
        count: None,
        bitmap: Some(vec![0xff; 32].into()),
    };
    let mut payload = Vec::new();
    request::encode_get(Format::Cbor, &req, &mut payload);
    let (_, replies) = ask(&source, "$aws/things/dev1/streams/fw/get/cbor", &payload);
    let got = indices(&replies);
    assert_eq!(got, (0..32).collect::<Vec<_>>());
}

#[test]
fn agent_case_c_gets_exactly_the_missing_blocks() {
    // PROTOCOL.md §1.10 case C: 40 000 bytes, 4 KiB blocks, n = 4, blocks 0, 1, 2, 5 received.
    let source = MapSource::with("fw", 1, vec![(0, image(40_000))]);
    let req = hex("a661636372647961660061 6c191000616f00616242d803616e04");
    let (_, replies) = ask(&source, "$aws/things/dev1/streams/fw/get/cbor", &req);
    let got = indices(&replies);
    assert_eq!(got, [3, 4, 6, 7]);
}

#[test]
fn cbor_blocks_are_slices_of_the_image_not_copies() {
    let data = image(10_000);
    let source = MapSource::with("fw", 1, vec![(0, data.clone())]);
    let req = hex("a6616363726479616600616c191000616f0061624107616e01");
    let mut out = Outbound::new();
    handle_stream_request(
        "$aws/things/dev1/streams/fw/get/cbor",
        &req,
        &source,
        &mut BytesMut::new(),
        &mut out,
    );
    assert_eq!(out.chunk_count(), 2, "header + payload");
    out.advance(out.chunk().len());
    assert_eq!(
        out.chunk().as_ptr(),
        data.as_ptr(),
        "payload chunk points into the image"
    );
    assert_eq!(out.remaining(), 4096);
}

#[test]
fn describe_answers_version_description_and_files() {
    let source = MapSource::with("fw", 1, vec![(0, image(10_000))]);
    let (outcome, replies) = ask(
        &source,
        "$aws/things/dev1/streams/fw/describe/cbor",
        &hex("a161636372647 9"),
    );
    assert_eq!(outcome, Outcome::Described);
    assert_eq!(
        replies[0].topic,
        "$aws/things/dev1/streams/fw/description/cbor"
    );
    // PROTOCOL.md §1.10: one 10 000-byte file, version 1, description "fw".
    assert_eq!(
        &replies[0].payload[..],
        hex("a4616363726479617301616462667761728 1a2616600617a192710")
    );
}

/// Every rejection the service produces: (stream, topic suffix, payload, expected code, token echoed).
#[test]
fn every_reject_code_is_one_rejected_message() {
    let mut source = MapSource::with("fw", 3, vec![(0, image(10_000))]);
    source.0.insert("broken".into(), (1, String::new(), vec![]));
    let long_token = "x".repeat(65);
    let big_bitmap = format!("0x{}", "ff".repeat(12_288));
    let cases: Vec<(&str, &str, String, RejectCode, bool)> = vec![
        (
            "nope",
            "get/json",
            r#"{"c":"t","f":0,"l":4096}"#.into(),
            RejectCode::ResourceNotFound,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","f":7,"l":4096}"#.into(),
            RejectCode::ResourceNotFound,
            true,
        ),
        (
            "nope",
            "describe/json",
            r#"{"c":"t"}"#.into(),
            RejectCode::ResourceNotFound,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","s":1,"f":0,"l":4096}"#.into(),
            RejectCode::VersionMismatch,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","f":0,"l":100}"#.into(),
            RejectCode::BlockSizeOutOfBounds,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","f":0,"l":4096,"o":3}"#.into(),
            RejectCode::OffsetOutOfBounds,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","f":0,"l":4096,"n":98305}"#.into(),
            RejectCode::BlockCountLimitExceeded,
            true,
        ),
        (
            "fw",
            "get/json",
            format!(r#"{{"c":"t","f":0,"l":4096,"b":"{big_bitmap}"}}"#),
            RejectCode::BlockBitmapLimitExceeded,
            true,
        ),
        (
            "fw",
            "get/json",
            format!(r#"{{"c":"{long_token}","f":0,"l":4096}}"#),
            RejectCode::InvalidRequest,
            false,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","f":"zero","l":4096}"#.into(),
            RejectCode::InvalidRequest,
            true,
        ),
        (
            "fw",
            "get/json",
            r#"{"c":"t","l":4096}"#.into(),
            RejectCode::InvalidRequest,
            true,
        ),
        (
            "fw",
            "get/json",
            "{not json".into(),
            RejectCode::InvalidJson,
            false,
        ),
        (
            "fw",
            "get/cbor",
            "\u{1f}".into(),
            RejectCode::InvalidCbor,
            false,
        ),
        (
            "fw",
            "data/cbor",
            String::new(),
            RejectCode::InvalidTopic,
            false,
        ),
        (
            "bad.id",
            "get/cbor",
            String::new(),
            RejectCode::InvalidTopic,
            false,
        ),
        (
            "broken",
            "get/json",
            r#"{"f":0,"l":4096}"#.into(),
            RejectCode::InternalError,
            false,
        ),
    ];
    for (stream, suffix, payload, code, echoed) in cases {
        let topic = format!("$aws/things/dev1/streams/{stream}/{suffix}");
        let (outcome, replies) = ask(&source, &topic, payload.as_bytes());
        assert_eq!(outcome, Outcome::Rejected(code), "{topic} {payload:.60}");
        assert_eq!(replies.len(), 1, "exactly one answer for {topic}");
        let format = if suffix.ends_with("json") {
            "json"
        } else {
            "cbor"
        };
        assert_eq!(
            replies[0].topic,
            format!("$aws/things/dev1/streams/{stream}/rejected/{format}")
        );
        let text = String::from_utf8_lossy(&replies[0].payload);
        assert!(text.contains(code.as_str()), "{code:?} in {text}");
        if format == "json" {
            let v: serde_json::Value =
                serde_json::from_slice(&replies[0].payload).expect("JSON rejection");
            assert_eq!(v["o"], code.as_str());
            assert_eq!(v.get("c").is_some(), echoed, "{text}");
        }
    }
}

#[test]
fn unparsable_topics_without_a_format_are_not_answered() {
    let source = MapSource::default();
    let (outcome, replies) = ask(&source, "$aws/things/dev1/streams/fw/get/xml", b"{}");
    assert_eq!((outcome, replies.len()), (Outcome::Unanswerable, 0));
}

/// The block indices of CBOR data messages.
fn indices(replies: &[Publish]) -> Vec<u32> {
    replies
        .iter()
        .map(|p| {
            response::decode_data(Format::Cbor, &p.payload)
                .expect("data message")
                .index
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
