//! axs-scan: a fixed amount of the terminal scan's work, for instruction counting under
//! `valgrind --tool=callgrind` (repeatable on a noisy machine, unlike wall-clock benches).
//!
//! Usage: `axs-scan plain|colour advance|ingest|plan [MIB]` (MIB defaults to 32).
//! - `advance`: `TermState::advance` over the text in 64 KiB pieces (the scan alone);
//! - `ingest`: `Session::pty_output` into a session with a full ring, in 64 KiB reads (what
//!   a server does per pty read: ring copy plus the scan of the bytes that leave the ring);
//! - `plan`: `plan_replay` over 256 KiB windows of the text (what an attach scans).
//!
//! The text is generated before the work, which runs in `scan_work` alone: count only it with
//! `valgrind --tool=callgrind --toggle-collect='axs_scan::scan_work' target/release/axs-scan ...`.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use axs_benches::text;
use axs_core::session::{Session, SessionConfig};
use axs_core::term::{plan_replay, TermState};
use axs_core::time::Time;

const MIB: usize = 1024 * 1024;
const READ: usize = 64 * 1024;
const WINDOW: usize = 256 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, mode) = match (args.first(), args.get(1)) {
        (Some(k), Some(m)) => (k.as_str(), m.as_str()),
        _ => return usage(),
    };
    let mib = match args.get(2).map(|s| s.parse::<usize>()) {
        None => 32,
        Some(Ok(n)) => n,
        Some(Err(_)) => return usage(),
    };
    let data = match kind {
        "plain" => text::plain(mib * MIB),
        "colour" => text::colourful(mib * MIB),
        _ => return usage(),
    };
    if !matches!(mode, "advance" | "ingest" | "plan") {
        return usage();
    }
    let started = Instant::now();
    scan_work(&data, mode);
    let took = started.elapsed();
    eprintln!(
        "{kind} {mode}: {:.3} ms per MiB (wall clock, noisy)",
        took.as_secs_f64() * 1e3 / mib.max(1) as f64
    );
    ExitCode::SUCCESS
}

/// The measured work (kept out of line so that callgrind can count it alone).
#[inline(never)]
fn scan_work(data: &[u8], mode: &str) {
    match mode {
        "advance" => {
            let mut state = TermState::new();
            for piece in data.chunks(READ) {
                state.advance(black_box(piece));
            }
            black_box(&state);
        }
        "ingest" => {
            let mut session = Session::new(SessionConfig::default());
            for piece in data.chunks(READ) {
                session.pty_output(black_box(piece), Time::ZERO);
                while session.poll_action().is_some() {}
            }
            black_box(&session);
        }
        "plan" => {
            let start = TermState::new();
            for window in data.chunks(WINDOW) {
                black_box(plan_replay(&start, &[black_box(window)], 1024));
            }
        }
        _ => {}
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: axs-scan plain|colour advance|ingest|plan [MIB]");
    ExitCode::FAILURE
}
