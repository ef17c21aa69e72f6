//! Issue 16: one device pipelining `jobs/get` far faster than the engine applies must not cost
//! another device a single request, and must itself get an answer for every request (accepted
//! once applied, or `RequestThrottled` at once), never silence.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::redelivery::Redelivery;

const FLOOD: &str = "flood";
const QUIET: &str = "quiet";

/// Counts answers per thing; keeps the quiet thing's in order. The flooding device takes an
/// answer only while it has room ([`Tally::flood_room`]), as its connection's bounded queue.
struct Tally {
    flood_answers: AtomicUsize,
    flood_room: AtomicUsize,
    quiet: Mutex<Vec<(String, serde_json::Value)>>,
}

impl Tally {
    /// A flooding device with room for `room` answers at a time (reads them all at once).
    fn new(room: usize) -> Self {
        Self {
            flood_answers: AtomicUsize::new(0),
            flood_room: AtomicUsize::new(room),
            quiet: Mutex::new(Vec::new()),
        }
    }

    /// The flooding device read every answer handed to it.
    fn flood_reads(&self, room: usize) {
        self.flood_room.store(room, Ordering::Relaxed);
    }
}

impl Publisher for Tally {
    fn publish(&self, action: &Action) -> bool {
        let Action::Reply {
            thing,
            topic_suffix,
            payload,
        } = action
        else {
            return true;
        };
        if thing == FLOOD {
            let took = self
                .flood_room
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |room| {
                    room.checked_sub(1)
                })
                .is_ok();
            if took {
                self.flood_answers.fetch_add(1, Ordering::Relaxed);
            }
            took
        } else {
            let body = serde_json::from_slice(payload).unwrap_or_default();
            self.quiet
                .lock()
                .expect("quiet")
                .push((topic_suffix.clone(), body));
            true
        }
    }
}

fn quiet_get(n: usize) -> Bytes {
    Bytes::from(format!(r#"{{"clientToken":"q-{n}"}}"#))
}

/// Asserts every quiet request was answered accepted, in order, with its own token.
fn assert_all_quiet_answered(tally: &Tally, sent: usize) {
    let quiet = tally.quiet.lock().expect("quiet");
    assert_eq!(quiet.len(), sent, "quiet answers");
    for (n, (topic, body)) in quiet.iter().enumerate() {
        assert_eq!(topic, "$next/get/accepted", "{body}");
        assert_eq!(body["clientToken"], format!("q-{n}"), "{body}");
        assert_eq!(body["execution"]["jobId"], "j", "{body}");
    }
}

/// Deterministic: the flooder sends 200,000 requests while the engine applies one batch per
/// 64 of them, and reads its answers only now and then (room for 16 at a time); the quiet
/// device's 400 `$next/get` are all queued and all answered, and every one of the flooder's
/// requests is either answered (some only when offered again) or refused with
/// `RequestThrottled`.
#[test]
fn a_flooding_device_is_throttled_and_another_devices_requests_are_all_answered() {
    const ROOM: usize = 16;
    let tally = Arc::new(Tally::new(ROOM));
    let jobs = JobsHandle::restore(Arc::new(MemoryRepository::default()))
        .expect("restore")
        .with_publisher(tally.clone());
    create_job(&jobs, &[QUIET.to_owned()]);
    let limits = QueueLimits::default();
    let driver = JobsRequests::unstarted(limits);

    const FLOODED: usize = 200_000;
    let (mut quiet_sent, mut refused) = (0, 0);
    let mut kept = Redelivery::default();
    for i in 0..FLOODED {
        match driver.handle_device_request(FLOOD, "get", Bytes::from_static(b"{}")) {
            Ok(()) => {}
            Err(refusal) => {
                assert_eq!(refusal.topic_suffix, "get/rejected");
                let body: serde_json::Value =
                    serde_json::from_slice(&refusal.payload).expect("json");
                assert_eq!(body["code"], "RequestThrottled", "{body}");
                refused += 1;
            }
        }
        if i % 500 == 0 {
            driver
                .handle_device_request(QUIET, "$next/get", quiet_get(quiet_sent))
                .expect("the quiet device is never refused");
            quiet_sent += 1;
        }
        if i % 64 == 63 {
            driver.apply_next_batch_keeping(&jobs, limits.batch, &mut kept);
        }
        if i % 256 == 255 {
            tally.flood_reads(ROOM);
        }
    }
    for _ in 0..FLOODED {
        tally.flood_reads(ROOM);
        if driver.apply_next_batch_keeping(&jobs, limits.batch, &mut kept) == 0 && kept.is_empty() {
            break;
        }
    }

    assert_eq!(quiet_sent, 400);
    assert_all_quiet_answered(&tally, quiet_sent);
    let answered = tally.flood_answers.load(Ordering::Relaxed);
    assert!(refused > FLOODED / 4, "the flooder was slowed: {refused}");
    assert_eq!(
        answered + refused,
        FLOODED,
        "no flood request went unanswered"
    );
}

/// The same with the real worker thread: a flooder on one thread, the quiet device sending one
/// `$next/get` at a time and waiting for its answer (bounded: 200 requests, 10 s each).
#[test]
fn with_the_worker_thread_every_quiet_request_is_answered_during_a_flood() {
    let tally = Arc::new(Tally::new(usize::MAX));
    let jobs = JobsHandle::restore(Arc::new(MemoryRepository::default()))
        .expect("restore")
        .with_publisher(tally.clone());
    create_job(&jobs, &[QUIET.to_owned()]);
    let driver = Arc::new(JobsRequests::start(jobs, QueueLimits::default()).expect("worker"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let (driver, stop) = (driver.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut sent, mut refused) = (0usize, 0usize);
            while !stop.load(Ordering::Relaxed) && sent < 5_000_000 {
                sent += 1;
                if driver
                    .handle_device_request(FLOOD, "get", Bytes::from_static(b"{}"))
                    .is_err()
                {
                    refused += 1;
                }
            }
            (sent, refused)
        })
    };
    const QUIET_REQUESTS: usize = 200;
    for n in 0..QUIET_REQUESTS {
        driver
            .handle_device_request(QUIET, "$next/get", quiet_get(n))
            .expect("the quiet device is never refused");
        let answered = (0..10_000).any(|_| {
            let done = tally.quiet.lock().expect("quiet").len() > n;
            if !done {
                std::thread::sleep(Duration::from_millis(1));
            }
            done
        });
        assert!(answered, "quiet request {n} was not answered");
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, refused) = flooder.join().expect("flooder");
    drop(driver); // the worker applies what is queued, then ends
    let answered = (0..10_000).any(|_| {
        let done = tally.flood_answers.load(Ordering::Relaxed) + refused == sent;
        if !done {
            std::thread::sleep(Duration::from_millis(1));
        }
        done
    });
    assert_all_quiet_answered(&tally, QUIET_REQUESTS);
    assert!(
        answered,
        "flood: {sent} sent, {refused} refused, {} answered",
        tally.flood_answers.load(Ordering::Relaxed)
    );
}
