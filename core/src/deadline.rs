//! A deadline index: keys, each with at most one deadline, the earliest first.
//!
//! Invariants: a key has at most one entry; [`Deadlines::first`] is the earliest deadline of
//! any key; setting a key's deadline replaces its old one.

use std::collections::{BTreeMap, BTreeSet};

use crate::time::Time;

/// Keys with their deadlines, ordered by time.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines<K> {
    by_time: BTreeSet<(Time, K)>,
    of: BTreeMap<K, Time>,
}

impl<K: Ord + Copy> Default for Deadlines<K> {
    fn default() -> Self {
        Deadlines {
            by_time: BTreeSet::new(),
            of: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Copy> Deadlines<K> {
    /// Sets `key`'s deadline (`None`: it has none any more).
    pub(crate) fn set(&mut self, key: K, at: Option<Time>) {
        let old = match at {
            Some(t) => self.of.insert(key, t),
            None => self.of.remove(&key),
        };
        if old != at {
            if let Some(old) = old {
                self.by_time.remove(&(old, key));
            }
            if let Some(new) = at {
                self.by_time.insert((new, key));
            }
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Time> {
        self.by_time.first().map(|(t, _)| *t)
    }

    /// The keys whose deadline is `now` or earlier, earliest first.
    pub(crate) fn due(&self, now: Time) -> Vec<K> {
        self.by_time
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, k)| *k)
            .collect()
    }

    /// Every key with a deadline, earliest first.
    pub(crate) fn keys(&self) -> Vec<K> {
        self.by_time.iter().map(|(_, k)| *k).collect()
    }

    /// Whether `key` has a deadline.
    pub(crate) fn contains(&self, key: K) -> bool {
        self.of.contains_key(&key)
    }
}
