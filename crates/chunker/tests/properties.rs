//! Property tests: codec round trips, the bitmap rule against a naive model, and no panics on
//! arbitrary input.

use std::borrow::Cow;

use otastream_chunker::request::{GetStreamRequest, decode_describe, decode_get, encode_get};
use otastream_chunker::response::{decode_data, encode_data};
use otastream_chunker::select::select_blocks;
use otastream_chunker::topic::parse_stream_topic;
use otastream_chunker::{BlockSize, FileId, FileLayout, Format, limits};
use proptest::prelude::*;

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Cbor), Just(Format::Json)]
}

prop_compose! {
    fn request()(
        token in proptest::option::of("[a-zA-Z0-9:_-]{0,64}"),
        version in proptest::option::of(any::<u64>()),
        file in 0u32..=255,
        block in 256u32..=131_072,
        offset in 0u32..=limits::MAX_OFFSET,
        count in proptest::option::of(1u32..=limits::MAX_BLOCK_COUNT),
        bitmap in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
    ) -> (Option<String>, Option<u64>, u32, u32, u32, Option<u32>, Option<Vec<u8>>) {
        (token, version, file, block, offset, count, bitmap)
    }
}

type Parts = (
    Option<String>,
    Option<u64>,
    u32,
    u32,
    u32,
    Option<u32>,
    Option<Vec<u8>>,
);

fn build(p: &Parts) -> GetStreamRequest<'_> {
    GetStreamRequest {
        client_token: p.0.as_deref(),
        stream_version: p.1,
        file_id: FileId::new(p.2).unwrap(),
        block_size: BlockSize::new(p.3).unwrap(),
        offset: p.4,
        count: p.5,
        bitmap: p.6.as_deref().map(Cow::Borrowed),
    }
}

/// The README's selection rule, written as plainly as possible.
fn model(req: &GetStreamRequest<'_>, file_size: u64) -> Vec<u32> {
    let l = u64::from(req.block_size.get());
    let blocks = file_size.div_ceil(l);
    let cap = 131_072 / l;
    let (wanted, limit): (Vec<u64>, u64) = match req.bitmap.as_deref() {
        Some(b) => {
            let mut w = Vec::new();
            for (k, byte) in b.iter().enumerate() {
                for j in 0..8 {
                    if byte & (1 << j) != 0 {
                        w.push(u64::from(req.offset) + 8 * k as u64 + j);
                    }
                }
            }
            (w, req.count.map_or(cap, |n| u64::from(n).min(cap)))
        }
        None => {
            let n = req.count.map_or(cap, u64::from);
            (
                (u64::from(req.offset)..u64::from(req.offset) + n).collect(),
                cap,
            )
        }
    };
    wanted
        .into_iter()
        .filter(|&x| x < blocks)
        .take(limit as usize)
        .map(|x| x as u32)
        .collect()
}

proptest! {
    #[test]
    fn get_request_round_trips(parts in request(), f in format()) {
        let req = build(&parts);
        let mut bytes = Vec::new();
        encode_get(f, &req, &mut bytes);
        let back = decode_get(f, &bytes).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn selection_matches_the_model(parts in request(), file_size in 0u64..(8 << 20)) {
        let req = build(&parts);
        let layout = FileLayout::new(file_size, req.block_size);
        match select_blocks(&req, &layout) {
            Err(e) => prop_assert!(req.offset >= layout.block_count(), "{e}"),
            Ok(sel) => {
                let got: Vec<u32> = sel.collect();
                prop_assert_eq!(&got, &model(&req, file_size));
                prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "ascending, no duplicates");
                prop_assert!(got.iter().all(|&i| layout.contains(i)));
                let bytes: u64 = got.iter().map(|&i| u64::from(layout.block_len(i))).sum();
                prop_assert!(bytes <= u64::from(limits::MAX_PAYLOAD_PER_REQUEST));
            }
        }
    }

    #[test]
    fn data_message_round_trips(
        token in proptest::option::of("[a-zA-Z0-9:_-]{0,64}"),
        file in any::<u8>(),
        index in any::<u32>(),
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
        f in format(),
    ) {
        let mut bytes = Vec::new();
        encode_data(f, token.as_deref(), file, index, &payload, &mut bytes);
        let msg = decode_data(f, &bytes).unwrap();
        prop_assert_eq!(msg.client_token.as_deref(), token.as_deref());
        prop_assert_eq!(msg.file_id, u32::from(file));
        prop_assert_eq!(msg.index, index);
        prop_assert_eq!(msg.len as usize, payload.len());
        prop_assert_eq!(msg.payload.as_ref(), &payload[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), f in format()) {
        let _ = decode_get(f, &bytes);
        let _ = decode_describe(f, &bytes);
        let _ = decode_data(f, &bytes);
    }

    #[test]
    fn mutated_requests_never_panic(parts in request(), f in format(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = Vec::new();
        encode_get(f, &build(&parts), &mut bytes);
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        if let Ok(req) = decode_get(f, &bytes) {
            let layout = FileLayout::new(1 << 20, req.block_size);
            if let Ok(sel) = select_blocks(&req, &layout) {
                prop_assert!(sel.count() <= 512);
            }
        }
    }

    #[test]
    fn arbitrary_topics_never_panic(topic in "\\PC{0,80}", tail in "[a-z/+#$]{0,40}") {
        let _ = parse_stream_topic(&topic);
        let _ = parse_stream_topic(&format!("$aws/things/{tail}"));
    }
}

proptest! {
    #[test]
    fn header_matches_minicbor(
        token in proptest::option::of("[a-zA-Z0-9:_-]{0,70}"),
        file in any::<u8>(),
        index in any::<u32>(),
        len in any::<u32>(),
    ) {
        use otastream_chunker::response::{MAX_DATA_HEADER, encode_data_header, encode_data_header_minicbor};
        let mut fast = [0u8; MAX_DATA_HEADER];
        let n = encode_data_header(token.as_deref(), file, index, len, &mut fast);
        let mut reference = Vec::new();
        encode_data_header_minicbor(token.as_deref(), file, index, len, &mut reference);
        prop_assert_eq!(&fast[..n], &reference[..]);
    }
}
