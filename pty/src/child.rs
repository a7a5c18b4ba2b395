//! Code that runs in the child between its creation (see `launch.rs`) and `exec`.
//!
//! Only async-signal-safe calls are allowed here: the child of a vfork-style `clone`
//! runs on the parent's memory while the parent's other threads keep running, and the
//! child of a `fork` may have copied locks (the allocator's included) held at that
//! moment; so nothing in this module allocates, locks, or touches std's buffered I/O,
//! and the only memory it writes is its own stack and [`SIGSYS_COUNT`] (an atomic).
//!
//! Order of the steps (each needs the previous one): every signal disposition back to
//! the default, then the mask emptied (no handler of the parent may run in the child);
//! the standard descriptors; the working directory; a new session; the controlling
//! terminal (needs the session and descriptor 0); the close-on-exec sweep.

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Everything the child's steps need besides the descriptors and directory, computed
/// in the parent before the child exists.
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

    /// The child's steps before `exec`: signals, `stdio` onto descriptors 0, 1 and 2,
    /// `cwd`, new session, controlling tty (when asked), descriptor sweep.
    ///
    /// Every `stdio` descriptor must be above 2 (so `dup2` always makes a new,
    /// inheritable copy) and may be close-on-exec. Allocation-free: an `io::Error`
    /// made from an errno is a plain integer.
    pub fn run(&self, stdio: &[RawFd; 3], cwd: Option<&CStr>) -> io::Result<()> {
        reset_signals();
        for (target, &source) in (0..).zip(stdio) {
            // SAFETY: dup2 is async-signal-safe and takes integers; `source` is open
            // in the child's copy of the parent's descriptor table.
            if unsafe { libc::dup2(source, target) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(dir) = cwd {
            // SAFETY: chdir is async-signal-safe; `dir` is NUL-terminated and owned by
            // the parent, which outlives the child's use of it (see launch.rs).
            if unsafe { libc::chdir(dir.as_ptr()) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
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
    // SAFETY: descriptor 0 is the pty slave (`run` dup2'ed it there); TIOCSCTTY takes
    // an int argument, 0 = do not steal.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY as _, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Size in bytes of the kernel's signal set (`_NSIG / 8`), as the raw `rt_sig*` calls
/// want it (libc's `sigset_t` is larger on glibc).
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
pub(crate) const KERNEL_SIGSET_BYTES: usize = 16;
/// Size in bytes of the kernel's signal set (`_NSIG / 8`), as the raw `rt_sig*` calls
/// want it (libc's `sigset_t` is larger on glibc).
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
pub(crate) const KERNEL_SIGSET_BYTES: usize = 8;

/// Highest signal number.
const LAST_SIGNAL: libc::c_int = (KERNEL_SIGSET_BYTES * 8) as libc::c_int;

/// Restores default dispositions for every signal, then empties the signal mask.
///
/// Handlers are reset by `exec` anyway, but the child runs before that with the
/// parent's handlers, which must never run on the parent's memory; and ignored
/// signals (SIGPIPE in a Rust parent, SIGHUP under nohup) and the mask would
/// otherwise be inherited by the program. Raw syscalls, as glibc's and musl's own
/// `posix_spawn` children do: they reach libc's internal signals too, and take none
/// of libc's locks (musl's `sigaction(SIGABRT)` takes one).
fn reset_signals() {
    // All zeroes is SIG_DFL, no flags, empty mask in every architecture's layout of
    // the kernel's `struct sigaction`; 64 bytes cover the largest.
    let default_action = [0u64; 8];
    for sig in 1..=LAST_SIGNAL {
        // SIGKILL and SIGSTOP cannot change; the kernel refuses them with EINVAL.
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: rt_sigaction reads the (valid, large enough) buffer and writes
            // nothing (no old action); it is a plain syscall, async-signal-safe.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    KERNEL_SIGSET_BYTES,
                )
            };
        }
    }
    set_signal_mask(&[0; 2]);
}

/// Replaces the calling thread's signal mask with `mask` (raw: libc's internal signals
/// included); returns the previous mask.
pub(crate) fn set_signal_mask(mask: &[u64; 2]) -> [u64; 2] {
    let mut old = [0u64; 2];
    // SAFETY: rt_sigprocmask reads KERNEL_SIGSET_BYTES (at most 16) from `mask` and
    // writes as many to `old`, both 16 bytes long; it is async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            mask.as_ptr(),
            old.as_mut_ptr(),
            KERNEL_SIGSET_BYTES,
        )
    };
    old
}

/// Counts SIGSYS traps in children ([`on_sigsys`]). A vfork-style child shares it with
/// the parent and with concurrent children, so a child compares it before and after
/// its own call: a change means a trap (its own, or rarely another child's, which only
/// sends it to the safe fallback). A forked child has its own copy.
static SIGSYS_COUNT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigsys(_sig: libc::c_int) {
    SIGSYS_COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Marks 3.. close-on-exec in one call (Linux 5.11+); close-on-exec rather than close
/// so the fork path's exec-error pipe survives until `exec` and reports a failure.
///
/// Kernels before 5.11 answer ENOSYS or EINVAL, container filters usually EPERM.
/// Android's app filter instead traps unknown syscalls with SIGSYS, whose default
/// action would kill the child before `exec`: a handler catches it for the call's
/// duration. After such a trap the syscall did not run and the return register
/// holds the syscall number, so only an exact 0 with no SIGSYS counts as success.
fn close_range_cloexec() -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let traps_before = SIGSYS_COUNT.load(Ordering::Relaxed);
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
    if rc == 0 && SIGSYS_COUNT.load(Ordering::Relaxed) == traps_before {
        Ok(())
    } else if rc == -1 {
        Err(err)
    } else {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// Installs `handler` (or SIG_DFL) for `sig`, ignoring failure. Through libc, which
/// supplies the signal-return trampoline a handler needs; used for SIGSYS only, for
/// which no libc takes a lock.
fn set_handler(sig: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: sigaction is async-signal-safe; the struct is zeroed then filled in;
    // the only handler passed in (on_sigsys) does one atomic add.
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
