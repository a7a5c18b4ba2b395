//! Code that runs in the forked child between `fork` and `exec`.
//!
//! Only async-signal-safe calls are allowed here: the parent may have had other
//! threads holding locks (the allocator's included) at the moment of the fork, so
//! nothing in this module allocates, locks, or touches std's buffered I/O.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Environment variable that, set to `1`, skips `close_range` and uses the fallback sweep.
pub const NO_CLOSE_RANGE_ENV: &str = "AXS_PTY_NO_CLOSE_RANGE";

/// How the child marks every descriptor above 2 close-on-exec before `exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FdSweep {
    /// `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)`, falling back to [`FdSweep::ProcWalk`].
    #[default]
    Auto,
    /// Test switch: walk `/proc/self/fd` (falling back to [`FdSweep::LimitLoop`]).
    ProcWalk,
    /// Test switch: `fcntl` every descriptor below the soft `RLIMIT_NOFILE` (capped at
    /// 2^20; misses only descriptors opened before the limit was lowered).
    LimitLoop,
}

impl FdSweep {
    /// `ProcWalk` when `AXS_PTY_NO_CLOSE_RANGE=1` is set in the environment, else `Auto`.
    pub fn from_env() -> FdSweep {
        if std::env::var_os(NO_CLOSE_RANGE_ENV).is_some_and(|v| v == "1") {
            FdSweep::ProcWalk
        } else {
            FdSweep::Auto
        }
    }
}

/// Upper bound for the descriptor loop when the soft limit is huge or unlimited.
const LIMIT_LOOP_CAP: u64 = 1 << 20;

/// Everything the pre-exec hook needs, computed in the parent before the fork.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSetup {
    pub sweep: FdSweep,
    /// Make descriptor 0 (a pty slave) the new session's controlling terminal.
    pub controlling_tty: bool,
    /// Soft `RLIMIT_NOFILE`, capped, read in the parent (the last-resort sweep bound).
    pub fd_limit: i32,
}

impl ChildSetup {
    /// Reads the descriptor limit now, so the child does not have to; the child will
    /// take descriptor 0 (a pty slave) as its controlling terminal.
    pub fn new(sweep: FdSweep) -> ChildSetup {
        ChildSetup {
            controlling_tty: true,
            ..ChildSetup::without_tty(sweep)
        }
    }

    /// As [`ChildSetup::new`], for a child whose descriptors 0-2 are pipes: a new session
    /// without a controlling terminal.
    pub fn without_tty(sweep: FdSweep) -> ChildSetup {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let soft = lim.current.unwrap_or(LIMIT_LOOP_CAP).min(LIMIT_LOOP_CAP);
        ChildSetup {
            sweep,
            controlling_tty: false,
            fd_limit: i32::try_from(soft).unwrap_or(i32::MAX),
        }
    }

    /// The pre-exec hook: signals, new session, controlling tty (when asked), descriptor
    /// sweep.
    ///
    /// std has already placed the slave (or the pipes) on descriptors 0, 1 and 2 when
    /// this runs.
    pub fn run(&self) -> io::Result<()> {
        reset_signals();
        rustix::process::setsid()?;
        if self.controlling_tty {
            set_controlling_tty()?;
        }
        self.sweep_fds();
        Ok(())
    }

    fn sweep_fds(&self) {
        match self.sweep {
            FdSweep::Auto => {
                if close_range_cloexec().is_err() && proc_walk().is_err() {
                    limit_loop(self.fd_limit);
                }
            }
            FdSweep::ProcWalk => {
                if proc_walk().is_err() {
                    limit_loop(self.fd_limit);
                }
            }
            FdSweep::LimitLoop => limit_loop(self.fd_limit),
        }
    }
}

/// Makes descriptor 0 (a pty slave) the controlling terminal of the new session.
fn set_controlling_tty() -> io::Result<()> {
    // SAFETY: descriptor 0 is the pty slave (std dup2'ed it there before running
    // pre-exec hooks); TIOCSCTTY takes an int argument, 0 = do not steal.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY as _, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores default dispositions for every signal and empties the signal mask.
///
/// Handlers are reset by `exec` anyway, but ignored signals (SIGPIPE in a Rust
/// parent, SIGHUP under nohup) and the mask would otherwise be inherited.
fn reset_signals() {
    for sig in 1..=64 {
        // SIGKILL and SIGSTOP cannot change; libc-reserved numbers just fail.
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            set_handler(sig, libc::SIG_DFL);
        }
    }
    // SAFETY: sigprocmask is async-signal-safe; the set is initialised by sigemptyset.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Set by [`on_sigsys`] when seccomp traps `close_range` (the child's own copy).
static SIGSYS_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigsys(_sig: libc::c_int) {
    SIGSYS_SEEN.store(true, Ordering::Relaxed);
}

/// Marks 3.. close-on-exec in one call (Linux 5.11+); close-on-exec rather than close
/// so std's exec-error pipe survives until `exec` and reports a failure.
///
/// Kernels before 5.11 answer ENOSYS or EINVAL, container filters usually EPERM.
/// Android's app filter instead traps unknown syscalls with SIGSYS, whose default
/// action would kill the child before `exec`: a handler catches it for the call's
/// duration. After such a trap the syscall did not run and the return register
/// holds the syscall number, so only an exact 0 with no SIGSYS counts as success.
fn close_range_cloexec() -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    set_handler(
        libc::SIGSYS,
        on_sigsys as extern "C" fn(libc::c_int) as libc::sighandler_t,
    );
    // SAFETY: raw syscall with integer arguments only; it touches no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    let err = io::Error::last_os_error();
    set_handler(libc::SIGSYS, libc::SIG_DFL);
    if rc == 0 && !SIGSYS_SEEN.load(Ordering::Relaxed) {
        Ok(())
    } else if rc == -1 {
        Err(err)
    } else {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// Installs `handler` (or SIG_DFL / SIG_IGN) for `sig`, ignoring failure.
fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: sigaction is async-signal-safe; the struct is zeroed then filled in;
    // the only handler passed in (on_sigsys) does one atomic store.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

/// Marks every open descriptor above 2 close-on-exec, found by reading
/// `/proc/self/fd` with raw `getdents64` into a stack buffer (no allocation).
fn proc_walk() -> io::Result<()> {
    let path = c"/proc/self/fd";
    // SAFETY: open is async-signal-safe; the path is a static NUL-terminated string.
    let dir = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir == -1 {
        return Err(io::Error::last_os_error());
    }
    let result = walk_entries(dir);
    // SAFETY: `dir` is the descriptor opened above and is not used after this.
    unsafe { libc::close(dir) };
    result
}

/// Reads directory entries of `dir` until the end, setting FD_CLOEXEC on each number.
fn walk_entries(dir: libc::c_int) -> io::Result<()> {
    // u64 elements keep the buffer 8-byte aligned, as linux_dirent64 requires.
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: getdents64 writes at most `len` bytes into `buf`, which we own.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the kernel initialised the first `n` bytes of `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        for fd in DirentNames::new(bytes).filter_map(parse_fd) {
            if fd > 2 && fd != dir {
                set_cloexec(fd);
            }
        }
    }
}

/// Iterator over the names in a buffer of `linux_dirent64` records.
struct DirentNames<'a> {
    bytes: &'a [u8],
}

impl<'a> DirentNames<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        DirentNames { bytes }
    }
}

impl<'a> Iterator for DirentNames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // Layout: d_ino u64 @0, d_off i64 @8, d_reclen u16 @16, d_type u8 @18, d_name @19.
        const NAME: usize = 19;
        let reclen = usize::from(u16::from_ne_bytes([
            *self.bytes.get(16)?,
            *self.bytes.get(17)?,
        ]));
        if reclen <= NAME || reclen > self.bytes.len() {
            return None;
        }
        let (record, rest) = self.bytes.split_at(reclen);
        self.bytes = rest;
        let name = &record[NAME..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(&name[..end])
    }
}

/// Parses a decimal descriptor number; `.` and `..` give `None`.
fn parse_fd(name: &[u8]) -> Option<libc::c_int> {
    if name.is_empty() {
        return None;
    }
    let mut fd: libc::c_int = 0;
    for &b in name {
        if !b.is_ascii_digit() {
            return None;
        }
        fd = fd
            .checked_mul(10)?
            .checked_add(libc::c_int::from(b - b'0'))?;
    }
    Some(fd)
}

/// Last resort without `/proc`: every descriptor number below the soft limit.
fn limit_loop(limit: i32) {
    for fd in 3..limit {
        set_cloexec(fd);
    }
}

fn set_cloexec(fd: libc::c_int) {
    // SAFETY: fcntl is async-signal-safe; on a closed number it fails with EBADF,
    // which is fine. FD_CLOEXEC is the only descriptor flag, so setting it alone is exact.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_descriptor_names() {
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"1234"), Some(1234));
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b".."), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn walks_dirent_records() {
        let mut buf = Vec::new();
        for name in [&b"."[..], b"..", b"17"] {
            let reclen = (19 + name.len() + 1).next_multiple_of(8);
            let mut rec = vec![0u8; reclen];
            rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
            rec[19..19 + name.len()].copy_from_slice(name);
            buf.extend_from_slice(&rec);
        }
        let names: Vec<&[u8]> = DirentNames::new(&buf).collect();
        assert_eq!(names, vec![&b"."[..], b"..", b"17"]);
    }
}
