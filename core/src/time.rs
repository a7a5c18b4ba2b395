//! The core's clock value.
//!
//! The core never reads a clock: every input that depends on time carries a [`Time`],
//! milliseconds since an epoch the runtime chooses (usually its own start). Tests drive
//! it as a virtual clock, so a race replays identically every time.

use std::time::Duration;

/// A point in time: milliseconds since the runtime's epoch.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The epoch itself.
    pub const ZERO: Time = Time(0);

    /// A time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    /// A time `elapsed` after the epoch (saturating).
    pub fn from_duration(elapsed: Duration) -> Time {
        Time(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time as a duration since the epoch.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// `self + d`, saturating at the far future.
    pub fn after(self, d: Duration) -> Time {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(ms))
    }

    /// How long from `self` until `later` (zero when `later` is not later).
    pub fn until(self, later: Time) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }
}
