//! Which sessions are connected, and the persistent sessions kept between connections.
//!
//! A thing has at most one live connection: a new CONNECT for the same thing takes the session
//! over (the old connection is told to close, as AWS IoT does). A session with `clean_session =
//! false` leaves its [`SessionState`] and its broker link here when its connection ends; the link
//! keeps collecting ordinary-topic messages (bounded by the router) until the device returns.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// What a persistent session leaves behind while disconnected.
pub struct StoredSession {
    /// Subscriptions and unacknowledged messages.
    pub state: SessionState,
    /// The broker link, if the session used ordinary topics.
    pub link: Option<BrokerLink>,
}

struct Live {
    connection: u64,
    control: mpsc::Sender<Control>,
}

#[derive(Default)]
struct Maps {
    live: HashMap<String, Live>,
    stored: HashMap<String, StoredSession>,
}

/// The registry; one per gateway.
#[derive(Default)]
pub struct Registry {
    maps: Mutex<Maps>,
}

impl Registry {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding this lock cannot leave the maps half-updated (single inserts and
        // removes), so a poisoned lock is still safe to use.
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers connection `connection` as the live session of `thing`, telling any previous
    /// connection to close, and takes the stored persistent session of `thing`, if any.
    pub fn attach(
        &self,
        thing: &str,
        connection: u64,
        control: mpsc::Sender<Control>,
    ) -> Option<StoredSession> {
        let mut maps = self.maps();
        if let Some(old) = maps.live.insert(
            thing.to_owned(),
            Live {
                connection,
                control,
            },
        ) {
            // The old task may already be gone; then there is nothing to close.
            let _ = old.control.try_send(Control::TakenOver);
        }
        maps.stored.remove(thing)
    }

    /// Unregisters connection `connection` of `thing` and keeps `stored` for a later reconnect.
    /// If a newer connection took the thing over meanwhile, `stored` is handed back instead (the
    /// newer session owns the thing now) so the caller can release its broker link.
    pub fn detach(
        &self,
        thing: &str,
        connection: u64,
        stored: Option<StoredSession>,
    ) -> Option<StoredSession> {
        let mut maps = self.maps();
        match maps.live.get(thing) {
            Some(l) if l.connection != connection => return stored,
            Some(_) => {
                maps.live.remove(thing);
            }
            None => {}
        }
        if let Some(s) = stored {
            maps.stored.insert(thing.to_owned(), s);
        }
        None
    }

    /// Sends `control` to the live connection of `thing`; false if it is not connected or its
    /// control queue is full.
    pub fn send(&self, thing: &str, control: Control) -> bool {
        self.maps()
            .live
            .get(thing)
            .is_some_and(|l| l.control.try_send(control).is_ok())
    }

    /// Number of connected things.
    pub fn live_count(&self) -> usize {
        self.maps().live.len()
    }
}
