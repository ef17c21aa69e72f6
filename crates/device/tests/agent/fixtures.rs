//! Byte-compatibility with the real AWS agent: the chunker's fixtures were recorded by driving
//! the unmodified C agent (`ota-for-aws-iot-embedded-sdk` 477ee9a5); the same inputs must make
//! this agent publish the same bytes and reach the same outcome.

use std::path::{Path, PathBuf};

use otastream_chunker::BlockSize;
use otastream_device::{AppVersion, DeviceConfig, Event};
use serde_json::Value;

use crate::sim::{Signer, Sim, test_image};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../chunker/fixtures/streams")
}

fn fixtures(prefix: &str) -> Vec<Value> {
    let mut names: Vec<_> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no {prefix}* fixtures");
    names
        .iter()
        .map(|n| {
            serde_json::from_str(&std::fs::read_to_string(fixture_dir().join(n)).unwrap()).unwrap()
        })
        .collect()
}

/// A sim for the fixtures' job: thing-vec, AFR_OTA-vec-stream, 1 KiB blocks unless told.
fn fixture_sim(log2_block: u32, n: u32, file_size: usize, signer: Option<&Signer>) -> Sim {
    let mut cfg = DeviceConfig::new(crate::sim::THING);
    cfg.block_size = BlockSize::new(1 << log2_block).unwrap();
    cfg.blocks_per_request = n;
    cfg.firmware_version = AppVersion::new(1, 0, 0);
    cfg.code_signing_cert_pem = signer.map(|s| s.cert_pem.clone());
    let mut sim = Sim::new(cfg, test_image(file_size));
    let sig = signer.map(|s| s.sign_b64(&sim.image)).unwrap_or_default();
    sim.jobs.document = Some(sim.mqtt_document(&sig));
    sim.serve_streams = false;
    sim
}

fn stream_requests(sim: &Sim) -> Vec<String> {
    sim.published
        .iter()
        .filter(|(_, t, _)| t.ends_with("/get/cbor"))
        .map(|(_, _, p)| hex::encode(p))
        .collect()
}

/// Every `agent_get_*` vector: same configuration, same blocks received, same trigger ⇒ the
/// same request bytes, on the same topic, as the n-th request.
#[test]
fn get_requests_match_the_real_agent() {
    for f in fixtures("agent_get_") {
        let name = f["name"].as_str().unwrap();
        let cfg = &f["source"]["agent_config"];
        let ctx = &f["agent_context"];
        let mut sim = fixture_sim(
            cfg["otaconfigLOG2_FILE_BLOCK_SIZE"].as_u64().unwrap() as u32,
            cfg["otaconfigMAX_NUM_BLOCKS_REQUEST"].as_u64().unwrap() as u32,
            ctx["file_size"].as_u64().unwrap() as usize,
            None,
        );
        sim.connect();
        sim.run_messages();
        let layout = *sim.agent.download().unwrap().layout();
        for i in ctx["blocks_received_before"].as_array().unwrap() {
            let i = i.as_u64().unwrap() as u32;
            let mut msg = Vec::new();
            let block = &sim.image[layout.block_range(i)];
            otastream_chunker::response::encode_data(
                otastream_chunker::Format::Cbor,
                Some("rdy"),
                0,
                i,
                block,
                &mut msg,
            );
            sim.push_data(msg);
        }
        sim.run_messages();
        if ctx["trigger"] == "timer" {
            sim.now = sim.agent.poll_timeout().unwrap();
            sim.agent.handle_timeout(sim.now);
            sim.pump();
        }
        let requests = stream_requests(&sim);
        assert_eq!(
            requests.len() as u64,
            ctx["requests_published_so_far"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            requests.last().unwrap(),
            f["hex"].as_str().unwrap(),
            "{name}"
        );
        let topic = &sim
            .published
            .iter()
            .rev()
            .find(|(_, t, _)| t.ends_with("/get/cbor"))
            .unwrap()
            .1;
        assert_eq!(topic, f["topic"].as_str().unwrap(), "{name}");
    }
}

/// The brief's anchor: the very first GetStream request with the library defaults (4 KiB, n = 1,
/// 10 000-byte file) is `a6 61 63 63 72 64 79 …` exactly.
#[test]
fn first_request_is_the_agent_default_vector() {
    let mut sim = fixture_sim(12, 1, 10_000, None);
    sim.connect();
    sim.run_messages();
    assert_eq!(
        stream_requests(&sim),
        ["a6616363726479616600616c191000616f0061624107616e01"]
    );
}

/// Both `data_session_*` transcripts: every publish of the real agent (`$next/get`, requests,
/// status updates), in the same order, after the same data message, byte for byte.
#[test]
fn whole_sessions_replay_like_the_real_agent() {
    let signer = Signer::new();
    for f in fixtures("data_session_") {
        let name = f["name"].as_str().unwrap();
        let mut sim = fixture_sim(10, 8, 10_000, Some(&signer));
        sim.connect();
        sim.run_messages();
        for m in f["messages"].as_array().unwrap() {
            sim.push_data(hex::decode(m["hex"].as_str().unwrap()).unwrap());
            sim.run_messages();
        }
        let expected: Vec<(i64, String)> = f["agent_trace"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t.get("topic_suffix").is_some())
            .map(|t| {
                (
                    t["after_message"].as_i64().unwrap(),
                    format!(
                        "{}|{}",
                        t["topic_suffix"].as_str().unwrap(),
                        t["hex"].as_str().unwrap()
                    ),
                )
            })
            .collect();
        let ours: Vec<(i64, String)> = sim
            .published
            .iter()
            .zip(&expected)
            .map(|((before, topic, payload), (_, exp))| {
                let suffix = exp.split('|').next().unwrap();
                assert!(topic.ends_with(suffix), "{name}: {topic} vs {suffix}");
                (
                    *before as i64 - 1,
                    format!("{suffix}|{}", hex::encode(payload)),
                )
            })
            .collect();
        assert_eq!(ours, expected, "{name}");
    }
}

/// Every `data_*` response vector with a recorded agent reaction: accepted, ignored as a
/// duplicate, or job failed — with the same status updates and requests.
#[test]
fn data_messages_get_the_real_agents_reaction() {
    for f in fixtures("data_") {
        if f["kind"] != "data_response" || f["encoding"] != "cbor" {
            continue;
        }
        let name = f["name"].as_str().unwrap();
        let ingest = &f["agent_ingest"];
        let mut sim = fixture_sim(10, 8, 10_000, None);
        sim.connect();
        sim.run_messages();
        let payload = hex::decode(f["hex"].as_str().unwrap()).unwrap();
        if ingest.get("sent_before_this_message").is_some() {
            sim.push_data(payload.clone());
            sim.run_messages();
        }
        let (published_before, events_before) = (sim.published.len(), sim.events.len());
        sim.push_data(payload);
        sim.run_messages();
        let new_events = &sim.events[events_before..];
        match ingest["outcome"].as_str().unwrap() {
            "accepted" => assert!(
                matches!(new_events, [Event::BlockAccepted { .. }]),
                "{name}: {new_events:?}"
            ),
            "duplicate_ignored" => assert!(
                matches!(new_events, [Event::DuplicateBlock { .. }]),
                "{name}: {new_events:?}"
            ),
            "job_failed" => assert!(
                matches!(new_events, [Event::Failed { .. }]),
                "{name}: {new_events:?}"
            ),
            other => panic!("{name}: outcome {other}"),
        }
        let statuses: Vec<(String, String)> = sim.published[published_before..]
            .iter()
            .filter(|(_, t, _)| t.ends_with("/update"))
            .map(|(_, t, p)| {
                (
                    t.rsplit_once("/jobs/").unwrap().1.to_owned(),
                    String::from_utf8(p.clone()).unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = ingest["job_status_published"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["topic_suffix"].as_str().unwrap().to_owned(),
                    s["payload"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(statuses, expected, "{name}");
        let requests = sim.published[published_before..]
            .iter()
            .filter(|(_, t, _)| t.ends_with("/get/cbor"))
            .count();
        assert_eq!(
            requests,
            ingest["requests_published"].as_array().unwrap().len(),
            "{name}"
        );
        let remaining = sim.agent.download().map_or(10, |d| d.remaining());
        assert_eq!(
            u64::from(remaining),
            ingest["blocks_remaining_after"].as_u64().unwrap(),
            "{name}"
        );
    }
}
