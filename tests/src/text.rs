//! Byte-stream helpers: searching, escape stripping, numbered-line checks, printable tails.

/// Position of the first `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The last `max` bytes of `b`, escaped for a failure message.
pub fn show_tail(b: &[u8], max: usize) -> String {
    let start = b.len().saturating_sub(max);
    format!("{:?}", String::from_utf8_lossy(&b[start..]))
}

/// `b` without escape sequences (CSI, OSC, DCS and two-byte ESC sequences).
pub fn strip_escapes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != 0x1b {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b.get(i) {
            Some(b'[') => {
                i += 1;
                while i < b.len() && !(0x40..=0x7e).contains(&b[i]) {
                    i += 1;
                }
                i += 1;
            }
            Some(b']') | Some(b'P') | Some(b'_') | Some(b'^') => {
                while i < b.len() && b[i] != 0x07 && !(b[i] == 0x1b && b.get(i + 1) == Some(&b'\\'))
                {
                    i += 1;
                }
                i += if b.get(i) == Some(&0x07) { 1 } else { 2 };
            }
            Some(b'(') | Some(b')') => i += 2,
            Some(_) => i += 1,
            None => {}
        }
    }
    out
}

/// DEC private modes set (`h`) or reset (`l`) by `ESC [ ? ... h|l`, in order.
pub fn private_modes(b: &[u8]) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = find(&b[i..], b"\x1b[?") {
        let start = i + p + 3;
        let mut j = start;
        while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') {
            j += 1;
        }
        if let Some(&fin) = b.get(j) {
            if fin == b'h' || fin == b'l' {
                for n in String::from_utf8_lossy(&b[start..j]).split(';') {
                    if let Ok(n) = n.parse() {
                        out.push((n, fin == b'h'));
                    }
                }
            }
        }
        i = j.min(b.len());
    }
    out
}

/// True when mode `n` is on after the sequences in `b`.
pub fn mode_on(b: &[u8], n: u32) -> bool {
    private_modes(b)
        .iter()
        .rev()
        .find(|(m, _)| *m == n)
        .is_some_and(|(_, on)| *on)
}

/// The complete lines of `b` (split on `\n`, `\r` dropped, escapes stripped); the first one
/// is flagged when it may be partial (the stream did not start at a line start) and the
/// unfinished last line is left out.
pub fn complete_lines(b: &[u8]) -> Vec<String> {
    let clean = strip_escapes(b);
    let mut lines: Vec<String> = clean
        .split(|&c| c == b'\n')
        .map(|l| String::from_utf8_lossy(l).replace('\r', ""))
        .collect();
    lines.pop();
    lines
}

/// Checks that the lines of `b` matching `prefix<number>` are consecutive numbers, each once.
///
/// The first line may be a partial line (a replay cut) and is skipped if it does not parse.
/// Returns the numbers seen.
pub fn check_numbered(b: &[u8], prefix: &str) -> Result<Vec<u64>, String> {
    let lines = complete_lines(b);
    let mut nums: Vec<u64> = Vec::new();
    for (idx, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix(prefix) else {
            continue;
        };
        let Ok(n) = rest.trim().parse::<u64>() else {
            if idx == 0 {
                continue;
            }
            return Err(format!("line {idx} {line:?} is not {prefix}<number>"));
        };
        nums.push(n);
    }
    // With an empty prefix the first line can be a partial number (a suffix of the real one).
    if prefix.is_empty() && nums.len() >= 2 && nums[0] + 1 != nums[1] {
        nums.remove(0);
    }
    for w in nums.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(format!(
                "numbered lines not contiguous: {prefix}{} followed by {prefix}{} ({} lines seen, first {:?}, last {:?})",
                w[0],
                w[1],
                nums.len(),
                nums.first(),
                nums.last()
            ));
        }
    }
    Ok(nums)
}

/// A small deterministic PRNG (xorshift64*) for pauses, choices and test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A generator seeded from the clock (the seed is printed so a failure can be replayed).
    pub fn from_clock(what: &str) -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        eprintln!("{what}: rng seed {seed}");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi` (`lo` when empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// FNV-1a 64, enough to compare two byte streams in a message.
pub fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Index of the first byte where `a` and `b` differ (or the shorter length).
pub fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_lines_allow_a_partial_first_line() {
        assert_eq!(
            check_numbered(b"23\r\n124\r\n125\r\n12", "").ok(),
            Some(vec![124, 125])
        );
        assert!(check_numbered(b"1\r\n2\r\n4\r\n", "").is_err());
        assert!(check_numbered(b"line 1\r\nline 1\r\n", "line ").is_err());
        assert_eq!(
            check_numbered(b"ne 3\r\n$ x\r\nline 4\r\n\x1b[0mline 5\r\n", "line ").ok(),
            Some(vec![4, 5])
        );
    }

    #[test]
    fn modes_and_escapes() {
        let b = b"\x1b[?1049;2004h\x1b]7777;x\x07ab\x1b[31mc";
        assert!(mode_on(b, 1049) && mode_on(b, 2004) && !mode_on(b, 1));
        assert_eq!(strip_escapes(b), b"abc");
        assert!(!mode_on(b"\x1b[?2004h\x1b[?2004l", 2004));
    }
}
