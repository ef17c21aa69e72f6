//! Integration tests of the jobs engine, driven with a simulated clock (no sockets, no sleeps).

/// Shared builders, a record store fed by `Save*` actions and reply helpers.
mod support;

/// Abort criteria, retries and timeouts.
mod abort_timeout;
/// The afr_ota document builder.
mod afr_ota;
/// Control-plane views and execution operations.
mod control;
/// The iot-jobs-data HTTP operations.
mod data_plane;
/// The MQTT device API, byte-checked against PROTOCOL §2.4 captures.
mod device_api;
/// notify / notify-next decisions.
mod notify;
/// Random event sequences (proptest).
mod props;
/// Rollout pacing (constant and exponential).
mod rollout;
/// Every legal and illegal execution transition, expectedVersion, statusDetails, restore.
mod state_machine;
/// SNAPSHOT / CONTINUOUS targets, group membership, cancel and delete.
mod targets;
