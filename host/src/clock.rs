//! The core's clock: monotonic time since the server started.
//!
//! Invariant: [`Clock::now`] never goes backwards, and [`Clock::instant`] is its
//! inverse, so a deadline the core names is the instant a runtime sleeps until.

use std::time::Instant;

use axs_core::time::Time;

/// The core's clock: the monotonic time since the server started, as the core's
/// [`Time`], and back to an [`Instant`] to sleep until.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose [`Time::ZERO`] is now.
    pub fn start() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    /// The core's time for this instant.
    pub fn now(&self) -> Time {
        Time::from_duration(self.epoch.elapsed())
    }

    /// The instant a core time stands for.
    pub fn instant(&self, time: Time) -> Instant {
        self.epoch + time.as_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_maps_core_times_to_instants_and_back() {
        let clock = Clock::start();
        let now = clock.now();
        assert!(clock.instant(now) <= Instant::now());
        assert_eq!(clock.instant(Time::ZERO), clock.epoch);
        let later = Time::from_millis(now.as_millis() + 1000);
        assert_eq!(
            clock.instant(later) - clock.instant(now),
            std::time::Duration::from_secs(1)
        );
    }
}
