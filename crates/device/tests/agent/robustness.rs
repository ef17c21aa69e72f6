//! Hostile input: random and mutated messages on every topic the agent listens to, random HTTP
//! answers, timers and reboots. The agent must never panic, and whatever it publishes must stay
//! well-formed.

use otastream_device::{DeviceConfig, Transmit};
use serde_json::Value;

use crate::sim::{STREAM, Signer, Sim, THING, test_image};

/// A small deterministic generator for the test (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid messages to mutate: a job reply, a data block, a rejection, JSON fragments.
fn seeds(sim: &Sim) -> Vec<Vec<u8>> {
    let mut block = Vec::new();
    otastream_chunker::response::encode_data(
        otastream_chunker::Format::Cbor,
        Some("rdy"),
        0,
        1,
        &sim.image[4096..8192],
        &mut block,
    );
    let (_, reply) = sim.jobs.answer_next_get(br#"{"clientToken":":t"}"#);
    vec![
        reply,
        block,
        br#"{"o":"InvalidRequest","m":"x"}"#.to_vec(),
        br#"{"execution":{"jobId":"j","statusDetails":{"self_test":"x","updatedBy":"0xffffffffffff"},"jobDocument":{"afr_ota":{"protocols":["HTTP","MQTT"],"files":[{"filesize":18446744073709551615,"fileid":300}]}}}}"#.to_vec(),
        b"{}".to_vec(),
        Vec::new(),
    ]
}

#[test]
fn random_and_mutated_input_never_panics() {
    let signer = Signer::new();
    let topics = [
        format!("$aws/things/{THING}/streams/{STREAM}/data/cbor"),
        format!("$aws/things/{THING}/streams/{STREAM}/rejected/cbor"),
        format!("$aws/things/{THING}/jobs/notify-next"),
        format!("$aws/things/{THING}/jobs/$next/get/accepted"),
        format!("$aws/things/{THING}/jobs/x/update/accepted"),
        "anything/else".to_owned(),
    ];
    let mut blocks_seen = 0;
    for seed in 0..20u64 {
        let mut rng = Rng(seed);
        let mut cfg = DeviceConfig::new(THING);
        cfg.code_signing_cert_pem = Some(signer.cert_pem.clone());
        cfg.resume_from_bitmap = seed % 2 == 0;
        let mut sim = Sim::new(cfg, test_image(20_000));
        let sig = signer.sign_b64(&sim.image);
        sim.jobs.document = Some(sim.mqtt_document(&sig));
        sim.connect();
        let seeds = seeds(&sim);
        for _ in 0..500 {
            let mut msg = seeds[rng.below(seeds.len())].clone();
            for _ in 0..rng.below(4) {
                if !msg.is_empty() {
                    let at = rng.below(msg.len());
                    msg[at] = rng.next() as u8;
                }
            }
            if rng.below(10) == 0 {
                msg.truncate(rng.below(msg.len() + 1));
            }
            sim.now += rng.below(3_000) as u64;
            match rng.below(20) {
                0 => sim.agent.handle_timeout(sim.now),
                1 => sim.agent.handle_reboot(sim.now),
                2 => sim
                    .agent
                    .handle_http_response(sim.now, [206, 403, 500][rng.below(3)], &msg),
                _ => {
                    let topic = &topics[rng.below(topics.len())];
                    sim.agent.handle_publish(sim.now, topic, &msg);
                }
            }
            while let Some(t) = sim.agent.poll_transmit() {
                if let Transmit::Publish { topic, payload, .. } = t
                    && (topic.ends_with("/update") || topic.ends_with("$next/get"))
                {
                    let v: Value = serde_json::from_slice(&payload).unwrap();
                    assert!(v.is_object(), "{topic}");
                }
            }
            while sim.agent.poll_event().is_some() {}
        }
        blocks_seen += sim.agent.stats().blocks + sim.agent.stats().duplicates;
    }
    assert!(blocks_seen > 0, "the data path was exercised");
}
