//! What a thing sees — its pending executions and its *next* one — and the `notify` /
//! `notify-next` decisions.
//!
//! Order of pending executions (AWS): IN_PROGRESS before QUEUED, then oldest `queuedAt`, then
//! job id. `notify-next` goes out only when the identity (job id, execution number) of the next
//! execution changes — never for detail-only changes such as QUEUED→IN_PROGRESS or new
//! statusDetails, which would make the AWS OTA agent restart its download (PROTOCOL §2.8).
//! `notify` goes out when the set of pending job ids changes.

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde_json::value::RawValue;

use crate::engine::{Action, Engine, ThingView};
use crate::execution::{ExecutionStatus, JobExecution};
use crate::model::DEFAULT_PRESIGNED_EXPIRY_SECS;
use crate::wire::{
    JobExecutionSummary, MqttExecution, NotifyJobs, NotifyMessage, NotifyNextMessage, secs, to_json,
};

/// The presigned-URL placeholder AWS substitutes when a device fetches a document.
pub const PRESIGNED_URL_PLACEHOLDER: &str = "${aws:iot:s3-presigned-url:";

fn pending_order(exec: &JobExecution) -> (bool, u64, &str) {
    (
        exec.status != ExecutionStatus::InProgress,
        exec.queued_at,
        &exec.job_id,
    )
}

impl Engine {
    /// The thing's pending (released, non-terminal) executions, next first.
    pub fn pending_executions(&self, thing: &str) -> Vec<&JobExecution> {
        let mut pending: Vec<&JobExecution> = self
            .things
            .get(thing)
            .map(|m| m.values().filter(|e| e.is_pending()).collect())
            .unwrap_or_default();
        pending.sort_by(|a, b| pending_order(a).cmp(&pending_order(b)));
        pending
    }

    /// The thing's next pending execution (what `$next` names).
    pub fn next_execution(&self, thing: &str) -> Option<&JobExecution> {
        self.things
            .get(thing)?
            .values()
            .filter(|e| e.is_pending())
            .min_by(|a, b| pending_order(a).cmp(&pending_order(b)))
    }

    pub(crate) fn thing_view(&self, thing: &str) -> ThingView {
        ThingView {
            next: self
                .next_execution(thing)
                .map(|e| (e.job_id.clone(), e.execution_number)),
            pending: self
                .pending_executions(thing)
                .into_iter()
                .map(|e| e.job_id.clone())
                .collect::<BTreeSet<_>>(),
        }
    }

    /// The job document as devices get it: the stored text with presigned-URL placeholders
    /// substituted (when a presigner is installed).
    pub fn rendered_document(&self, job_id: &str, now: u64) -> Option<Cow<'_, str>> {
        let job = &self.jobs.get(job_id)?.job;
        let text = job.spec.document.as_str();
        let Some(presigner) = &self.presigner else {
            return Some(Cow::Borrowed(text));
        };
        if !text.contains(PRESIGNED_URL_PLACEHOLDER) {
            return Some(Cow::Borrowed(text));
        }
        let expires = job
            .spec
            .presigned_url_config
            .as_ref()
            .and_then(|c| c.expires_in_sec)
            .unwrap_or(DEFAULT_PRESIGNED_EXPIRY_SECS);
        let mut out = String::with_capacity(text.len() + 512);
        let mut rest = text;
        while let Some(start) = rest.find(PRESIGNED_URL_PLACEHOLDER) {
            let url_start = start + PRESIGNED_URL_PLACEHOLDER.len();
            let Some(len) = rest[url_start..].find('}') else {
                break;
            };
            let url = &rest[url_start..url_start + len];
            out.push_str(&rest[..start]);
            match presigner.presign(url, expires, now) {
                // The URL lands inside a JSON string: refuse anything that would need escaping.
                Some(signed)
                    if !signed.contains(['"', '\\']) && !signed.contains(char::is_control) =>
                {
                    out.push_str(&signed);
                }
                _ => out.push_str(&rest[start..=url_start + len]),
            }
            rest = &rest[url_start + len + 1..];
        }
        out.push_str(rest);
        Some(Cow::Owned(out))
    }

    /// The `notify-next` payload for `thing` now.
    pub fn notify_next_payload(&self, thing: &str, now: u64) -> Vec<u8> {
        let next = self.next_execution(thing);
        let document = next.and_then(|e| self.rendered_document(&e.job_id, now));
        let raw = document
            .as_deref()
            .and_then(|d| serde_json::from_str::<&RawValue>(d).ok());
        to_json(&NotifyNextMessage {
            timestamp: secs(now),
            execution: next.map(|e| MqttExecution::new(e, raw)),
        })
    }

    /// The `notify` payload for `thing` now.
    pub fn notify_payload(&self, thing: &str, now: u64) -> Vec<u8> {
        let mut jobs = NotifyJobs {
            queued: Vec::new(),
            in_progress: Vec::new(),
        };
        for exec in self.pending_executions(thing) {
            let list = match exec.status {
                ExecutionStatus::InProgress => &mut jobs.in_progress,
                _ => &mut jobs.queued,
            };
            list.push(JobExecutionSummary::from(exec));
        }
        to_json(&NotifyMessage {
            jobs,
            timestamp: secs(now),
        })
    }

    /// Appends `Notify` / `NotifyNext` for `thing` if what it sees changed since `before`.
    pub(crate) fn notifications(
        &self,
        thing: &str,
        before: &ThingView,
        now: u64,
        out: &mut Vec<Action>,
    ) {
        let after = self.thing_view(thing);
        if after.pending != before.pending {
            out.push(Action::Notify {
                thing: thing.to_owned(),
                payload: self.notify_payload(thing, now),
            });
        }
        if after.next != before.next {
            out.push(Action::NotifyNext {
                thing: thing.to_owned(),
                payload: self.notify_next_payload(thing, now),
            });
        }
    }
}
