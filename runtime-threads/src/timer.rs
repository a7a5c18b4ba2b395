//! The core's next deadline, for the timer thread to sleep until. A leaf: the thread's
//! loop (in `main.rs`) calls `handle_timeout` when [`Timer::wait_due`] returns.
//!
//! Invariant: the armed deadline is never later than the core's own: anyone who learns
//! of an earlier one lowers it and notifies. A deadline that later moved out only costs a
//! spurious `handle_timeout`, which does nothing and re-arms with the new deadline.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// The core's next deadline.
#[derive(Debug, Default)]
pub struct Timer {
    due: Mutex<Option<Instant>>,
    wake: Condvar,
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The core has a deadline at `at`: make sure the thread wakes by then (never blocks).
    pub fn arm(&self, at: Instant) {
        let mut due = self.lock();
        if !matches!(*due, Some(current) if current <= at) {
            *due = Some(at);
            self.wake.notify_one();
        }
    }

    /// Blocks until the armed deadline has passed, and disarms it.
    pub fn wait_due(&self) {
        let mut due = self.lock();
        loop {
            let now = Instant::now();
            match *due {
                Some(at) if at <= now => break,
                Some(at) => {
                    due = self
                        .wake
                        .wait_timeout(due, at - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => due = self.wake.wait(due).unwrap_or_else(PoisonError::into_inner),
            }
        }
        *due = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_past_deadline_is_due_at_once() {
        let timer = Timer::default();
        timer.arm(Instant::now());
        timer.wait_due();
        assert!(timer.lock().is_none());
    }

    #[test]
    fn an_earlier_deadline_replaces_a_later_one() {
        let timer = Timer::default();
        let later = Instant::now() + Duration::from_secs(3600);
        timer.arm(later);
        timer.arm(Instant::now());
        timer.arm(later);
        let started = Instant::now();
        timer.wait_due();
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn arming_wakes_a_waiting_timer() {
        let timer = Arc::new(Timer::default());
        let waiter = {
            let timer = Arc::clone(&timer);
            std::thread::spawn(move || timer.wait_due())
        };
        timer.arm(Instant::now() + Duration::from_millis(10));
        waiter.join().unwrap();
    }
}
