//! A client: a cursor into a session's output stream, with a generation.
//!
//! Invariants: `cursor` only moves forward; `drops` lie in `[cursor, replay_end)`, sorted and
//! disjoint; the client is *replay pending* while `cursor < replay_end` and *live* after.
//! A client that is `lagging` or a `viewer` does not hold the program back; these are the
//! only kinds of client whose cursor may jump forward (a skip). A viewer's input never
//! reaches the program.

use std::collections::VecDeque;
use std::ops::Range;

use crate::frame::{CloseReason, Control};
use crate::time::Time;

/// A client's number within its session: strictly increasing in attach order.
pub type Generation = u64;

/// Whether a client is still being sent the stream as of its attach, or is past it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClientPhase {
    /// The cursor has not yet passed the head as of attach (or as of its last skip).
    ReplayPending,
    /// The cursor has passed it: everything sent now is live output, untouched.
    Live,
}

/// One attached client's cursor and delivery state.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub generation: Generation,
    /// Next stream offset to send.
    pub cursor: u64,
    /// The head as of attach (or skip); replay hygiene applies only before it.
    pub replay_end: u64,
    /// Opted in to control messages (text frames other than the exit message).
    pub control: bool,
    /// A read-only viewer: its input is dropped, it never holds the program back.
    pub viewer: bool,
    /// Owe the client a `live` control message when the replay ends.
    pub announce_live: bool,
    /// State-restoring bytes still to send before the stream bytes at `cursor`.
    pub prefix: Vec<u8>,
    /// Absolute ranges the replay leaves out (queries, side effects).
    pub drops: VecDeque<Range<u64>>,
    /// Control messages queued for this client, already encoded.
    pub texts: VecDeque<String>,
    /// Since when the client has had bytes waiting without taking any (None: caught up).
    pub waiting_since: Option<Time>,
    /// Stalled past the timeout: no longer holds the program back.
    pub lagging: bool,
    /// The last transmit found nothing: the runtime waits for a wake before asking again.
    pub idle: bool,
    /// The exit message went out.
    pub exit_sent: bool,
    /// The next frame is this close, after which the client is gone.
    pub close: Option<CloseReason>,
}

impl Client {
    /// Replay pending or live.
    pub fn phase(&self) -> ClientPhase {
        if self.cursor < self.replay_end {
            ClientPhase::ReplayPending
        } else {
            ClientPhase::Live
        }
    }

    /// True when the program waits for this client: it reads (not lagging), is not
    /// closing, and is not a viewer.
    pub fn holds_back(&self) -> bool {
        !self.lagging && !self.viewer && self.close.is_none()
    }

    /// Moves the cursor past any dropped range it stands in, and forgets ranges behind it.
    pub fn skip_drops(&mut self) {
        while let Some(range) = self.drops.front() {
            if range.end <= self.cursor {
                self.drops.pop_front();
            } else if range.start <= self.cursor {
                self.cursor = range.end;
                self.drops.pop_front();
            } else {
                break;
            }
        }
    }

    /// The `live` control message, once the replay is over, if the client is owed one.
    pub fn take_live_announcement(&mut self) -> Option<String> {
        let done =
            self.cursor >= self.replay_end && self.prefix.is_empty() && self.drops.is_empty();
        if !(self.announce_live && done) {
            return None;
        }
        self.announce_live = false;
        Some(
            Control::Live {
                offset: self.cursor,
            }
            .to_json(),
        )
    }

    /// Where the next run of contiguous bytes to send must stop (exclusive), given the head.
    pub fn run_end(&self, head: u64) -> u64 {
        let mut end = head;
        if let Some(range) = self.drops.front() {
            end = end.min(range.start);
        }
        if self.announce_live && self.cursor < self.replay_end {
            // End the frame at the replay's end, so the `live` message marks the exact offset.
            end = end.min(self.replay_end);
        }
        end
    }
}
