//! [`JobsError`]: every way a jobs request can fail, with the AWS code for each face.
//!
//! The MQTT `…/rejected` payload is built from [`JobsError::code`] in `device_api` (its one
//! place); the HTTP layer maps [`JobsError::data_plane_error`] (iot-jobs-data) or
//! [`JobsError::control_plane_error`] (iot) in its one place.

use thiserror::Error;

use crate::wire::ExecutionState;

/// A failed jobs request. Requests that fail change nothing.
#[derive(Clone, Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum JobsError {
    /// The topic is in the jobs namespace but maps to no operation.
    #[error("the topic does not map to any Jobs API: {0}")]
    InvalidTopic(String),
    /// The payload is not a JSON object.
    #[error("the payload is not valid JSON: {0}")]
    InvalidJson(String),
    /// A field is missing, of the wrong type or out of range.
    #[error("{0}")]
    InvalidRequest(String),
    /// The requested status change is not allowed from the current status.
    #[error("{message}")]
    InvalidStateTransition {
        /// Human-readable reason.
        message: String,
        /// The execution as it stands (absent for job-level transitions such as DeleteJob).
        state: Option<Box<ExecutionState>>,
    },
    /// `expectedVersion` differs from the execution's `versionNumber`.
    #[error("the expected version {expected} does not match the current version")]
    VersionMismatch {
        /// What the request expected.
        expected: u64,
        /// The execution as it stands.
        state: Box<ExecutionState>,
    },
    /// No such job or execution (or not yet released to the device).
    #[error("{0}")]
    ResourceNotFound(String),
    /// Describe of an execution that is already terminal.
    #[error("{0}")]
    TerminalStateReached(String),
    /// CreateJob with an id that exists.
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// The requester has too many requests waiting; it should retry later (the driver refuses
    /// it before the engine sees it).
    #[error("{0}")]
    RequestThrottled(String),
}

impl JobsError {
    /// The MQTT Jobs API `code` (PROTOCOL §2.6).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidTopic(_) => "InvalidTopic",
            Self::InvalidJson(_) => "InvalidJson",
            Self::InvalidRequest(_) | Self::ResourceAlreadyExists(_) => "InvalidRequest",
            Self::InvalidStateTransition { .. } => "InvalidStateTransition",
            Self::VersionMismatch { .. } => "VersionMismatch",
            Self::ResourceNotFound(_) => "ResourceNotFound",
            Self::TerminalStateReached(_) => "TerminalStateReached",
            Self::RequestThrottled(_) => "RequestThrottled",
        }
    }

    /// The execution state carried by `InvalidStateTransition` and `VersionMismatch`.
    pub fn execution_state(&self) -> Option<&ExecutionState> {
        match self {
            Self::InvalidStateTransition { state, .. } => state.as_deref(),
            Self::VersionMismatch { state, .. } => Some(state),
            _ => None,
        }
    }

    /// HTTP status and modelled error shape for the iot-jobs-data plane.
    pub fn data_plane_error(&self) -> (u16, &'static str) {
        match self {
            Self::InvalidTopic(_)
            | Self::InvalidJson(_)
            | Self::InvalidRequest(_)
            | Self::ResourceAlreadyExists(_) => (400, "InvalidRequestException"),
            Self::InvalidStateTransition { .. } | Self::VersionMismatch { .. } => {
                (409, "InvalidStateTransitionException")
            }
            Self::ResourceNotFound(_) => (404, "ResourceNotFoundException"),
            Self::TerminalStateReached(_) => (410, "TerminalStateException"),
            Self::RequestThrottled(_) => (429, "ThrottlingException"),
        }
    }

    /// HTTP status and modelled error shape for the iot control plane (CreateJob, CancelJob, …).
    pub fn control_plane_error(&self) -> (u16, &'static str) {
        match self {
            Self::ResourceAlreadyExists(_) => (409, "ResourceAlreadyExistsException"),
            Self::VersionMismatch { .. } => (409, "VersionConflictException"),
            Self::TerminalStateReached(_) | Self::InvalidStateTransition { .. } => {
                (409, "InvalidStateTransitionException")
            }
            Self::ResourceNotFound(_) => (404, "ResourceNotFoundException"),
            Self::InvalidTopic(_) | Self::InvalidJson(_) | Self::InvalidRequest(_) => {
                (400, "InvalidRequestException")
            }
            // IoT models its ThrottlingException as 400 (AWS-API.md §4).
            Self::RequestThrottled(_) => (400, "ThrottlingException"),
        }
    }
}
