//! Contention between sessions: how many bytes of a session's output a task (its pty
//! reader, a client's writer) may handle in a row before it lets every other task run
//! (the *output budget*), and whether its reads may wait for output on its way.
//!
//! axs serves every session on one thread, whose executor runs tasks first come, first
//! served: a keystroke's four hops (socket reader, pty writer, pty reader, socket writer)
//! each queue behind whatever a flooding session's reader and writer do before they
//! yield. So the budget depends on who else is in use: while any *other* session had
//! client input or program output within [`CONTENDED_WINDOW`], the budget is
//! [`CONTENDED_OUTPUT_BUDGET`]; otherwise [`YIELD_AFTER`], so a lone bulk stream is read
//! and sent in large slices and loses nothing. A job (`execute-command`) is nobody's
//! terminal: it gets the small budget while any session is in use. axs-threads reads each
//! pty on a thread of its own and lets the OS interleave them: it has no budget to ask for.
//!
//! A read may also hold the loop up by itself: a pty read that finds the line discipline
//! empty waits in the kernel for its tty worker, which under a flood is every 4 KiB and
//! ~60 µs each (Linux 6.x; BENCHMARKS.md, "Reads that wait for the tty worker"). Alone,
//! that wait is what keeps slices large (one socket write per slice, not per 4 KiB).
//! Shared, it would hold up every other session's keystroke: then a read takes only what
//! has arrived ([`OutputSlice::may_wait`]).
//!
//! Invariant: [`Activity`] remembers the latest activity of the two most recently active
//! sessions, which are distinct, so "the latest activity of any session but this one" is
//! O(1) whatever the number of sessions; every older activity is older than both.

use crate::limits::{CONTENDED_OUTPUT_BUDGET, CONTENDED_WINDOW, YIELD_AFTER};
use crate::server::SessionId;
use crate::time::Time;

/// How a task may handle one session's (or job's) output before it lets others run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSlice {
    /// Bytes it may handle in a row before it lets every other task run.
    pub budget: usize,
    /// Whether a read may wait for output on its way to the reader (in the kernel),
    /// holding up every other task meanwhile; if not, it takes only what has arrived.
    pub may_wait: bool,
}

/// Nobody else is in use: large slices, and reads that wait for them to fill.
pub const ALONE: OutputSlice = OutputSlice {
    budget: YIELD_AFTER,
    may_wait: true,
};

/// Someone else is in use: small slices, and reads that never wait (but to drain a
/// hung-up pty).
pub const SHARED: OutputSlice = OutputSlice {
    budget: CONTENDED_OUTPUT_BUDGET,
    may_wait: false,
};

// Sharing means smaller slices and reads that never wait, or it means nothing.
const _: () = assert!(SHARED.budget < ALONE.budget && ALONE.may_wait && !SHARED.may_wait);

/// When sessions were last in use (input or output), as far as output budgets care.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The most recently active session and when.
    latest: Option<(SessionId, Time)>,
    /// The most recently active session other than `latest`'s, and when.
    runner_up: Option<(SessionId, Time)>,
}

impl Activity {
    /// Session `id` had input or output at `now` (times never go back).
    pub fn saw(&mut self, id: SessionId, now: Time) {
        match self.latest {
            Some((latest, _)) if latest == id => {}
            previous => self.runner_up = previous,
        }
        self.latest = Some((id, now));
    }

    /// When a session other than `id` was last in use, if any was.
    pub fn last_other_than(&self, id: SessionId) -> Option<Time> {
        match self.latest {
            Some((latest, _)) if latest == id => self.runner_up.map(|(_, at)| at),
            latest => latest.map(|(_, at)| at),
        }
    }

    /// When any session was last in use, if any was.
    pub fn last_any(&self) -> Option<Time> {
        self.latest.map(|(_, at)| at)
    }

    /// How a task may handle session `id`'s output at `now`.
    pub fn output_slice(&self, id: SessionId, now: Time) -> OutputSlice {
        slice(self.last_other_than(id), now)
    }

    /// How a job's reader may handle its output at `now`.
    pub fn job_output_slice(&self, now: Time) -> OutputSlice {
        slice(self.last_any(), now)
    }
}

/// [`SHARED`] while someone else was in use within [`CONTENDED_WINDOW`] of `now`.
fn slice(someone_else: Option<Time>, now: Time) -> OutputSlice {
    match someone_else {
        Some(at) if at.until(now) < CONTENDED_WINDOW => SHARED,
        _ => ALONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn at(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    const WINDOW_MS: u64 = CONTENDED_WINDOW.as_millis() as u64;

    #[test]
    fn a_lone_session_reads_full_slices() {
        let mut activity = Activity::default();
        assert_eq!(activity.output_slice(1, at(0)), ALONE);
        for ms in 0..100 {
            activity.saw(1, at(ms));
            assert_eq!(activity.output_slice(1, at(ms)), ALONE);
        }
    }

    #[test]
    fn a_flood_reads_small_slices_while_another_session_is_in_use() {
        let mut activity = Activity::default();
        activity.saw(2, at(1000));
        activity.saw(1, at(1001));
        activity.saw(1, at(1500));
        assert_eq!(activity.output_slice(1, at(1500)), SHARED);
        // The other session sees the flood too; its few bytes never reach the budget.
        assert_eq!(activity.output_slice(2, at(1500)), SHARED);
    }

    #[test]
    fn full_slices_come_back_once_the_other_session_is_quiet_for_the_window() {
        let mut activity = Activity::default();
        activity.saw(2, at(1000));
        activity.saw(1, at(1001));
        let quiet = 1000 + WINDOW_MS;
        assert_eq!(activity.output_slice(1, at(quiet - 1)), SHARED);
        assert_eq!(activity.output_slice(1, at(quiet)), ALONE);
    }

    #[test]
    fn the_session_that_was_in_use_before_the_latest_one_is_remembered() {
        let mut activity = Activity::default();
        activity.saw(3, at(10));
        activity.saw(1, at(20));
        activity.saw(2, at(30));
        activity.saw(2, at(40));
        assert_eq!(activity.last_other_than(2), Some(at(20)));
        assert_eq!(activity.last_other_than(1), Some(at(40)));
        assert_eq!(activity.last_other_than(3), Some(at(40)));
        activity.saw(1, at(50));
        assert_eq!(activity.last_other_than(1), Some(at(40)));
        assert_eq!(activity.last_other_than(2), Some(at(50)));
    }

    #[test]
    fn a_job_reads_small_slices_while_any_session_is_in_use() {
        let mut activity = Activity::default();
        assert_eq!(activity.job_output_slice(at(0)), ALONE);
        activity.saw(1, at(100));
        assert_eq!(activity.job_output_slice(at(100)), SHARED);
        assert_eq!(activity.job_output_slice(at(100 + WINDOW_MS)), ALONE);
    }

    /// The reference: the latest activity of every session, searched in full.
    fn model_last_other_than(seen: &[(SessionId, Time)], id: SessionId) -> Option<Time> {
        seen.iter()
            .filter(|(other, _)| *other != id)
            .map(|(_, at)| *at)
            .max()
    }

    proptest! {
        /// After every step of any walk over a few sessions, the two latest answer as the
        /// full search does, for every session (and one never seen).
        #[test]
        fn the_two_latest_agree_with_a_full_search(ids in vec(0u32..5, 0..200)) {
            let mut activity = Activity::default();
            let mut seen = Vec::new();
            for (ms, id) in ids.into_iter().enumerate() {
                let now = at(ms as u64);
                activity.saw(id, now);
                seen.push((id, now));
                for probe in 0..6 {
                    prop_assert_eq!(
                        activity.last_other_than(probe),
                        model_last_other_than(&seen, probe)
                    );
                }
            }
        }
    }
}
