//! The sans-IO agent against a simulated endpoint (`sim`): whole OTA jobs over MQTT and HTTP,
//! faults, and byte-compatibility with vectors recorded from the real AWS agent.

mod fixtures;
mod http;
mod mqtt;
mod robustness;
mod sim;
#[path = "../support/mod.rs"]
mod support;
