//! Topic parsing never panics and formats back to the same topic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use otastream_chunker::topic;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = topic::parse_stream_topic(s) {
            assert_eq!(t.to_string(), s);
        }
        let _ = topic::thing_of_reserved_topic(s);
    }
});
