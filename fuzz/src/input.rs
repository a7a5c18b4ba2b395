//! Reading structured choices out of a fuzzer's flat byte string.
//!
//! Invariant: every read succeeds (an exhausted input reads as zeros and empty slices),
//! so a target never has to reject an input, and the bytes a target consumes are a
//! prefix of the input: AFL's mutations near the start change choices, later ones data.

/// A cursor over the fuzzer's input.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { rest: data }
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, 0 when none is left.
    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .rest
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.rest = rest;
        first
    }

    /// The next two bytes as a little-endian number.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// The next `n` bytes (fewer when the input ends).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// A length byte, then that many bytes.
    pub fn sized(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.bytes(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// `data` cut into pieces whose lengths come from `sizes` (each 1..=256, cycling), so a
/// stateful parser is fed the same bytes in many different splits.
pub fn pieces<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .map_or(256, |s| usize::from(*s) + 1);
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        out.push(piece);
        rest = tail;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_zero_and_empty() {
        let mut input = Input::new(&[1, 2, 3]);
        assert_eq!(input.byte(), 1);
        assert_eq!(input.u16(), 0x0302);
        assert_eq!(input.byte(), 0);
        assert!(input.bytes(5).is_empty());
        assert!(input.is_empty());
    }

    #[test]
    fn pieces_cover_the_data_in_order() {
        let data: Vec<u8> = (0..=255).collect();
        let cut = pieces(&data, &[0, 9, 200]);
        assert_eq!(cut.concat(), data);
        assert_eq!(cut[0].len(), 1);
        assert_eq!(cut[1].len(), 10);
        assert!(pieces(&[], &[3]).is_empty());
        assert_eq!(pieces(&data, &[]).len(), 1);
    }
}
