//! The timer thread: the core's next deadline, plus a few one-shot jobs (kill a session
//! that outlived its hangup, end an `execute-command` that ran too long).
//!
//! The thread sleeps on a condvar until the earliest of the two; anyone who learns of an
//! earlier deadline lowers it and notifies. A deadline that later moved out only costs a
//! spurious `handle_timeout`, which does nothing and re-arms with the new deadline.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::shared::Shared;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    /// When to call the core's `handle_timeout` next.
    core: Option<Instant>,
    /// One-shot jobs and when to run them (few at a time: a linear scan is enough).
    jobs: Vec<(Instant, Job)>,
}

impl Queue {
    fn next(&self) -> Option<Instant> {
        let job = self.jobs.iter().map(|(at, _)| *at).min();
        match (self.core, job) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The timer thread's queue.
#[derive(Default)]
pub struct Timer {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = self.lock();
        f.debug_struct("Timer")
            .field("core", &queue.core)
            .field("jobs", &queue.jobs.len())
            .finish()
    }
}

impl Timer {
    /// An empty queue.
    pub fn new() -> Timer {
        Timer::default()
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The core has a deadline at `at`: make sure the thread wakes by then.
    pub fn arm(&self, at: Instant) {
        let mut queue = self.lock();
        if !matches!(queue.core, Some(current) if current <= at) {
            queue.core = Some(at);
            self.wake.notify_one();
        }
    }

    /// Runs `job` on the timer thread once `delay` has passed (jobs must be short).
    pub fn after(&self, delay: Duration, job: impl FnOnce() + Send + 'static) {
        let mut queue = self.lock();
        queue.jobs.push((Instant::now() + delay, Box::new(job)));
        self.wake.notify_one();
    }

    /// Runs every pending job now, whatever its time (at exit: nothing may be left for later).
    pub fn run_all_now(&self) {
        let jobs = std::mem::take(&mut self.lock().jobs);
        for (_, job) in jobs {
            job();
        }
    }

    /// Waits for the next due deadline; returns the due jobs and whether the core is due.
    fn next_due(&self) -> (Vec<Job>, bool) {
        let mut queue = self.lock();
        loop {
            let now = Instant::now();
            match queue.next() {
                Some(at) if at <= now => break,
                Some(at) => {
                    queue = self
                        .wake
                        .wait_timeout(queue, at - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => {
                    queue = self
                        .wake
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
        let now = Instant::now();
        let core_due = queue.core.is_some_and(|at| at <= now);
        if core_due {
            queue.core = None;
        }
        let (due, later) = std::mem::take(&mut queue.jobs)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        queue.jobs = later;
        (due.into_iter().map(|(_, job)| job).collect(), core_due)
    }
}

/// The timer thread's loop (never returns).
pub fn run(shared: Arc<Shared>) {
    loop {
        let (jobs, core_due) = shared.timer.next_due();
        for job in jobs {
            job();
        }
        if core_due {
            // Re-arms itself: every call leaves with the server's next deadline.
            shared.call(|server, now| server.handle_timeout(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_past_core_deadline_is_due_at_once() {
        let timer = Timer::new();
        timer.arm(Instant::now());
        let (jobs, core_due) = timer.next_due();
        assert!(jobs.is_empty());
        assert!(core_due);
    }

    #[test]
    fn an_earlier_deadline_replaces_a_later_one() {
        let timer = Timer::new();
        let later = Instant::now() + Duration::from_secs(3600);
        timer.arm(later);
        timer.arm(Instant::now());
        timer.arm(later);
        let started = Instant::now();
        let (_, core_due) = timer.next_due();
        assert!(core_due);
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn jobs_run_when_due_and_all_at_exit() {
        let timer = Arc::new(Timer::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let count = |ran: &Arc<AtomicUsize>| {
            let ran = Arc::clone(ran);
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        };
        timer.after(Duration::from_millis(20), count(&ran));
        timer.after(Duration::from_secs(3600), count(&ran));
        let started = Instant::now();
        let (jobs, core_due) = timer.next_due();
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(!core_due);
        assert_eq!(jobs.len(), 1);
        jobs.into_iter().for_each(|job| job());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        timer.run_all_now();
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_job_added_while_waiting_wakes_the_timer() {
        let timer = Arc::new(Timer::new());
        let waiter = {
            let timer = Arc::clone(&timer);
            std::thread::spawn(move || timer.next_due().0.len())
        };
        timer.after(Duration::ZERO, || {});
        assert_eq!(waiter.join().ok(), Some(1));
    }
}
