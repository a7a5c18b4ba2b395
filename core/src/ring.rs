//! The scrollback ring: the newest bytes of one output stream, addressed by absolute offset.
//!
//! Invariants: the ring holds exactly the stream bytes `[start, end)`; `end - start` never
//! exceeds the capacity; offsets only grow. Bytes that fall out of the front are handed to
//! the caller (the session feeds them to the terminal-state tracker) before they are dropped.

use std::collections::VecDeque;

/// Offset-addressed ring of the newest output bytes.
#[derive(Debug, Clone)]
pub struct Ring {
    bytes: VecDeque<u8>,
    start: u64,
    capacity: usize,
}

impl Ring {
    /// An empty ring at offset 0 that keeps at most `capacity` bytes (at least 1).
    /// Memory is allocated as output arrives, not up front.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            bytes: VecDeque::new(),
            start: 0,
            capacity: capacity.max(1),
        }
    }

    /// Offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the newest byte: the stream's head.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Most bytes the ring keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held now.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends `data` at the head. Bytes pushed out of the front (oldest first) are passed
    /// to `evicted` before they are dropped, so their effect can still be accounted for.
    pub fn push(&mut self, data: &[u8], mut evicted: impl FnMut(&[u8])) {
        let total = self.bytes.len() + data.len();
        let overflow = total.saturating_sub(self.capacity);
        let from_ring = overflow.min(self.bytes.len());
        if from_ring > 0 {
            let (a, b) = self.bytes.as_slices();
            let a_len = a.len().min(from_ring);
            evicted(&a[..a_len]);
            if from_ring > a_len {
                evicted(&b[..from_ring - a_len]);
            }
            self.bytes.drain(..from_ring);
        }
        let from_data = overflow - from_ring;
        if from_data > 0 {
            evicted(&data[..from_data]);
        }
        self.bytes.extend(&data[from_data..]);
        self.start += overflow as u64;
    }

    /// The held bytes in `[from, to)` (clamped to what is held), as at most two slices.
    pub fn slices(&self, from: u64, to: u64) -> (&[u8], &[u8]) {
        let from = from.clamp(self.start, self.end());
        let to = to.clamp(from, self.end());
        let lo = (from - self.start) as usize;
        let hi = (to - self.start) as usize;
        let (a, b) = self.bytes.as_slices();
        if hi <= a.len() {
            (&a[lo..hi], &[])
        } else if lo >= a.len() {
            (&b[lo - a.len()..hi - a.len()], &[])
        } else {
            (&a[lo..], &b[..hi - a.len()])
        }
    }

    /// Appends the held bytes in `[from, to)` (clamped) to `out`.
    pub fn copy_into(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        let (a, b) = self.slices(from, to);
        out.extend_from_slice(a);
        out.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_newest_bytes_and_reports_evictions_in_order() {
        let mut ring = Ring::new(4);
        let mut gone = Vec::new();
        ring.push(b"abc", |b| gone.extend_from_slice(b));
        ring.push(b"defg", |b| gone.extend_from_slice(b));
        assert_eq!(gone, b"abc");
        assert_eq!((ring.start(), ring.end()), (3, 7));
        let mut out = Vec::new();
        ring.copy_into(0, 100, &mut out);
        assert_eq!(out, b"defg");
    }

    proptest! {
        #[test]
        fn ring_matches_the_stream(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..30),
                                   cap in 1usize..64, from in 0u64..2000, len in 0u64..100) {
            let mut ring = Ring::new(cap);
            let mut stream = Vec::new();
            let mut evicted = Vec::new();
            for c in &chunks {
                ring.push(c, |b| evicted.extend_from_slice(b));
                stream.extend_from_slice(c);
            }
            prop_assert_eq!(ring.end(), stream.len() as u64);
            prop_assert!(ring.len() <= cap);
            prop_assert_eq!(&evicted[..], &stream[..ring.start() as usize]);
            let lo = from.clamp(ring.start(), ring.end());
            let hi = (from + len).clamp(lo, ring.end());
            let mut out = Vec::new();
            ring.copy_into(from, from + len, &mut out);
            prop_assert_eq!(&out[..], &stream[lo as usize..hi as usize]);
        }
    }
}
