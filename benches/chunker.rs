//! Chunker throughput: cutting a firmware image into 4 KiB CBOR data messages, against a plain
//! memcpy of the same bytes measured in the same run.
//!
//! - `memcpy/<size>`: copy the image into a buffer of the same size (the ceiling).
//! - `cbor_messages/<size>`: for every block, encode the data header and copy header + payload
//!   into one output buffer (what a server that cannot write vectored would do).
//! - `borrowed_headers/<size>`: for every block, encode the header and pair it with a borrowed
//!   slice of the image (the gateway's zero-copy path); reported per header.
//!
//! Run: `cargo bench --bench chunker`. After the run it prints the messages/memcpy ratio and the
//! header rate from criterion's own estimates.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput};
use otastream_chunker::response::{MAX_DATA_HEADER, encode_data_header};
use otastream_chunker::{BlockSize, FileLayout};

const BLOCK: u32 = 4096;
const SIZES: [(&str, usize); 2] = [("1MiB", 1 << 20), ("24MiB", 24 << 20)];

fn image(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn chunk_into(image: &[u8], layout: &FileLayout, out: &mut Vec<u8>) {
    out.clear();
    let mut header = [0u8; MAX_DATA_HEADER];
    for i in 0..layout.block_count() {
        let block = &image[layout.block_range(i)];
        let n = encode_data_header(Some("rdy"), 0, i, block.len() as u32, &mut header);
        out.extend_from_slice(&header[..n]);
        out.extend_from_slice(block);
    }
}

fn borrowed_headers(image: &[u8], layout: &FileLayout) -> usize {
    let mut header = [0u8; MAX_DATA_HEADER];
    let mut total = 0;
    for i in 0..layout.block_count() {
        let block = black_box(&image[layout.block_range(i)]);
        let n = encode_data_header(Some("rdy"), 0, i, block.len() as u32, &mut header);
        total += black_box(&header[..n]).len() + block.len();
    }
    total
}

fn benches(c: &mut Criterion) {
    let block = BlockSize::new(BLOCK).expect("4 KiB is a valid block size");
    for (name, size) in SIZES {
        let img = image(size);
        let layout = FileLayout::new(size as u64, block);
        let mut g = c.benchmark_group("chunker");
        g.sample_size(if size > (4 << 20) { 20 } else { 100 });
        g.throughput(Throughput::Bytes(size as u64));
        let mut copy = vec![0u8; size];
        g.bench_function(BenchmarkId::new("memcpy", name), |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&img));
                black_box(&copy);
            })
        });
        let mut out = Vec::with_capacity(size + layout.block_count() as usize * MAX_DATA_HEADER);
        g.bench_function(BenchmarkId::new("cbor_messages", name), |b| {
            b.iter(|| {
                chunk_into(black_box(&img), &layout, &mut out);
                black_box(&out);
            })
        });
        g.throughput(Throughput::Elements(u64::from(layout.block_count())));
        g.bench_function(BenchmarkId::new("borrowed_headers", name), |b| {
            b.iter(|| borrowed_headers(black_box(&img), &layout))
        });
        g.finish();
    }
}

/// Criterion's mean estimate (ns per iteration) for `chunker/<id>/<size>`, from its report files.
fn mean_ns(id: &str, size: &str) -> Option<f64> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let path = target
        .join("criterion/chunker")
        .join(id)
        .join(size)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    println!("\nsummary (4 KiB blocks, CBOR data messages):");
    for (name, size) in SIZES {
        let (Some(copy), Some(msgs), Some(hdrs)) = (
            mean_ns("memcpy", name),
            mean_ns("cbor_messages", name),
            mean_ns("borrowed_headers", name),
        ) else {
            println!("  {name}: no estimates (filtered out?)");
            continue;
        };
        let blocks = size.div_ceil(BLOCK as usize) as f64;
        let gib = |ns: f64| size as f64 / ns; // bytes per ns = GB/s
        println!(
            "  {name}: memcpy {:.2} GB/s, messages {:.2} GB/s, ratio {:.2}x memcpy; borrowed-payload headers {:.1} M/s",
            gib(copy),
            gib(msgs),
            copy / msgs,
            blocks / hdrs * 1e3,
        );
    }
}
