//! The ready-pipe handshake: tell a waiting client that start-up finished or failed.
//!
//! A client blocked in `open` on the FIFO's read side would hang forever if no
//! writer ever came, so every start-up outcome writes one line: `READY\n` or
//! `ERROR <reason>\n`. The write end is opened without blocking and retried while
//! no reader is present, up to a bound.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The environment variable naming the FIFO; spawned programs never see it.
pub const READY_PIPE_ENV: &str = "AXS_READY_PIPE";

/// How long to wait for a reader by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest pause between two open attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The FIFO path from `AXS_READY_PIPE`, if set and non-empty.
pub fn path_from_env() -> Option<PathBuf> {
    std::env::var_os(READY_PIPE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Why the ready line could not be delivered.
#[derive(Debug)]
pub enum ReadyPipeError {
    /// Nothing exists at the path.
    Missing(PathBuf),
    /// The path exists but is not a FIFO.
    NotFifo(PathBuf),
    /// No process opened the read side within the bound.
    NoReader(PathBuf, Duration),
    /// Opening the write side failed for another reason.
    Open(PathBuf, io::Error),
    /// Writing the line failed (the reader went away, for example).
    Write(PathBuf, io::Error),
}

impl fmt::Display for ReadyPipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyPipeError::Missing(p) => write!(f, "ready pipe {}: no such file", p.display()),
            ReadyPipeError::NotFifo(p) => write!(f, "ready pipe {}: not a FIFO", p.display()),
            ReadyPipeError::NoReader(p, waited) => write!(
                f,
                "ready pipe {}: no reader within {}",
                p.display(),
                seconds(*waited)
            ),
            ReadyPipeError::Open(p, e) => {
                write!(f, "ready pipe {}: cannot open: {e}", p.display())
            }
            ReadyPipeError::Write(p, e) => {
                write!(f, "ready pipe {}: write failed: {e}", p.display())
            }
        }
    }
}

impl std::error::Error for ReadyPipeError {}

/// "10 s", or "0.3 s" for a bound below ten seconds that is not whole.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Writes `READY\n` to the FIFO at `path`, waiting up to `timeout` for a reader.
pub fn signal_ready(path: &Path, timeout: Duration) -> Result<(), ReadyPipeError> {
    deliver(path, b"READY\n", timeout)
}

/// Writes `ERROR <reason>\n` (newlines in `reason` become spaces) to the FIFO at `path`.
pub fn signal_error(path: &Path, reason: &str, timeout: Duration) -> Result<(), ReadyPipeError> {
    let line = format!("ERROR {}\n", reason.replace(['\n', '\r'], " "));
    deliver(path, line.as_bytes(), timeout)
}

fn deliver(path: &Path, line: &[u8], timeout: Duration) -> Result<(), ReadyPipeError> {
    check_fifo(path)?;
    let fd = open_writer(path, timeout)?;
    let write_err = |e| ReadyPipeError::Write(path.to_path_buf(), e);
    // Blocking from here: the line is far below PIPE_BUF, so the write is atomic.
    crate::set_nonblocking(std::os::fd::AsFd::as_fd(&fd), false).map_err(write_err)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(line).map_err(write_err)
}

fn check_fifo(path: &Path) -> Result<(), ReadyPipeError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => Ok(()),
        Ok(_) => Err(ReadyPipeError::NotFifo(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ReadyPipeError::Missing(path.to_path_buf()))
        }
        Err(e) => Err(ReadyPipeError::Open(path.to_path_buf(), e)),
    }
}

/// Opens the write side without blocking; ENXIO means "no reader yet": retry with
/// a growing pause until `timeout`.
fn open_writer(path: &Path, timeout: Duration) -> Result<std::os::fd::OwnedFd, ReadyPipeError> {
    let flags = OFlags::WRONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NXIO) => {}
            Err(Errno::INTR) => continue,
            Err(Errno::NOENT) => return Err(ReadyPipeError::Missing(path.to_path_buf())),
            Err(e) => return Err(ReadyPipeError::Open(path.to_path_buf(), e.into())),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadyPipeError::NoReader(path.to_path_buf(), timeout));
        }
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bounds() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
    }
}
