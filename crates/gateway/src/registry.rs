//! Which sessions are connected, and the persistent sessions kept between connections.
//!
//! A thing has at most one live connection: a new CONNECT for the same thing takes the session
//! over (the old connection is told to close, as AWS IoT does). A session with `clean_session =
//! false` leaves its [`SessionState`] and its broker link here when its connection ends; the link
//! keeps collecting ordinary-topic messages (bounded by the router) until the device returns.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::broker::BrokerLink;
use crate::session::SessionState;

/// A message from the gateway to one live connection task.
#[derive(Debug)]
pub enum Control {
    /// Deliver this reserved-topic message if the device subscribed to it.
    Notify {
        /// Topic under the thing's own `$aws/things/<thing>/` prefix.
        topic: String,
        /// Message payload.
        payload: Bytes,
    },
    /// Deliver this answer to one of the device's own requests, subscribed or not.
    Reply {
        /// Topic under the thing's own `$aws/things/<thing>/` prefix.
        topic: String,
        /// Message payload.
        payload: Bytes,
    },
    /// Another connection authenticated as the same thing: close this one.
    TakenOver,
}

/// The sending side of one connection's control queue. Messages are boxed so the queue's slot
/// blocks (tokio allocates 32 slots at a time) cost 8 bytes a slot on every idle connection
/// instead of the size of a [`Control`].
pub type ControlSender = mpsc::Sender<Box<Control>>;

/// What a persistent session leaves behind while disconnected.
pub struct StoredSession {
    /// Subscriptions and unacknowledged messages.
    pub state: SessionState,
    /// The broker link, if the session used ordinary topics.
    pub link: Option<BrokerLink>,
}

/// How long a disconnected persistent session is kept (AWS IoT's default: one hour).
pub const SESSION_EXPIRY: Duration = Duration::from_secs(3600);

/// How often detaching sweeps expired sessions (a sweep walks every stored session).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

struct Live {
    connection: u64,
    control: ControlSender,
}

struct Kept {
    since: Instant,
    session: StoredSession,
}

struct Maps {
    live: HashMap<String, Live>,
    stored: HashMap<String, Kept>,
    last_sweep: Option<Instant>,
}

/// The registry; one per gateway.
pub struct Registry {
    maps: Mutex<Maps>,
    expiry: Duration,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_expiry(SESSION_EXPIRY)
    }
}

impl Registry {
    /// A registry that drops disconnected persistent sessions after `expiry`.
    pub fn with_expiry(expiry: Duration) -> Self {
        let maps = Maps {
            live: HashMap::new(),
            stored: HashMap::new(),
            last_sweep: None,
        };
        Self {
            maps: Mutex::new(maps),
            expiry,
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding this lock cannot leave the maps half-updated (single inserts and
        // removes), so a poisoned lock is still safe to use.
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers connection `connection` as the live session of `thing` at `now`, telling any
    /// previous connection to close. Returns the stored persistent session of `thing` to resume
    /// (if any and not expired) and the sessions whose broker links the caller must release.
    pub fn attach(
        &self,
        thing: &str,
        connection: u64,
        control: ControlSender,
        now: Instant,
    ) -> (Option<StoredSession>, Vec<StoredSession>) {
        let mut maps = self.maps();
        if let Some(old) = maps.live.insert(
            thing.to_owned(),
            Live {
                connection,
                control,
            },
        ) {
            // The old task may already be gone; then there is nothing to close.
            let _ = old.control.try_send(Box::new(Control::TakenOver));
        }
        match maps.stored.remove(thing) {
            Some(kept) if now.duration_since(kept.since) < self.expiry => {
                (Some(kept.session), Vec::new())
            }
            Some(expired) => (None, vec![expired.session]),
            None => (None, Vec::new()),
        }
    }

    /// Unregisters connection `connection` of `thing` at `now` and keeps `stored` for a later
    /// reconnect. Returns the sessions whose broker links the caller must release: `stored`
    /// itself if a newer connection took the thing over meanwhile (the newer session owns the
    /// thing now), and any stored sessions that expired.
    pub fn detach(
        &self,
        thing: &str,
        connection: u64,
        stored: Option<StoredSession>,
        now: Instant,
    ) -> Vec<StoredSession> {
        let mut maps = self.maps();
        let mut release = Vec::new();
        match maps.live.get(thing) {
            Some(l) if l.connection != connection => release.extend(stored),
            _ => {
                maps.live.remove(thing);
                if let Some(session) = stored {
                    maps.stored.insert(
                        thing.to_owned(),
                        Kept {
                            since: now,
                            session,
                        },
                    );
                }
            }
        }
        if maps
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            maps.last_sweep = Some(now);
            let expiry = self.expiry;
            let expired: Vec<String> = maps
                .stored
                .iter()
                .filter(|(_, k)| now.duration_since(k.since) >= expiry)
                .map(|(t, _)| t.clone())
                .collect();
            release.extend(
                expired
                    .iter()
                    .filter_map(|t| maps.stored.remove(t))
                    .map(|k| k.session),
            );
        }
        release
    }

    /// Sends `control` to the live connection of `thing`; false if it is not connected or its
    /// control queue is full.
    pub fn send(&self, thing: &str, control: Control) -> bool {
        self.maps()
            .live
            .get(thing)
            .is_some_and(|l| l.control.try_send(Box::new(control)).is_ok())
    }

    /// Number of connected things.
    pub fn live_count(&self) -> usize {
        self.maps().live.len()
    }

    /// Number of disconnected persistent sessions kept.
    pub fn stored_count(&self) -> usize {
        self.maps().stored.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> Option<StoredSession> {
        Some(StoredSession {
            state: SessionState::default(),
            link: None,
        })
    }

    #[test]
    fn a_newer_connection_takes_over_and_keeps_the_thing() {
        let registry = Registry::default();
        let now = Instant::now();
        let (old_tx, mut old_rx) = mpsc::channel(4);
        let (new_tx, _new_rx) = mpsc::channel(4);
        assert!(registry.attach("t", 1, old_tx, now).0.is_none());
        registry.attach("t", 2, new_tx, now);
        assert!(matches!(
            old_rx.try_recv().as_deref(),
            Ok(Control::TakenOver)
        ));
        // The old connection ends: its state is handed back, the newer one stays live.
        assert_eq!(registry.detach("t", 1, kept(), now).len(), 1);
        assert_eq!((registry.live_count(), registry.stored_count()), (1, 0));
        assert!(registry.send("t", Control::TakenOver));
        assert!(registry.detach("t", 2, kept(), now).is_empty());
        assert_eq!((registry.live_count(), registry.stored_count()), (0, 1));
        assert!(!registry.send("t", Control::TakenOver), "not connected");
    }

    #[test]
    fn persistent_sessions_resume_until_they_expire() {
        let registry = Registry::with_expiry(Duration::from_secs(10));
        let t0 = Instant::now();
        let (tx, _rx) = mpsc::channel(4);
        registry.attach("a", 1, tx.clone(), t0);
        registry.detach("a", 1, kept(), t0);
        let (resumed, release) = registry.attach("a", 2, tx.clone(), t0 + Duration::from_secs(9));
        assert!(resumed.is_some() && release.is_empty());
        registry.detach("a", 2, kept(), t0 + Duration::from_secs(9));
        let (resumed, release) = registry.attach("a", 3, tx.clone(), t0 + Duration::from_secs(19));
        assert!(
            resumed.is_none() && release.len() == 1,
            "expired: released, not resumed"
        );

        // Sessions nobody comes back for are swept by a later detach.
        registry.attach("b", 4, tx.clone(), t0);
        registry.detach("b", 4, kept(), t0 + Duration::from_secs(19));
        registry.detach("a", 3, None, t0 + Duration::from_secs(19));
        let swept = registry.detach("c", 5, None, t0 + Duration::from_secs(100));
        assert_eq!((swept.len(), registry.stored_count()), (1, 0));
    }
}
