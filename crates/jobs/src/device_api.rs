//! The MQTT device Jobs API over bytes: `$aws/things/<thing>/jobs/<suffix>` requests in,
//! `…/accepted` or `…/rejected` replies out (PROTOCOL §2).
//!
//! [`Engine::handle_device_request`] takes the topic suffix after `$aws/things/<thing>/jobs/`
//! (`get`, `start-next`, `<jobId>/get`, `$next/get`, `<jobId>/update`) and the raw payload
//! (empty, `{}` or JSON; the `clientToken` is echoed byte for byte). This module is the one
//! place where a [`JobsError`] becomes a `rejected` payload.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::device_ops::NEXT;
use crate::engine::{Action, Effects, Engine};
use crate::error::JobsError;
use crate::model::is_valid_job_id;
use crate::request::{DescribeRequest, StartNextRequest, UpdateRequest, parse_body};
use crate::wire::{
    ExecutionReply, ExecutionState, MqttExecution, PendingReply, RejectedReply, UpdateReply, secs,
    to_json,
};

/// Longest client token AWS accepts (chars).
pub const MAX_CLIENT_TOKEN_CHARS: usize = 64;

/// Splits `$aws/things/<thing>/jobs/<suffix>` into `(thing, suffix)`; `None` for any other
/// topic.
pub fn split_jobs_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, suffix) = rest.split_once("/jobs/")?;
    (!thing.is_empty() && !thing.contains('/') && !suffix.is_empty()).then_some((thing, suffix))
}

/// A device request, decoded from the topic suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp<'a> {
    /// `get`: GetPendingJobExecutions.
    GetPending,
    /// `start-next`: StartNextPendingJobExecution.
    StartNext,
    /// `<jobId>/get` or `$next/get`: DescribeJobExecution.
    Describe(&'a str),
    /// `<jobId>/update`: UpdateJobExecution.
    Update(&'a str),
    /// In the jobs namespace but not an operation (answered with `InvalidTopic`).
    Invalid,
}

impl<'a> DeviceOp<'a> {
    /// Decodes a topic suffix; `None` for topics that are not requests and get no answer
    /// (`…/accepted`, `…/rejected`, `notify`, `notify-next`).
    pub fn parse(suffix: &'a str) -> Option<Self> {
        if matches!(suffix, "notify" | "notify-next")
            || suffix.ends_with("/accepted")
            || suffix.ends_with("/rejected")
        {
            return None;
        }
        let parts: Vec<&str> = suffix.split('/').collect();
        Some(match parts.as_slice() {
            ["get"] => Self::GetPending,
            ["start-next"] => Self::StartNext,
            [job, "get"] if *job == NEXT || is_valid_job_id(job) => Self::Describe(job),
            [job, "update"] if is_valid_job_id(job) => Self::Update(job),
            _ => Self::Invalid,
        })
    }
}

/// The one field every request may carry, kept as raw JSON text.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, rename = "clientToken")]
    client_token: Option<&'a RawValue>,
}

/// Extracts and checks the client token. `Err` carries no token (it could not be trusted).
fn client_token(payload: &[u8]) -> Result<Option<&RawValue>, JobsError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let raw: &RawValue =
        serde_json::from_slice(payload).map_err(|e| JobsError::InvalidJson(e.to_string()))?;
    if !raw.get().starts_with('{') {
        return Err(JobsError::InvalidJson(
            "the payload must be a JSON object".into(),
        ));
    }
    let envelope: Envelope<'_> =
        serde_json::from_str(raw.get()).map_err(|e| JobsError::InvalidRequest(e.to_string()))?;
    let Some(raw) = envelope.client_token else {
        return Ok(None);
    };
    match serde_json::from_str::<String>(raw.get()) {
        Ok(token) if token.chars().count() <= MAX_CLIENT_TOKEN_CHARS => Ok(Some(raw)),
        Ok(_) => Err(JobsError::InvalidRequest(format!(
            "clientToken is longer than {MAX_CLIENT_TOKEN_CHARS} characters"
        ))),
        Err(_) => Err(JobsError::InvalidRequest(
            "clientToken must be a string".into(),
        )),
    }
}

/// The `…/rejected` payload for `error` — the one place errors become MQTT bytes.
pub fn rejected_payload(error: &JobsError, client_token: Option<&RawValue>, now: u64) -> Vec<u8> {
    to_json(&RejectedReply {
        code: error.code(),
        message: error.to_string(),
        client_token,
        timestamp: secs(now),
        execution_state: error.execution_state(),
    })
}

/// The `…/rejected` answer refusing a device request without running it (the driver's
/// throttle): `(reply topic suffix, payload)`, the request's client token echoed when it carried
/// a valid one. `None` when `topic_suffix` is not a request (nothing is answered then).
pub fn refuse_device_request(
    topic_suffix: &str,
    payload: &[u8],
    error: &JobsError,
    now: u64,
) -> Option<(String, Vec<u8>)> {
    DeviceOp::parse(topic_suffix)?;
    let token = client_token(payload).ok().flatten();
    Some((
        format!("{topic_suffix}/rejected"),
        rejected_payload(error, token, now),
    ))
}

impl Engine {
    /// Answers one device request published to `$aws/things/<thing>/jobs/<topic_suffix>`.
    /// Returns persistence actions, then exactly one `Reply` (unless the topic is not a
    /// request), then any notifications.
    pub fn handle_device_request(
        &mut self,
        thing: &str,
        topic_suffix: &str,
        payload: &[u8],
        now: u64,
    ) -> Vec<Action> {
        let Some(op) = DeviceOp::parse(topic_suffix) else {
            return Vec::new();
        };
        let mut fx = Effects::default();
        let (accepted, reply) = match client_token(payload) {
            Err(e) => (false, rejected_payload(&e, None, now)),
            Ok(token) => match self.answer(thing, op, payload, token, now, &mut fx) {
                Ok(bytes) => (true, bytes),
                Err(e) => (false, rejected_payload(&e, token, now)),
            },
        };
        let outcome = if accepted { "accepted" } else { "rejected" };
        fx.replies.push(Action::Reply {
            thing: thing.to_owned(),
            topic_suffix: format!("{topic_suffix}/{outcome}"),
            payload: reply,
        });
        self.finish(fx, now)
    }

    /// Runs `op` and renders its accepted payload.
    fn answer(
        &mut self,
        thing: &str,
        op: DeviceOp<'_>,
        payload: &[u8],
        token: Option<&RawValue>,
        now: u64,
        fx: &mut Effects,
    ) -> Result<Vec<u8>, JobsError> {
        match op {
            DeviceOp::Invalid => Err(JobsError::InvalidTopic(
                "expected get, start-next, <jobId>/get or <jobId>/update".into(),
            )),
            DeviceOp::GetPending => {
                let pending = self.get_pending_job_executions(thing);
                Ok(to_json(&PendingReply {
                    in_progress_jobs: pending.in_progress_jobs,
                    queued_jobs: pending.queued_jobs,
                    timestamp: secs(now),
                    client_token: token,
                }))
            }
            DeviceOp::StartNext => {
                let req: StartNextRequest = parse_body(payload)?;
                let job_id = self.start_next(thing, &req, now, fx)?;
                Ok(self.execution_reply(thing, job_id.as_deref(), true, token, now))
            }
            DeviceOp::Describe(job_id) => {
                let req: DescribeRequest = parse_body(payload)?;
                let found = self
                    .describe_target(thing, job_id, &req)?
                    .map(|e| e.job_id.clone());
                let include = req.include_job_document.unwrap_or(true);
                Ok(self.execution_reply(thing, found.as_deref(), include, token, now))
            }
            DeviceOp::Update(job_id) => {
                let req: UpdateRequest = parse_body(payload)?;
                self.update(thing, job_id, &req, now, fx)?;
                let exec = self.execution(job_id, thing);
                let document = (req.include_job_document == Some(true))
                    .then(|| self.rendered_document(job_id, now))
                    .flatten();
                Ok(to_json(&UpdateReply {
                    execution_state: exec
                        .filter(|_| req.include_job_execution_state == Some(true))
                        .map(ExecutionState::from),
                    job_document: raw_document(document.as_deref()),
                    timestamp: secs(now),
                    client_token: token,
                }))
            }
        }
    }

    /// `{"clientToken":…,"timestamp":…,"execution":{…}}` for `job_id` (no `execution` if
    /// `None`).
    fn execution_reply(
        &self,
        thing: &str,
        job_id: Option<&str>,
        include_document: bool,
        token: Option<&RawValue>,
        now: u64,
    ) -> Vec<u8> {
        let exec = job_id.and_then(|id| self.execution(id, thing));
        let document = exec
            .filter(|_| include_document)
            .and_then(|e| self.rendered_document(&e.job_id, now));
        to_json(&ExecutionReply {
            client_token: token,
            timestamp: secs(now),
            execution: exec.map(|e| MqttExecution::new(e, raw_document(document.as_deref()))),
        })
    }
}

/// A stored document as raw JSON (it was validated as an object at creation).
fn raw_document(document: Option<&str>) -> Option<&RawValue> {
    document.and_then(|d| serde_json::from_str::<&RawValue>(d).ok())
}
