//! # otastream-jobs: a sans-IO AWS IoT Jobs engine
//!
//! Pure logic for AWS IoT Jobs as the FreeRTOS OTA agent and the AWS SDKs see them: the
//! execution state machine, rollout pacing, abort criteria, timeouts, SNAPSHOT/CONTINUOUS
//! targeting, `notify`/`notify-next` decisions, the device Jobs API over MQTT bytes, the
//! iot-jobs-data HTTP operations and the `afr_ota` job document. No sockets, no clock, no
//! database: `now` (epoch **milliseconds**) comes in as a parameter, inputs are `handle_*`
//! methods and outputs are returned [`Action`]s (persist, reply, notify). The driver persists
//! `Save*` actions before publishing anything and calls [`Engine::handle_timeout`] when
//! [`Engine::poll_timeout`] says.
//!
//! # Layout
//! - [`model`]: the persisted [`Job`] record, its configs, targets and [`TargetResolver`].
//! - [`execution`]: the persisted [`JobExecution`], [`ExecutionStatus`] and legal transitions.
//! - [`request`]: device request bodies shared by MQTT and HTTP (`expectedVersion` as number
//!   or string).
//! - [`engine`]: [`Engine`], [`Action`], restore, the change funnel, timeouts.
//! - `lifecycle`: CreateJob, group membership, rollout release, abort, retry, completion, cancel,
//!   delete (methods on [`Engine`]).
//! - `notify`: pending order, `$next`, notify / notify-next decisions and payloads.
//! - `device_ops`: the device operations and their iot-jobs-data HTTP face.
//! - [`device_api`]: the MQTT Jobs API over topic suffix + payload bytes.
//! - [`rollout`]: pacing and abort arithmetic.
//! - [`control`]: DescribeJob's [`JobDescription`], CancelJobExecution, DeleteJobExecution.
//! - [`counts`]: per-job status counts and DescribeJob's [`JobProcessDetails`].
//! - [`wire`]: response shapes (MQTT and HTTP).
//! - [`afr_ota`]: the OTA job document builder.
//! - [`error`]: [`JobsError`] and its AWS codes.
//!
//! # Example
//! ```
//! use otastream_jobs::{Engine, JobSpec, NoGroups, Action};
//! let mut engine = Engine::new();
//! let spec = JobSpec {
//!     job_arn: "arn:aws:iot:us-east-1:123456789012:job/j1".into(),
//!     job_id: "j1".into(),
//!     targets: vec!["arn:aws:iot:us-east-1:123456789012:thing/dev1".into()],
//!     document: r#"{"op":"reboot"}"#.into(),
//!     ..JobSpec::default()
//! };
//! let actions = engine.handle_create_job(spec, &NoGroups, 1_000_000).unwrap();
//! assert!(actions.iter().any(|a| matches!(a, Action::NotifyNext { thing, .. } if thing == "dev1")));
//! let reply = engine.handle_device_request("dev1", "$next/get", br#"{"clientToken":":dev1"}"#, 2_000_000);
//! assert!(matches!(&reply[0], Action::Reply { topic_suffix, .. } if topic_suffix == "$next/get/accepted"));
//! ```

pub mod afr_ota;
pub mod control;
pub mod counts;
pub mod device_api;
mod device_ops;
pub mod engine;
pub mod error;
pub mod execution;
mod lifecycle;
pub mod model;
mod notify;
pub mod request;
pub mod rollout;
pub mod wire;

pub use control::JobDescription;
pub use counts::{JobProcessDetails, StatusCounts};
pub use device_api::{DeviceOp, split_jobs_topic};
pub use device_ops::NEXT;
pub use engine::{Action, Engine, Presigner, jobs_topic};
pub use error::JobsError;
pub use execution::{ExecutionStatus, JobExecution, StatusDetails};
pub use lifecycle::{MAX_DOCUMENT_CHARS, validate_spec};
pub use model::{
    AbortAction, AbortConfig, AbortCriteria, ExponentialRate, FailureType, Job, JobSpec, JobStatus,
    NoGroups, PresignedUrlConfig, RateIncreaseCriteria, RetryConfig, RetryCriteria, RolloutConfig,
    RolloutProgress, Target, TargetResolver, TargetSelection, TimeoutConfig,
};
pub use notify::PRESIGNED_URL_PLACEHOLDER;
pub use request::{DescribeRequest, StartNextRequest, UpdateRequest, parse_body};
