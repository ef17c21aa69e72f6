//! What one simulated device costs per block, the number that bounds how many devices one
//! loadgen core can play: request encoding, data-message decoding and checks, bitmap, SHA-256,
//! events — for a 1 MiB stream in 4 KiB blocks, n = 1 (the AWS agent) and n = 32 (fast mode).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use otastream_chunker::{Format, response};
use otastream_device::{Agent, DeviceConfig, Transmit};

const SIZE: usize = 1 << 20;
const BLOCK: usize = 4096;

fn messages() -> Vec<Vec<u8>> {
    let image: Vec<u8> = (0..SIZE).map(|i| (i * 31 + 7) as u8).collect();
    image
        .chunks(BLOCK)
        .enumerate()
        .map(|(i, block)| {
            let mut m = Vec::new();
            response::encode_data(Format::Cbor, Some("rdy"), 0, i as u32, block, &mut m);
            m
        })
        .collect()
}

/// One whole download: every request answered with the next `n` blocks in order.
fn download(msgs: &[Vec<u8>], n: u32) -> u64 {
    let mut cfg = DeviceConfig::new("bench-thing").fast(n);
    cfg.use_jobs = false;
    let mut agent = Agent::new(cfg).expect("no certificate");
    let topic = "$aws/things/bench-thing/streams/s/data/cbor";
    agent.start_stream_download(0, "s", 0, SIZE as u64);
    let mut next = 0usize;
    let mut now = 0;
    while let Some(t) = agent.poll_transmit() {
        if let Transmit::Publish { .. } = t {
            for m in msgs.iter().skip(next).take(n as usize) {
                now += 1;
                agent.handle_publish(now, topic, m);
                next += 1;
            }
        }
        while agent.poll_event().is_some() {}
    }
    agent.stats().blocks
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    let mut group = c.benchmark_group("agent_1MiB_4KiB");
    group.throughput(Throughput::Elements(msgs.len() as u64));
    for n in [1u32, 32] {
        assert_eq!(download(&msgs, n), msgs.len() as u64);
        group.bench_function(format!("n{n}"), |b| b.iter(|| download(&msgs, n)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
