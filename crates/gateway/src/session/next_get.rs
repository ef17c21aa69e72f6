//! Why a `notify-next` is sometimes withheld: the AWS OTA agent restarts its download whenever
//! a job document reaches it mid-transfer (PROTOCOL.md §2.8, A3), and a job created while the
//! agent's `$next/get` is on its way would otherwise reach it twice — once as `notify-next`, once
//! as the `$next/get` answer. The jobs engine publishes in the order it applies requests, and a
//! session receives those publications in that order, so a `notify-next` that arrives while one
//! of the device's own `$next/get` requests is still unanswered was produced before that request
//! was applied: its answer will carry the same next job, or a newer state. The notification is
//! then dropped and the answer alone tells the device.
//!
//! A request that is never answered (the jobs queue was full and dropped it; the agent asks
//! again) stops counting after [`UNANSWERED_AFTER`], so notifications are never withheld for
//! long.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// After this long without an answer, a `$next/get` is taken as dropped.
pub const UNANSWERED_AFTER: Duration = Duration::from_secs(10);

/// Most unanswered requests remembered per connection: a device that floods `$next/get` while
/// the jobs queue drops requests costs at most this many entries.
pub const MAX_PENDING: usize = 16;

/// The device's `$next/get` requests not answered yet, oldest first (when each was sent).
#[derive(Debug, Default)]
pub struct PendingNextGets(VecDeque<Instant>);

impl PendingNextGets {
    /// The topic suffix (after `$aws/things/<thing>/`) of the request.
    pub const REQUEST: &'static str = "jobs/$next/get";

    /// The device sent a `$next/get` at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.forget_unanswered(now);
        if self.0.len() == MAX_PENDING {
            self.0.pop_front();
        }
        self.0.push_back(now);
    }

    /// How many requests wait for their answer.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no request waits for its answer.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An answer (`accepted` or `rejected`) to the oldest request went out.
    pub fn answered(&mut self) {
        self.0.pop_front();
    }

    /// Whether a `notify-next` arriving at `now` is to be withheld: some request is still
    /// waiting for its answer. Forgets requests older than [`UNANSWERED_AFTER`].
    pub fn withhold_notify_next(&mut self, now: Instant) -> bool {
        self.forget_unanswered(now);
        !self.0.is_empty()
    }

    fn forget_unanswered(&mut self, now: Instant) {
        while self
            .0
            .front()
            .is_some_and(|sent| now.saturating_duration_since(*sent) >= UNANSWERED_AFTER)
        {
            self.0.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_unanswered_requests_is_remembered_only_up_to_the_cap() {
        let now = Instant::now();
        let mut pending = PendingNextGets::default();
        for _ in 0..10_000 {
            pending.sent(now);
        }
        assert_eq!(pending.len(), MAX_PENDING);
        // Requests older than the window are forgotten when the next one arrives.
        pending.sent(now + UNANSWERED_AFTER);
        assert_eq!(pending.len(), 1);
        pending.answered();
        assert!(pending.is_empty() && !pending.withhold_notify_next(now + UNANSWERED_AFTER));
    }
}
