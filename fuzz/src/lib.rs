//! Fuzz targets for every input parser of axs.
//!
//! Each target is a plain function `fn(&[u8])` that feeds arbitrary bytes to one parser
//! and asserts that parser's invariants: a failed assertion (a panic) is a finding. The
//! same functions are driven three ways:
//!
//! - by AFL++ (`fuzz/run TARGET SECONDS`, bin `afl` behind the `afl` feature);
//! - by `tests/corpus.rs` in `cargo test --workspace`: every file under
//!   `fuzz/corpus/<target>/` replayed, and a bounded number of proptest arbitrary inputs;
//! - by hand: `cargo run -p axs-fuzz --bin replay -- TARGET FILE...` (an AFL crash, say).
//!
//! Invariants every target keeps: a target never panics except to report a broken
//! invariant of the code under test, is deterministic (same bytes, same checks), and
//! bounds its own work by the input's length, so AFL's timeouts mean a slow parser.

// A fuzz target reports a finding by panicking: unwrapping a value the target itself
// built (and knows to be valid) is an assertion like any other.
#![allow(clippy::unwrap_used)]

pub mod input;
pub mod targets;

/// A target's name (its corpus folder under `fuzz/corpus/`) and its function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("http_head", targets::http::head),
    ("query", targets::http::query),
    ("conn", targets::conn::connection),
    ("json_body", targets::json::body),
    ("cli_split", targets::cli::split),
    ("term_replay", targets::term::replay),
    ("ws_control", targets::ws::control),
    ("lsp_codec", targets::lsp::codec),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
