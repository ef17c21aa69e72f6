//! [`FairQueue`]: the device requests waiting for the engine — one bounded FIFO per thing, taken
//! round-robin — and the arrival numbers that keep the control plane behind them.
//!
//! Sans-IO: no locks, threads or clocks. A thing may have at most `per_thing` requests in the
//! queue, in the batch being applied, or applied with their answer still undelivered
//! ([`FairQueue::hold`]); past that (or past `total` for all things together)
//! [`FairQueue::push`] refuses, so one device pipelining thousands of requests can neither
//! crowd out another device's requests nor grow the queue. [`FairQueue::take_batch`] takes one
//! request per thing per turn, so every thing with a request waiting gets into the next batch.
//!
//! Every accepted request gets an arrival number. Batches apply requests out of global arrival
//! order (round-robin), so "everything that arrived before" is not a count: [`FairQueue::outstanding`]
//! keeps the numbers not yet applied, and [`FairQueue::applied_through`] says whether every
//! request up to a number is done.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

/// One device request waiting for (or in) a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// The requesting thing.
    pub thing: String,
    /// The topic after `$aws/things/<thing>/jobs/`, e.g. `$next/get`.
    pub topic_suffix: String,
    /// The raw payload.
    pub payload: Bytes,
    /// Arrival number (1, 2, …), in the order requests were accepted.
    pub arrival: u64,
}

/// Why [`FairQueue::push`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// This thing already has its share of requests queued or being applied.
    Thing,
    /// All things together have the whole queue's capacity waiting.
    Queue,
}

/// One thing's requests.
#[derive(Debug, Default)]
struct ThingQueue {
    waiting: VecDeque<DeviceRequest>,
    /// Taken into a batch and not yet reported applied.
    in_batch: usize,
    /// Applied, their answers not yet handed over ([`FairQueue::hold`]).
    held: usize,
}

impl ThingQueue {
    fn occupied(&self) -> usize {
        self.waiting.len() + self.in_batch + self.held
    }
}

/// Per-thing bounded FIFOs with round-robin batching.
#[derive(Debug)]
pub struct FairQueue {
    things: HashMap<String, ThingQueue>,
    /// Things with requests waiting, in the order of their next turn.
    turns: VecDeque<String>,
    /// Arrival numbers accepted and not yet applied.
    outstanding: BTreeSet<u64>,
    /// The last arrival number given out (0: none yet).
    last_arrival: u64,
    /// Requests waiting (not counting those in a batch).
    waiting: usize,
    per_thing: usize,
    total: usize,
}

impl FairQueue {
    /// A queue holding at most `per_thing` requests of one thing (waiting or being applied) and
    /// `total` requests of all things together. Both are at least 1.
    pub fn new(per_thing: usize, total: usize) -> Self {
        Self {
            things: HashMap::new(),
            turns: VecDeque::new(),
            outstanding: BTreeSet::new(),
            last_arrival: 0,
            waiting: 0,
            per_thing: per_thing.max(1),
            total: total.max(1),
        }
    }

    /// Queues one request of `thing`; its arrival number, or why it was refused (nothing
    /// changes then).
    pub fn push(&mut self, thing: &str, topic_suffix: &str, payload: Bytes) -> Result<u64, Full> {
        if self.outstanding.len() >= self.total {
            return Err(Full::Queue);
        }
        let queue = self.things.entry(thing.to_owned()).or_default();
        if queue.occupied() >= self.per_thing {
            return Err(Full::Thing);
        }
        if queue.waiting.is_empty() {
            self.turns.push_back(thing.to_owned());
        }
        self.last_arrival += 1;
        queue.waiting.push_back(DeviceRequest {
            thing: thing.to_owned(),
            topic_suffix: topic_suffix.to_owned(),
            payload,
            arrival: self.last_arrival,
        });
        self.outstanding.insert(self.last_arrival);
        self.waiting += 1;
        Ok(self.last_arrival)
    }

    /// Whether no request is waiting for a batch.
    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    /// Up to `max` waiting requests, one per thing per turn (each thing's own requests stay in
    /// their order). They count against their things until [`FairQueue::applied`].
    pub fn take_batch(&mut self, max: usize) -> Vec<DeviceRequest> {
        let mut batch = Vec::with_capacity(max.min(self.waiting));
        while batch.len() < max {
            let Some(thing) = self.turns.pop_front() else {
                break;
            };
            let Some(queue) = self.things.get_mut(&thing) else {
                continue;
            };
            let Some(request) = queue.waiting.pop_front() else {
                continue;
            };
            queue.in_batch += 1;
            self.waiting -= 1;
            batch.push(request);
            if !queue.waiting.is_empty() {
                self.turns.push_back(thing);
            }
        }
        batch
    }

    /// Reports `batch` (taken with [`FairQueue::take_batch`]) applied: its arrival numbers are
    /// done and its things may queue again.
    pub fn applied(&mut self, batch: &[DeviceRequest]) {
        for request in batch {
            self.outstanding.remove(&request.arrival);
            if let Some(queue) = self.things.get_mut(&request.thing) {
                queue.in_batch = queue.in_batch.saturating_sub(1);
            }
            self.forget_if_idle(&request.thing);
        }
    }

    /// One answer to `thing` is waiting to be handed over: it keeps occupying one of the
    /// thing's places until [`FairQueue::release`].
    pub fn hold(&mut self, thing: &str) {
        self.things.entry(thing.to_owned()).or_default().held += 1;
    }

    /// One held answer of `thing` was handed over (or given up on).
    pub fn release(&mut self, thing: &str) {
        if let Some(queue) = self.things.get_mut(thing) {
            queue.held = queue.held.saturating_sub(1);
        }
        self.forget_if_idle(thing);
    }

    fn forget_if_idle(&mut self, thing: &str) {
        if self.things.get(thing).is_some_and(|q| q.occupied() == 0) {
            self.things.remove(thing);
        }
    }

    /// The last arrival number given out (0 before the first request).
    pub fn last_arrival(&self) -> u64 {
        self.last_arrival
    }

    /// Whether every request with an arrival number up to `arrival` has been applied.
    pub fn applied_through(&self, arrival: u64) -> bool {
        self.outstanding
            .first()
            .is_none_or(|&first| first > arrival)
    }

    /// Requests accepted and not yet applied (waiting or in a batch).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Things with requests waiting or being applied (their bookkeeping is dropped when both
    /// are done, so this is bounded by the busy things, not by every thing ever seen).
    pub fn busy_things(&self) -> usize {
        self.things.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(q: &mut FairQueue, thing: &str) -> Result<u64, Full> {
        q.push(thing, "get", Bytes::new())
    }

    fn things(batch: &[DeviceRequest]) -> Vec<&str> {
        batch.iter().map(|r| r.thing.as_str()).collect()
    }

    #[test]
    fn a_flooding_thing_is_refused_past_its_share_and_others_still_get_in() {
        let mut q = FairQueue::new(4, 100);
        for _ in 0..4 {
            push(&mut q, "flood").expect("within its share");
        }
        for _ in 0..1000 {
            assert_eq!(push(&mut q, "flood"), Err(Full::Thing));
        }
        push(&mut q, "quiet").expect("another thing is not affected");
        assert_eq!(q.outstanding(), 5);
    }

    #[test]
    fn batches_take_one_request_per_thing_per_turn_keeping_each_things_order() {
        let mut q = FairQueue::new(10, 100);
        for i in 0..5 {
            q.push("a", &format!("a{i}/get"), Bytes::new()).expect("a");
        }
        q.push("b", "b0/get", Bytes::new()).expect("b");
        q.push("c", "c0/get", Bytes::new()).expect("c");
        let first = q.take_batch(4);
        assert_eq!(things(&first), ["a", "b", "c", "a"]);
        let rest = q.take_batch(100);
        assert_eq!(things(&rest), ["a", "a", "a"]);
        let a: Vec<&str> = first
            .iter()
            .chain(&rest)
            .filter(|r| r.thing == "a")
            .map(|r| r.topic_suffix.as_str())
            .collect();
        assert_eq!(a, ["a0/get", "a1/get", "a2/get", "a3/get", "a4/get"]);
        assert!(q.is_empty());
    }

    #[test]
    fn requests_in_a_batch_count_against_their_thing_until_applied() {
        let mut q = FairQueue::new(2, 100);
        push(&mut q, "a").expect("1");
        push(&mut q, "a").expect("2");
        let batch = q.take_batch(10);
        assert_eq!(
            push(&mut q, "a"),
            Err(Full::Thing),
            "two still being applied"
        );
        q.applied(&batch);
        push(&mut q, "a").expect("room again");
        assert_eq!(q.busy_things(), 1);
        let batch = q.take_batch(10);
        q.applied(&batch);
        assert_eq!(
            q.busy_things(),
            0,
            "an idle thing leaves no bookkeeping behind"
        );
    }

    #[test]
    fn answers_not_yet_handed_over_occupy_their_things_places() {
        let mut q = FairQueue::new(2, 100);
        push(&mut q, "a").expect("1");
        push(&mut q, "a").expect("2");
        let batch = q.take_batch(10);
        q.hold("a");
        q.hold("a");
        q.applied(&batch);
        assert!(q.applied_through(q.last_arrival()), "applied is applied");
        assert_eq!(push(&mut q, "a"), Err(Full::Thing), "two answers wait");
        q.release("a");
        push(&mut q, "a").expect("one place again");
        q.release("a");
        let batch = q.take_batch(10);
        q.applied(&batch);
        assert_eq!(q.busy_things(), 0);
    }

    #[test]
    fn the_whole_queue_is_bounded_too() {
        let mut q = FairQueue::new(10, 3);
        for thing in ["a", "b", "c"] {
            push(&mut q, thing).expect("room");
        }
        assert_eq!(push(&mut q, "d"), Err(Full::Queue));
        let batch = q.take_batch(1);
        assert_eq!(push(&mut q, "d"), Err(Full::Queue), "taken is not applied");
        q.applied(&batch);
        push(&mut q, "d").expect("room after an apply");
    }

    /// Round-robin applies out of arrival order, so "applied through n" must wait for the
    /// oldest outstanding request, not for a count.
    #[test]
    fn applied_through_waits_for_every_earlier_arrival_not_for_a_count() {
        let mut q = FairQueue::new(10, 100);
        let a1 = push(&mut q, "a").expect("a1");
        let a2 = push(&mut q, "a").expect("a2");
        let b1 = push(&mut q, "b").expect("b1");
        assert_eq!((a1, a2, b1), (1, 2, 3));
        let first = q.take_batch(2); // a1, b1
        assert_eq!(things(&first), ["a", "b"]);
        q.applied(&first);
        assert!(q.applied_through(a1));
        assert!(
            !q.applied_through(b1),
            "two requests applied, yet a2 (arrived before b1) is not"
        );
        let second = q.take_batch(2);
        q.applied(&second);
        assert!(q.applied_through(q.last_arrival()));
        assert!(FairQueue::new(1, 1).applied_through(0));
    }
}
