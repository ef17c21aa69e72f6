//! GetStream JSON decoding and block selection never panic, and selections respect the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otastream_chunker::{FileLayout, Format, request, select};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = request::decode_get(Format::Json, data) {
        let layout = FileLayout::new(24 << 20, req.block_size);
        if let Ok(blocks) = select::select_blocks(&req, &layout) {
            assert!(blocks.count() as u32 <= req.block_size.blocks_per_request_cap());
        }
    }
});
