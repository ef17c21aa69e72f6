//! Gateway block path over loopback: a real in-process server (`otastream::server::start`) and
//! many concurrent rumqttc devices, 4 KiB blocks of a 1 MiB stream.
//!
//! - `blocks/n1`: every device sends `{f:0, l:4096, o, n:1}` and waits for its one block before the
//!   next request (the default AWS agent's pace), all devices at once.
//! - `blocks/n32`: the same with `n = 32` (128 KiB per request, the per-request cap).
//!
//! Throughput is reported in elements = blocks per second; MB/s = blocks/s × 4096. The clients run
//! in the same process on the same two cores, so the figures include rumqttc's own decoding cost.
//!
//! Run: `cargo bench --bench gateway`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use otastream::server::{self, RunningServer, ServerConfig};
use otastream_chunker::request::{self, GetStreamRequest};
use otastream_chunker::{BlockSize, FileId, Format};
use otastream_store::{NewStream, PutMeta, StreamFile};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, NetworkOptions, QoS};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const DEVICES: usize = 64;
const BLOCK: u32 = 4096;
const IMAGE: usize = 1 << 20;
const BLOCKS_IN_IMAGE: u32 = (IMAGE / BLOCK as usize) as u32;

/// One connected device: its client and a channel that yields one `()` per data message.
struct BenchDevice {
    client: AsyncClient,
    topic: String,
    blocks: mpsc::UnboundedReceiver<()>,
}

async fn start_server(dir: &std::path::Path) -> RunningServer {
    let running = server::start(ServerConfig::ephemeral(dir))
        .await
        .expect("server starts");
    let store = running.store.clone();
    tokio::task::spawn_blocking(move || {
        let data: Vec<u8> = (0..IMAGE).map(|i| ((i * 31 + 7) % 251) as u8).collect();
        store.create_bucket("bench").expect("bucket");
        store
            .put_object("bench", "fw.bin", &data, PutMeta::default())
            .expect("object");
        let file = StreamFile {
            file_id: 0,
            bucket: "bench".into(),
            key: "fw.bin".into(),
            version_id: None,
        };
        store
            .create_stream(&NewStream {
                id: "fw".into(),
                description: None,
                role_arn: None,
                files: vec![file],
            })
            .expect("stream");
    })
    .await
    .expect("setup");
    running
}

async fn connect(running: &RunningServer, i: usize) -> BenchDevice {
    let thing = format!("bench-{i}");
    let mut opts = MqttOptions::new(&thing, "127.0.0.1", running.mqtt_addr.port());
    opts.set_keep_alive(Duration::from_secs(60));
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    eventloop.set_network_options(net);
    let (tx, blocks) = mpsc::unbounded_channel();
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut connected_tx = Some(connected_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    if let Some(c) = connected_tx.take() {
                        let _ = c.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(_))) => {
                    if tx.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // The server shut down (or failed): a measurement still waiting fails on recv.
                Err(_) => return,
            }
        }
    });
    connected.await.expect("CONNACK");
    BenchDevice {
        client,
        topic: format!("$aws/things/{thing}/streams/fw/get/cbor"),
        blocks,
    }
}

/// The CBOR GetStream request for `n` blocks from block `offset`.
fn request_bytes(offset: u32, n: u32) -> Vec<u8> {
    let req = GetStreamRequest {
        client_token: Some("rdy"),
        stream_version: None,
        file_id: FileId::new(0).expect("file id"),
        block_size: BlockSize::new(BLOCK).expect("block size"),
        offset,
        count: Some(n),
        bitmap: None,
    };
    let mut out = Vec::new();
    request::encode_get(Format::Cbor, &req, &mut out);
    out
}

/// Every device makes `rounds` requests for `n` blocks, one request in flight per device.
async fn run_rounds(devices: &mut [BenchDevice], rounds: u64, n: u32) -> Duration {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..BLOCKS_IN_IMAGE)
            .step_by(n as usize)
            .map(|o| request_bytes(o, n))
            .collect(),
    );
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for dev in devices.iter_mut() {
        let client = dev.client.clone();
        let topic = dev.topic.clone();
        let requests = Arc::clone(&requests);
        // The receiver is moved into the task and handed back when the task ends.
        let mut blocks = std::mem::replace(&mut dev.blocks, mpsc::unbounded_channel().1);
        tasks.spawn(async move {
            for r in 0..rounds {
                let payload = requests[(r as usize) % requests.len()].clone();
                client
                    .publish(topic.as_str(), QoS::AtMostOnce, false, payload)
                    .await
                    .expect("publish");
                for _ in 0..n {
                    blocks.recv().await.expect("data message");
                }
            }
            blocks
        });
    }
    let mut returned = Vec::with_capacity(devices.len());
    while let Some(done) = tasks.join_next().await {
        returned.push(done.expect("device task"));
    }
    let elapsed = start.elapsed();
    for (dev, blocks) in devices.iter_mut().zip(returned) {
        dev.blocks = blocks;
    }
    elapsed
}

fn gateway(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let running = rt.block_on(start_server(dir.path()));
    let mut devices = rt.block_on(async {
        let mut devices = Vec::with_capacity(DEVICES);
        for i in 0..DEVICES {
            devices.push(connect(&running, i).await);
        }
        devices
    });

    let mut group = c.benchmark_group("blocks");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));
    for n in [1u32, 32] {
        group.throughput(Throughput::Elements(DEVICES as u64 * u64::from(n)));
        group.bench_with_input(BenchmarkId::new(format!("n{n}"), DEVICES), &n, |b, &n| {
            b.iter_custom(|rounds| rt.block_on(run_rounds(&mut devices, rounds, n)));
        });
    }
    group.finish();
    rt.block_on(running.shutdown());
}

criterion::criterion_group!(benches, gateway);
criterion::criterion_main!(benches);
