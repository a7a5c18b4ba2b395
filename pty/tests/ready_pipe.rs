//! The ready-pipe handshake: READY, ERROR, and every failure within its bound.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use axs_pty::{signal_error, signal_ready, ReadyPipeError, DEFAULT_READY_TIMEOUT};
use rustix::fs::{Mode, OFlags, CWD};

/// A fresh directory for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("axs-pty-ready-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn fifo(&self) -> PathBuf {
        let path = self.0.join("ready");
        rustix::fs::mkfifoat(CWD, &path, Mode::RUSR | Mode::WUSR).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens the read side like the client's shell does (blocking until a writer
/// comes) and returns everything written.
fn read_all(path: &Path) -> String {
    let mut text = String::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Runs a blocking reader and `write` at once; `late` delays the reader so the
/// writer has to retry. If the writer fails, the reader is released (by opening
/// and closing the write side) so the test ends instead of hanging.
fn handshake(
    fifo: &Path,
    late: bool,
    write: impl FnOnce(&Path) -> Result<(), ReadyPipeError>,
) -> (String, Result<(), ReadyPipeError>) {
    let reader = {
        let fifo = fifo.to_path_buf();
        thread::spawn(move || {
            if late {
                // Not synchronisation: the reader comes late on purpose.
                thread::sleep(Duration::from_millis(100));
            }
            read_all(&fifo)
        })
    };
    let result = write(fifo);
    if result.is_err() {
        release_reader(fifo, &reader);
    }
    (reader.join().unwrap(), result)
}

fn release_reader(fifo: &Path, reader: &thread::JoinHandle<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        let flags = OFlags::WRONLY | OFlags::NONBLOCK;
        if rustix::fs::open(fifo, flags, Mode::empty()).is_err() {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

#[test]
fn reader_gets_ready() {
    let dir = TempDir::new();
    let fifo = dir.fifo();
    let (text, result) = handshake(&fifo, false, |p| signal_ready(p, DEFAULT_READY_TIMEOUT));
    result.unwrap();
    assert_eq!(text, "READY\n");
}

#[test]
fn late_reader_still_gets_ready() {
    let dir = TempDir::new();
    let fifo = dir.fifo();
    let (text, result) = handshake(&fifo, true, |p| signal_ready(p, DEFAULT_READY_TIMEOUT));
    result.unwrap();
    assert_eq!(text, "READY\n");
}

#[test]
fn reader_gets_error_line() {
    let dir = TempDir::new();
    let fifo = dir.fifo();
    let (text, result) = handshake(&fifo, false, |p| {
        signal_error(p, "port 8767 in use\nbye", DEFAULT_READY_TIMEOUT)
    });
    result.unwrap();
    assert_eq!(text, "ERROR port 8767 in use bye\n");
}

#[test]
fn regular_file_is_refused() {
    let dir = TempDir::new();
    let file = dir.0.join("plain");
    std::fs::write(&file, "").unwrap();
    let err = signal_ready(&file, DEFAULT_READY_TIMEOUT).unwrap_err();
    assert!(matches!(err, ReadyPipeError::NotFifo(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("ready pipe {}: not a FIFO", file.display())
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "",
        "file written to"
    );
}

#[test]
fn missing_path_is_refused() {
    let dir = TempDir::new();
    let missing = dir.0.join("nothing");
    let err = signal_error(&missing, "x", DEFAULT_READY_TIMEOUT).unwrap_err();
    assert!(matches!(err, ReadyPipeError::Missing(_)), "{err:?}");
    assert!(err.to_string().contains(&*missing.to_string_lossy()));
}

#[test]
fn fifo_without_reader_gives_up_within_the_bound() {
    let dir = TempDir::new();
    let fifo = dir.fifo();
    let bound = Duration::from_millis(300);
    let started = Instant::now();
    let err = signal_ready(&fifo, bound).unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, ReadyPipeError::NoReader(..)), "{err:?}");
    assert!(
        waited >= bound && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("ready pipe {}: no reader within 0.3 s", fifo.display())
    );
}
