//! Connection admission: how many HTTP connections are served at once, and who makes room.
//!
//! At most [`MAX_CONNECTIONS`] connections count at once: every connection from accept
//! until it closes, except that a WebSocket stops counting once upgraded (its session
//! bounds it). At the cap, a new connection evicts the oldest one that has not completed
//! its request yet — an idle or slow client, which would be dropped at `REQUEST_TIMEOUT`
//! anyway — so a flood of idle connections never blocks `/status` or new sessions. When
//! every counted connection is busy (its request is complete and being answered), the new
//! one is refused with a 503 instead.
//!
//! # Out of descriptors
//!
//! When `accept` fails because the process (or the system) has no descriptor left, the
//! connection waits in the listen backlog; it may be the `/status` or the new session
//! that matters. The oldest connection still reading its request is evicted to free one
//! descriptor, and the runtime accepts again at once. Only one such eviction is in flight
//! at a time: the next waits until the evicted connection's close is reported (its
//! descriptor is free then) or [`ACCEPT_RETRY`] passed, so a burst of failed accepts
//! never drops every idle client at once. With nothing to evict (or one in flight) the
//! runtime waits [`ACCEPT_RETRY`] before accepting again, rather than spinning.
//!
//! Invariants: counted connections never exceed [`MAX_CONNECTIONS`]; ids are never reused
//! (a late report about an evicted connection is ignored); eviction takes the oldest
//! evictable connection first; at most one eviction for descriptors is in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::http::Response;
use crate::limits::{ACCEPT_RETRY, MAX_CONNECTIONS};
use crate::time::Time;

/// A connection's id, given by [`crate::server::Server::connection_opened`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(u64);

/// What to do with a connection just accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Serve it under this id (report its progress with the `connection_*` methods).
    Admitted(ConnId),
    /// Write this answer (503), then close: every connection is busy.
    Refused(Response),
}

/// Why `accept` failed, as far as admission cares (the runtime translates the OS error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// No descriptor left for the new socket (`EMFILE`, `ENFILE`).
    OutOfDescriptors,
    /// Anything else (memory, a connection aborted in the backlog, ...).
    Other,
}

/// Where a connection is, as far as admission cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnPhase {
    /// Its request is not complete yet: evictable.
    Reading,
    /// Its request is complete and being answered.
    Answering,
    /// A WebSocket now: not counted.
    Upgraded,
}

/// A new connection was admitted (maybe by evicting another) or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Serve it; `evicted` was dropped to make room.
    Admitted {
        /// The new connection.
        id: ConnId,
        /// The connection that made room, if one had to.
        evicted: Option<ConnId>,
    },
    /// Every counted connection is busy.
    Refused,
}

/// The open connections, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connections {
    open: BTreeMap<ConnId, ConnPhase>,
    counted: usize,
    upgraded: usize,
    last_id: u64,
    /// The connection evicted to free a descriptor, and when, until its close is reported.
    freeing: Option<(ConnId, Time)>,
}

impl Connections {
    /// A connection was accepted.
    pub(crate) fn open(&mut self) -> Opened {
        let mut evicted = None;
        if self.counted >= MAX_CONNECTIONS {
            let Some(oldest) = self.oldest_reading() else {
                return Opened::Refused;
            };
            self.close(oldest);
            evicted = Some(oldest);
        }
        self.last_id += 1;
        let id = ConnId(self.last_id);
        self.open.insert(id, ConnPhase::Reading);
        self.counted += 1;
        Opened::Admitted { id, evicted }
    }

    /// `accept` failed at `now`: evicts the oldest connection still reading its request
    /// when that frees a descriptor the backlog needs (see the module docs). Returns the
    /// evicted connection, if any, and how long to wait before accepting again.
    pub(crate) fn accept_failed(
        &mut self,
        failure: AcceptFailure,
        now: Time,
    ) -> (Option<ConnId>, Duration) {
        if failure != AcceptFailure::OutOfDescriptors || self.is_freeing(now) {
            return (None, ACCEPT_RETRY);
        }
        let Some(oldest) = self.oldest_reading() else {
            return (None, ACCEPT_RETRY);
        };
        self.close(oldest);
        self.freeing = Some((oldest, now));
        (Some(oldest), Duration::ZERO)
    }

    /// An eviction for descriptors is in flight: reported closed neither yet nor long ago.
    fn is_freeing(&self, now: Time) -> bool {
        self.freeing
            .is_some_and(|(_, since)| now < since.after(ACCEPT_RETRY))
    }

    /// The oldest connection that has not completed its request yet.
    fn oldest_reading(&self) -> Option<ConnId> {
        self.open
            .iter()
            .find(|(_, phase)| **phase == ConnPhase::Reading)
            .map(|(id, _)| *id)
    }

    /// The connection's request is complete: it is being answered, not idle.
    pub(crate) fn request_complete(&mut self, id: ConnId) {
        if let Some(phase) = self.open.get_mut(&id) {
            if *phase == ConnPhase::Reading {
                *phase = ConnPhase::Answering;
            }
        }
    }

    /// The connection became a WebSocket: it stops counting.
    pub(crate) fn upgraded(&mut self, id: ConnId) {
        if let Some(phase) = self.open.get_mut(&id) {
            if *phase != ConnPhase::Upgraded {
                *phase = ConnPhase::Upgraded;
                self.counted -= 1;
                self.upgraded += 1;
            }
        }
    }

    /// The connection closed (unknown or evicted ids are ignored, except that the close
    /// of one evicted for descriptors means its descriptor is free).
    pub(crate) fn close(&mut self, id: ConnId) {
        if self.freeing.is_some_and(|(freeing, _)| freeing == id) {
            self.freeing = None;
        }
        match self.open.remove(&id) {
            Some(ConnPhase::Upgraded) => self.upgraded -= 1,
            Some(_) => self.counted -= 1,
            None => {}
        }
    }

    /// How many connections count against the cap.
    pub(crate) fn counted(&self) -> usize {
        self.counted
    }

    /// How many WebSockets are still open.
    pub(crate) fn upgraded_open(&self) -> usize {
        self.upgraded
    }
}
