//! Every timeout runs on monotonic time, so a wall clock that jumps (NTP, a user changing
//! the date, a phone's network time) moves no deadline: the core reads no clock at all
//! (time comes in as `axs_core::time::Time`), and the runtimes make that `Time` from
//! `std::time::Instant` (`CLOCK_MONOTONIC`) in `host/src/clock.rs`.
//!
//! This test reads the sources of the crates a server is built from and fails on any use
//! of the wall clock there, except the one that is meant to be: the log line's timestamp.
//! It also keeps the dependencies free of wall-clock crates.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// Wall-clock APIs and crates, as they appear in source.
const WALL_CLOCK: &[&str] = &[
    "SystemTime",
    "UNIX_EPOCH",
    "chrono",
    "CLOCK_REALTIME",
    "ClockId::Realtime",
    "gettimeofday",
    "libc::time(",
    "OffsetDateTime",
    "jiff::",
    "Utc::now",
    "Local::now",
];

/// Any clock at all: the core takes time as an input and reads none.
const ANY_CLOCK: &[&str] = &["Instant", "clock_gettime", "ClockId"];

/// Crates of the wall clock that must not be dependencies (in `Cargo.lock`).
const WALL_CLOCK_CRATES: &[&str] = &["chrono", "time", "jiff", "humantime"];

/// The one allowed use of the wall clock: `(file, pattern, occurrences)`. The log line's
/// timestamp is for people reading the log, and no decision depends on it.
const ALLOWED: &[(&str, &str, usize)] = &[
    ("pty/src/logging.rs", "SystemTime", 2),
    ("pty/src/logging.rs", "UNIX_EPOCH", 2),
];

/// The crates a server binary is built from, and whether each may read a clock.
const CRATES: &[(&str, &[&str])] = &[
    ("core/src", ANY_CLOCK),
    ("host/src", &[]),
    ("pty/src", &[]),
    ("runtime-smol/src", &[]),
    ("runtime-threads/src", &[]),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// `(file, pattern, occurrences)` for every forbidden pattern found in `crates`.
fn clock_uses(root: &Path, crates: &[(&str, &[&str])]) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    for (dir, extra) in crates {
        for file in rust_files(&root.join(dir)) {
            let text = fs::read_to_string(&file).unwrap();
            let name = file.strip_prefix(root).unwrap().display().to_string();
            for pattern in WALL_CLOCK.iter().chain(extra.iter()) {
                let n = text.matches(pattern).count();
                if n > 0 {
                    found.push((name.clone(), pattern.to_string(), n));
                }
            }
        }
    }
    found
}

/// The uses of `found` not in [`ALLOWED`].
fn unexpected(found: &[(String, String, usize)]) -> Vec<String> {
    found
        .iter()
        .filter(|(file, pattern, n)| !ALLOWED.contains(&(file.as_str(), pattern.as_str(), *n)))
        .map(|(file, pattern, n)| format!("{file}: `{pattern}` x{n}"))
        .collect()
}

#[test]
fn no_wall_clock_in_the_core_or_the_runtimes_but_the_log_timestamp() {
    let found = clock_uses(&workspace(), CRATES);
    let bad = unexpected(&found);
    assert!(
        bad.is_empty(),
        "wall-clock (or, in core/src, any clock) use where time must be monotonic:\n{}\n\
         Deadlines must come from axs_core::time::Time, made from Instant in host/src/clock.rs. \
         If a new use is only for display (like the log timestamp), add it to ALLOWED with why.",
        bad.join("\n")
    );
    for allowed in ALLOWED {
        let present = found
            .iter()
            .any(|(f, p, n)| (f.as_str(), p.as_str(), *n) == *allowed);
        assert!(
            present,
            "ALLOWED lists {allowed:?}, which is no longer there: remove it from the list"
        );
    }
}

#[test]
fn no_wall_clock_crate_in_the_dependencies() {
    let lock = fs::read_to_string(workspace().join("Cargo.lock")).unwrap();
    let present: Vec<&str> = WALL_CLOCK_CRATES
        .iter()
        .copied()
        .filter(|c| lock.contains(&format!("name = \"{c}\"\n")))
        .collect();
    assert!(
        present.is_empty(),
        "wall-clock crates in Cargo.lock: {present:?}; the server's deadlines must not depend \
         on them (if one is needed for display only, scope this check to what it serves)"
    );
}

#[test]
fn the_check_sees_a_wall_clock_use() {
    let dir = std::env::temp_dir().join(format!("axs-monotonic-{}", std::process::id()));
    fs::create_dir_all(dir.join("core/src")).unwrap();
    fs::write(
        dir.join("core/src/bad.rs"),
        "let t = std::time::SystemTime::now();\nlet i = std::time::Instant::now();\n",
    )
    .unwrap();
    let found = clock_uses(&dir, &[("core/src", ANY_CLOCK)]);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        unexpected(&found),
        vec![
            "core/src/bad.rs: `SystemTime` x1",
            "core/src/bad.rs: `Instant` x1"
        ]
    );
}
