//! DescribeStream decoding never panics, in either encoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otastream_chunker::{Format, request};

fuzz_target!(|data: &[u8]| {
    let _ = request::decode_describe(Format::Cbor, data);
    let _ = request::decode_describe(Format::Json, data);
});
