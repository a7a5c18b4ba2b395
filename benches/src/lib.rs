//! Benchmarks for axs: shared helpers of the core benches (`benches/core.rs`) and of the
//! end-to-end load clients (`src/bin/axs-load.rs`, run by `benches/run`, and the LSP
//! bridge's `src/bin/axs-lsp-load.rs`).
//!
//! - [`text`]: deterministic terminal output to feed sessions (plain and colourful);
//! - [`stats`]: percentiles and medians over samples;
//! - [`proc`]: a server binary started with a ready FIFO, observed through `/proc`;
//! - [`link`]: a WebSocket to a session, or a bare pty (the ceiling), behind one trait;
//! - [`scenario`]: the end-to-end measurements;
//! - [`soak`]: every kind of load at once, every byte and answer checked (`axs-soak`);
//! - [`ttyd`]: ttyd, the reference server, started and spoken to like axs.

pub mod link;
pub mod proc;
pub mod scenario;
pub mod soak;
pub mod ttyd;

pub mod text {
    //! Deterministic terminal output: what a shell session typically prints.

    /// Words the generators draw from: short, ASCII, like source code and logs.
    const WORDS: &[&str] = &[
        "fn",
        "let",
        "mut",
        "self",
        "return",
        "match",
        "impl",
        "struct",
        "error:",
        "warning:",
        "src/main.rs",
        "Compiling",
        "axs",
        "v0.3.0",
        "=>",
        "{",
        "}",
        "Ok(())",
        "0x1f",
        "12345",
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "--release",
        "target",
    ];

    /// A tiny xorshift generator: same seed, same text, on every machine.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// `len` bytes of plain text lines (printable ASCII words, `\r\n` line ends, ≤ 100 columns).
    pub fn plain(len: usize) -> Vec<u8> {
        generate(len, false)
    }

    /// `len` bytes of colourful lines: SGR colours and bold around most words, as
    /// `ls --color`, compilers and prompts print them (about a third of the bytes are escapes).
    pub fn colourful(len: usize) -> Vec<u8> {
        generate(len, true)
    }

    fn generate(len: usize, colour: bool) -> Vec<u8> {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = Vec::with_capacity(len + 128);
        let mut column = 0;
        while out.len() < len {
            let word = WORDS[rng.below(WORDS.len())];
            if column + word.len() + 1 > 100 {
                out.extend_from_slice(b"\r\n");
                column = 0;
            }
            if colour && rng.below(3) != 0 {
                let code = 31 + rng.below(7);
                let bold = if rng.below(4) == 0 { "1;" } else { "" };
                out.extend_from_slice(format!("\x1b[{bold}{code}m{word}\x1b[0m ").as_bytes());
            } else {
                out.extend_from_slice(word.as_bytes());
                out.push(b' ');
            }
            column += word.len() + 1;
        }
        out.truncate(len);
        out
    }
}

pub mod stats {
    //! Order statistics over samples (nearest-rank, as latency reports usually use).

    use std::time::Duration;

    /// The `p`-th percentile (0..=100) of `sorted` by nearest rank; `None` when empty.
    pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
        if sorted.is_empty() {
            return None;
        }
        let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
        Some(sorted[rank.clamp(1, sorted.len()) - 1])
    }

    /// The median of `values` (the mean of the middle two for an even count); `None` when empty.
    pub fn median(values: &[f64]) -> Option<f64> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }

    /// The windows of ten samples a curve over `count` samples is reported at: those ending
    /// at 10, 100, 500, 1000, 2000, 5000, 10000 that fit, then the last ten if not among them.
    pub fn curve_windows(count: usize) -> Vec<std::ops::Range<usize>> {
        const ENDS: [usize; 7] = [10, 100, 500, 1000, 2000, 5000, 10000];
        let mut windows: Vec<_> = ENDS
            .iter()
            .filter(|&&end| end <= count)
            .map(|&end| end - 10..end)
            .collect();
        if count > 0 && windows.last().is_none_or(|w| w.end != count) {
            windows.push(count.saturating_sub(10)..count);
        }
        windows
    }

    /// Durations as microseconds, sorted ascending.
    pub fn sorted_micros(samples: &[Duration]) -> Vec<f64> {
        let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::stats::{curve_windows, median, percentile};
    use super::text::{colourful, plain};

    #[test]
    fn generators_are_exact_and_deterministic() {
        assert_eq!(plain(1000).len(), 1000);
        assert_eq!(colourful(4096), colourful(4096));
        let c = colourful(64 * 1024);
        let escapes = c.iter().filter(|&&b| b == 0x1b).count();
        assert!(escapes > 1000, "colourful text has colours: {escapes}");
        assert!(plain(64 * 1024).iter().all(|&b| b != 0x1b));
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn curve_windows_are_tens_at_round_counts_and_the_end() {
        assert_eq!(curve_windows(100), vec![0..10, 90..100]);
        assert_eq!(
            curve_windows(1000),
            vec![0..10, 90..100, 490..500, 990..1000]
        );
        assert_eq!(curve_windows(250), vec![0..10, 90..100, 240..250]);
        assert_eq!(curve_windows(5), vec![0..5]);
        assert!(curve_windows(0).is_empty());
    }
}
