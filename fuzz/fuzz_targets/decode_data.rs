//! Device-side data-message decoding and validation never panic, in either encoding.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otastream_chunker::{BlockSize, FileLayout, Format, response};

fuzz_target!(|data: &[u8]| {
    let layout = FileLayout::new(10_000, BlockSize::new(1024).expect("valid"));
    for format in [Format::Cbor, Format::Json] {
        if let Ok(msg) = response::decode_data(format, data) {
            let _ = msg.validate(&layout);
        }
    }
});
