//! otastream: self-hosted, AWS-IoT-compatible firmware OTA service.
fn main() {}
