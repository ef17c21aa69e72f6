//! [`Redelivery`]: answers to device requests that the publisher could not hand over yet (the
//! device's own queue toward it was full — it sends faster than it reads), kept per thing, in
//! order, and offered again until taken or [`GIVE_UP_AFTER`] (the device is gone).
//!
//! Sans-IO: `now` comes in, the publisher is a closure. While a thing has answers waiting here
//! they count against its share of the request queue ([`crate::FairQueue::hold`]), so a device
//! that does not read its answers gets refusals (delivered at once by the gateway) instead of
//! more work, and its later answers queue behind the earlier ones.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use otastream_jobs::Action;

/// How long an answer is offered again before it is dropped (its device is not connected, or
/// has not read anything for this long).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(10);

/// Undelivered answers per thing, oldest first.
#[derive(Default)]
pub struct Redelivery {
    things: HashMap<String, VecDeque<(Instant, Action)>>,
    /// The thing of each answer pushed since the last [`Redelivery::take_newly_kept`].
    newly_kept: Vec<String>,
}

/// What one [`Redelivery::retry`] pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Retried {
    /// Things whose answers were handed over, once per answer.
    pub delivered: Vec<String>,
    /// Things whose answers were dropped after [`GIVE_UP_AFTER`], once per answer.
    pub dropped: Vec<String>,
}

impl Redelivery {
    /// Whether `thing` has answers waiting (a newer answer must queue behind them).
    pub fn has(&self, thing: &str) -> bool {
        self.things.contains_key(thing)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.things.is_empty()
    }

    /// Keeps `answer` (a `Reply`) to `thing`, first offered at `now`.
    pub fn push(&mut self, thing: &str, answer: Action, now: Instant) {
        self.things
            .entry(thing.to_owned())
            .or_default()
            .push_back((now, answer));
        self.newly_kept.push(thing.to_owned());
    }

    /// The thing of each answer kept since the last call (to count against its share).
    pub fn take_newly_kept(&mut self) -> Vec<String> {
        std::mem::take(&mut self.newly_kept)
    }

    /// Offers every waiting answer again, each thing's in order (a thing's first refusal ends
    /// its pass); drops those first offered [`GIVE_UP_AFTER`] before `now`.
    pub fn retry(&mut self, now: Instant, mut publish: impl FnMut(&Action) -> bool) -> Retried {
        let mut retried = Retried::default();
        self.things.retain(|thing, answers| {
            while let Some((since, answer)) = answers.front() {
                if publish(answer) {
                    retried.delivered.push(thing.clone());
                } else if now.duration_since(*since) >= GIVE_UP_AFTER {
                    tracing::warn!(thing, topic = ?answer.topic(), "jobs answer dropped: the device took nothing for {GIVE_UP_AFTER:?}");
                    retried.dropped.push(thing.clone());
                } else {
                    break;
                }
                answers.pop_front();
            }
            !answers.is_empty()
        });
        retried
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(thing: &str, n: u8) -> Action {
        Action::Reply {
            thing: thing.into(),
            topic_suffix: "get/accepted".into(),
            payload: vec![n],
        }
    }

    fn payload(a: &Action) -> u8 {
        match a {
            Action::Reply { payload, .. } => payload[0],
            _ => unreachable!("only replies are kept"),
        }
    }

    #[test]
    fn answers_are_offered_again_in_order_until_taken() {
        let t0 = Instant::now();
        let mut r = Redelivery::default();
        for n in 0..3 {
            r.push("a", reply("a", n), t0);
        }
        r.push("b", reply("b", 9), t0);
        // The device takes one answer, then its queue is full again; b takes nothing.
        let mut room = 1;
        let mut seen = Vec::new();
        let pass = r.retry(t0, |a| {
            seen.push(payload(a));
            let a_has_room = matches!(a, Action::Reply { thing, .. } if thing == "a") && room > 0;
            room -= usize::from(a_has_room);
            a_has_room
        });
        assert_eq!(pass.delivered, ["a"]);
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 9], "a's pass stops at its first refusal");
        let mut seen = Vec::new();
        let pass = r.retry(t0, |a| {
            seen.push(payload(a));
            true
        });
        seen.sort_unstable();
        assert_eq!(seen, [1, 2, 9]);
        assert_eq!(pass.delivered.len(), 3);
        assert!(r.is_empty() && !r.has("a"));
    }

    #[test]
    fn an_answer_nobody_takes_is_dropped_after_the_give_up_time() {
        let t0 = Instant::now();
        let mut r = Redelivery::default();
        r.push("gone", reply("gone", 1), t0);
        assert_eq!(
            r.retry(t0 + GIVE_UP_AFTER / 2, |_| false),
            Retried::default()
        );
        assert!(r.has("gone"));
        let pass = r.retry(t0 + GIVE_UP_AFTER, |_| false);
        assert_eq!(pass.dropped, ["gone"]);
        assert!(r.is_empty());
    }
}
