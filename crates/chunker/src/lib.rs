//! # otastream-chunker
//!
//! The sans-IO core of the AWS IoT *MQTT-based file delivery* ("Streams") protocol, the part a
//! server and a device both need: block math, request bitmaps, reserved topics, and the
//! GetStream / DescribeStream wire codecs in CBOR and JSON. It opens no socket, reads no clock and
//! touches no file: bytes in, decoded requests and encoded replies out. It is `#![no_std]` with
//! `alloc` (the `std` feature only forwards to the codec crates), and has no `unsafe`.
//!
//! # Layout
//! - [`limits`]: the AWS quotas the protocol enforces (block size, offset, bitmap, payload cap).
//! - [`error`]: [`RejectCode`] (one variant per documented wire code) and [`Reject`].
//! - [`block`]: [`BlockSize`], [`FileId`], [`BlockIndex`] with checked constructors, and
//!   [`FileLayout`] (block count, block ranges, last-block length for a file size).
//! - [`topic`]: parse and format `$aws/things/{thing}/streams/{stream}/{op}/{cbor|json}`.
//! - [`request`]: decode (and, for device simulators, encode) GetStream and DescribeStream requests.
//! - [`select`]: which blocks one GetStream request asks for — the bitmap rule, allocation-free.
//! - [`response`]: data messages as a small header plus a *borrowed* payload, descriptions,
//!   rejections; and the device-side data-message decoder.
//! - `json` (private): the JSON forms, through `serde_json` without std.
//!
//! # The flow on a server
//! ```
//! use otastream_chunker::{request, response, select, topic, FileLayout};
//! let image = vec![7u8; 10_000];
//! // An AWS OTA agent asks for blocks 0..=2 of file 0 in 4 KiB blocks, one block per request.
//! let payload = hex_literal(&"a6616363726479616600616c191000616f0061624107616e01");
//! let t = topic::parse_stream_topic("$aws/things/dev1/streams/fw/get/cbor").unwrap();
//! let req = request::decode_get(t.format, &payload).unwrap();
//! let layout = FileLayout::new(image.len() as u64, req.block_size);
//! let blocks: Vec<u32> = select::select_blocks(&req, &layout).unwrap().collect();
//! assert_eq!(blocks, [0]);
//! let mut header = [0u8; response::MAX_DATA_HEADER];
//! let block = &image[layout.block_range(0)];
//! let n = response::encode_data_header(req.client_token, req.file_id.get(), 0, block.len() as u32, &mut header);
//! // A server now writes `header[..n]` and then `block` as one MQTT PUBLISH payload.
//! assert_eq!(&header[..n], b"\xa5\x61c\x63rdy\x61f\x00\x61i\x00\x61l\x19\x10\x00\x61p\x59\x10\x00");
//! # fn hex_literal(s: &str) -> Vec<u8> { (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect() }
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod block;
mod cbor;
pub mod error;
mod json;
pub mod limits;
pub mod request;
pub mod response;
pub mod select;
pub mod topic;

pub use block::{BlockIndex, BlockSize, FileId, FileLayout};
pub use error::{Reject, RejectCode};
pub use topic::Format;
