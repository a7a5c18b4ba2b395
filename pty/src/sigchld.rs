//! Process-wide SIGCHLD notification as a readable descriptor (the self-pipe trick).
//!
//! A reactor-based runtime registers [`SigchldPipe::fd`] for readability; when it
//! fires, it calls [`SigchldPipe::drain`] and then `try_wait` for each pid it owns.
//! Signals coalesce, so one wake-up may stand for several exits: always check all.
//! Never reap with `waitpid(-1)`: `spawn` reaps a child whose `exec` failed itself, and
//! a wildcard wait would steal that status (and other libraries' children).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use rustix::pipe::PipeFlags;

/// The write end, read by the signal handler (-1 until installed).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static PIPE: OnceLock<SigchldPipe> = OnceLock::new();
static INSTALL: Mutex<()> = Mutex::new(());

/// The process-wide SIGCHLD self-pipe; obtain it with [`SigchldPipe::get`].
#[derive(Debug)]
pub struct SigchldPipe {
    read: OwnedFd,
    /// Kept open for the life of the process: the handler writes to it.
    _write: OwnedFd,
}

impl SigchldPipe {
    /// Returns the pipe, creating it and installing the SIGCHLD handler on first use.
    ///
    /// This replaces any SIGCHLD handler installed before.
    pub fn get() -> io::Result<&'static SigchldPipe> {
        if let Some(pipe) = PIPE.get() {
            return Ok(pipe);
        }
        let _guard = INSTALL.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(pipe) = PIPE.get() {
            return Ok(pipe);
        }
        let flags = PipeFlags::CLOEXEC | PipeFlags::NONBLOCK;
        let (read, write) = rustix::pipe::pipe_with(flags)?;
        WRITE_FD.store(std::os::fd::AsRawFd::as_raw_fd(&write), Ordering::SeqCst);
        install_handler()?;
        Ok(PIPE.get_or_init(|| SigchldPipe {
            read,
            _write: write,
        }))
    }

    /// The non-blocking read end: readable after at least one SIGCHLD.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe so the next SIGCHLD makes it readable again.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            match rustix::io::read(&self.read, &mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(rustix::io::Errno::INTR) => continue,
                _ => return,
            }
        }
    }
}

fn install_handler() -> io::Result<()> {
    // SAFETY: the action struct is fully initialised; the handler only does
    // async-signal-safe work (an atomic load and write(2)) and preserves errno.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigchld as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut()) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_sigchld(_sig: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: errno is thread-local and write(2) is async-signal-safe; a full pipe
    // (EAGAIN) is fine since one pending byte is enough to wake the reader.
    unsafe {
        let errno = errno_location();
        let saved = *errno;
        libc::write(fd, [1u8].as_ptr().cast(), 1);
        *errno = saved;
    }
}

#[cfg(target_os = "android")]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: bionic's accessor for the calling thread's errno.
    unsafe { libc::__errno() }
}

#[cfg(not(target_os = "android"))]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: glibc/musl accessor for the calling thread's errno.
    unsafe { libc::__errno_location() }
}
