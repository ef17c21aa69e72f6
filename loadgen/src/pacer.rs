//! `--rate`: the whole fleet asks for at most R requests per second, spread evenly in time.
//!
//! Per-device pacing (`--pace-ms`) rests on tokio timers, which fire on whole milliseconds: a
//! thousand devices paced that way ask in bursts of everyone whose timer fell in the same
//! millisecond, and the block latency a part-load run measures is mostly the time a burst takes
//! to drain. Devices do not ask in lockstep like that, so the fleet-wide rate is metered here
//! instead: a thread wakes every [`TICK`], hands out the permits that became due since its last
//! wake (a tokio semaphore, fair, so devices take turns), and banks at most [`TICK`]'s worth
//! when nobody is waiting — a fleet that cannot keep up gets no burst afterwards, it just runs
//! below the offered rate (the report shows both).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// How often the pacing thread hands out permits.
pub const TICK: Duration = Duration::from_micros(100);

/// A fleet-wide request meter; [`Pacer::start`] begins the clock, dropping it stops the thread.
pub struct Pacer {
    rate: u32,
    permits: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer").field("rate", &self.rate).finish()
    }
}

impl Pacer {
    /// A meter of `rate` requests per second (at least 1); no permits until [`Pacer::start`].
    pub fn new(rate: u32) -> Self {
        Self {
            rate: rate.max(1),
            permits: Arc::new(Semaphore::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: std::sync::Mutex::new(None),
        }
    }

    /// The offered rate, requests per second.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Starts handing out permits (once; later calls do nothing).
    pub fn start(&self) -> std::io::Result<()> {
        let mut thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if thread.is_some() {
            return Ok(());
        }
        let (permits, stop, rate) = (Arc::clone(&self.permits), Arc::clone(&self.stop), self.rate);
        *thread = Some(
            std::thread::Builder::new()
                .name("loadgen-pacer".into())
                .spawn(move || meter(&permits, &stop, rate))?,
        );
        Ok(())
    }

    /// Waits for this device's turn to send one request.
    pub async fn wait(&self) {
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake every waiter for good: the run is over.
        self.permits.close();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The pacing thread: permits due = elapsed × rate, released every [`TICK`], banked up to one
/// tick's worth.
fn meter(permits: &Semaphore, stop: &AtomicBool, rate: u32) {
    let bank = due_between(Duration::ZERO, TICK, rate).max(1);
    let t0 = Instant::now();
    let mut released_at = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let now = t0.elapsed();
        let due = due_between(released_at, now, rate);
        released_at = now;
        // Waiting devices take theirs at once; what nobody took is banked up to `bank`.
        permits.add_permits(due);
        let unused = permits.available_permits();
        if unused > bank {
            permits.forget_permits(unused - bank);
        }
    }
}

/// Permits that fall due between `from` and `to` (both since the start) at `rate` per second,
/// rounded so that consecutive intervals add up exactly.
fn due_between(from: Duration, to: Duration, rate: u32) -> usize {
    let at = |t: Duration| t.as_nanos() * u128::from(rate) / 1_000_000_000;
    usize::try_from(at(to) - at(from)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_permits_add_up_over_consecutive_ticks() {
        let rate = 33_333;
        let mut total = 0;
        let mut from = Duration::ZERO;
        for i in 1..=10_000u64 {
            let to = Duration::from_nanos(i * 99_991);
            total += due_between(from, to, rate);
            from = to;
        }
        // 10,000 ticks of 99.991 µs = 0.99991 s at 33,333/s.
        assert_eq!(
            total,
            (99_991u128 * 10_000 * 33_333 / 1_000_000_000) as usize
        );
    }

    #[tokio::test]
    async fn no_permits_before_start_and_waiters_are_released_after() {
        let pacer = Arc::new(Pacer::new(100_000));
        let waiter = {
            let p = Arc::clone(&pacer);
            tokio::spawn(async move {
                for _ in 0..50 {
                    p.wait().await;
                }
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(pacer.permits.available_permits(), 0);
        assert!(!waiter.is_finished());
        pacer.start().expect("pacer thread");
        waiter.await.expect("waiter");
    }

    #[tokio::test]
    async fn unused_permits_are_banked_only_up_to_one_tick() {
        let pacer = Pacer::new(1_000_000);
        pacer.start().expect("pacer thread");
        tokio::time::sleep(Duration::from_millis(20)).await;
        // 20 ms at 1M/s would be 20,000; one tick's worth is 100.
        assert!(pacer.permits.available_permits() <= 100);
    }
}
