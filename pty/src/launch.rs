//! Starting a prepared program in a new process at a cost that does not grow with the
//! parent: a vfork-style `clone(CLONE_VM | CLONE_VFORK)` on a small stack of its own
//! (what glibc's and musl's `posix_spawn` do inside), with `fork` as the fallback.
//!
//! `fork` copies the parent's page tables and mappings, which the child's `exec` then
//! tears down, so its cost grows with the server's resident memory, mappings and
//! threads. A `CLONE_VM` child borrows the parent's memory instead: the same cost
//! whatever the parent's size.
//!
//! Invariants:
//! - Everything the child uses (paths, argv, envp, descriptors, limits) is prepared in
//!   the parent ([`ExecPlan`], [`ChildArgs`]); the child allocates nothing, takes no
//!   lock and makes only async-signal-safe calls (`child.rs`), because it runs on
//!   memory the parent's other threads keep using.
//! - The parent blocks every signal (libc's internal ones included) around the
//!   creation, so no handler of the parent runs in the child; the child resets every
//!   disposition to the default before it unblocks.
//! - `CLONE_VFORK` suspends the calling thread until the child has exec'd or exited, so
//!   the plan, the stack and the report outlive the child's use of them, and the report
//!   is final when `clone` returns.
//! - [`launch`] returns a pid only once `exec` succeeded; on every failure after the
//!   child exists, the child has been reaped before the error is returned.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rustix::pipe::PipeFlags;
use rustix::process::{Pid, WaitOptions};

use crate::child::{set_signal_mask, ChildSetup};

/// Environment variable that, set to `1`, makes every spawn use `fork` ([`SpawnMethod::Fork`]).
pub const FORK_ENV: &str = "AXS_PTY_FORK";

/// How the child process is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpawnMethod {
    /// A vfork-style `clone` (flat cost); `fork` once the kernel or a sandbox refuses it.
    #[default]
    Auto,
    /// Always `fork` (cost grows with the parent): for comparisons, and an escape hatch.
    Fork,
}

impl SpawnMethod {
    /// `Fork` when `AXS_PTY_FORK=1` is set in the environment, else `Auto`.
    pub fn from_env() -> SpawnMethod {
        if std::env::var_os(FORK_ENV).is_some_and(|v| v == "1") {
            SpawnMethod::Fork
        } else {
            SpawnMethod::Auto
        }
    }
}

/// `PATH` when the child's environment has none (as [`crate::find_program`] assumes).
const DEFAULT_PATH: &str = "/usr/bin:/bin";

/// What the child will `exec`, as C strings built in the parent.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    /// Paths tried in order, as `execvp` would: the program itself when it has a `/`,
    /// else one per `PATH` entry (none for an empty name: ENOENT).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: Option<CString>,
    setup: ChildSetup,
}

impl ExecPlan {
    /// Prepares `program` with `args` (argv\[0\] is `program` as given), the complete
    /// environment `env`, and the working directory; InvalidInput for a NUL byte.
    pub fn new(
        program: &OsStr,
        args: &[OsString],
        env: &[(OsString, OsString)],
        cwd: Option<&Path>,
        setup: ChildSetup,
    ) -> io::Result<ExecPlan> {
        let argv = std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| c_string(arg.as_bytes().to_vec()))
            .collect::<io::Result<_>>()?;
        let envp = env
            .iter()
            .map(|(key, value)| c_string([key.as_bytes(), b"=", value.as_bytes()].concat()))
            .collect::<io::Result<_>>()?;
        let cwd = cwd
            .map(|dir| c_string(dir.as_os_str().as_bytes().to_vec()))
            .transpose()?;
        Ok(ExecPlan {
            candidates: candidates(program, env)?,
            argv,
            envp,
            cwd,
            setup,
        })
    }
}

fn c_string(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in the program, an argument, the environment or the directory",
        )
    })
}

/// The paths `exec` tries for `program`, with the child's `PATH` from `env`.
fn candidates(program: &OsStr, env: &[(OsString, OsString)]) -> io::Result<Vec<CString>> {
    let name = program.as_bytes();
    if name.is_empty() {
        return Ok(Vec::new());
    }
    if name.contains(&b'/') {
        return Ok(vec![c_string(name.to_vec())?]);
    }
    let path = env
        .iter()
        .find(|(key, _)| key == "PATH")
        .map_or(DEFAULT_PATH.as_bytes(), |(_, value)| value.as_bytes());
    path.split(|&b| b == b':')
        .map(|dir| match dir {
            // An empty entry is the working directory, as for execvp.
            b"" => c_string(name.to_vec()),
            _ => c_string([dir, b"/", name].concat()),
        })
        .collect()
}

/// The child's view of a plan: pointers into the parent's [`ExecPlan`], which outlives
/// the child's use of them (the parent waits for `exec` or exit either way).
struct ChildArgs<'a> {
    candidates: &'a [CString],
    /// NUL-terminated array of pointers into the plan's `argv`.
    argv: Vec<*const libc::c_char>,
    /// Per candidate, the `argv` that runs it as a shell script (`/bin/sh PATH ARGS...`),
    /// for a file `execve` refuses with ENOEXEC: built here, the child must not allocate.
    script_argvs: Vec<Vec<*const libc::c_char>>,
    /// NUL-terminated array of pointers into the plan's `envp`.
    envp: Vec<*const libc::c_char>,
    cwd: Option<&'a CStr>,
    /// Descriptors for 0, 1 and 2, each above 2.
    stdio: [RawFd; 3],
    setup: ChildSetup,
}

/// The shell that runs an executable file without a `#!` line, as `execvp` does.
const SCRIPT_SHELL: &CStr = c"/bin/sh";

/// `/bin/sh CANDIDATE ARGS...` for each candidate, NUL-terminated (`argv[0]` is dropped,
/// as glibc's `execvp` does for such a script).
fn script_argvs(candidates: &[CString], argv: &[CString]) -> Vec<Vec<*const libc::c_char>> {
    candidates
        .iter()
        .map(|path| {
            [SCRIPT_SHELL.as_ptr(), path.as_ptr()]
                .into_iter()
                .chain(argv.iter().skip(1).map(|arg| arg.as_ptr()))
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        })
        .collect()
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Set once a vfork-style clone was refused: later spawns go straight to `fork`.
static VFORK_REFUSED: AtomicBool = AtomicBool::new(false);

/// Starts `plan` with `stdio` as its descriptors 0, 1 and 2; returns the child's pid
/// once `exec` succeeded, or the child's error (it has been reaped then).
pub(crate) fn launch(
    plan: &ExecPlan,
    stdio: [BorrowedFd<'_>; 3],
    method: SpawnMethod,
) -> io::Result<u32> {
    let lifted = lift_above_stdio(stdio)?;
    let args = ChildArgs {
        candidates: &plan.candidates,
        argv: pointers(&plan.argv),
        script_argvs: script_argvs(&plan.candidates, &plan.argv),
        envp: pointers(&plan.envp),
        cwd: plan.cwd.as_deref(),
        stdio: lifted.each_ref().map(AsRawFd::as_raw_fd),
        setup: plan.setup,
    };
    if method == SpawnMethod::Auto && !VFORK_REFUSED.load(Ordering::Relaxed) {
        match clone_vfork(&args) {
            Err(err) if is_refusal(&err) => {
                VFORK_REFUSED.store(true, Ordering::Relaxed);
                log::warn!("vfork-style clone refused ({err}); spawning with fork from now on");
            }
            result => return result,
        }
    }
    fork_exec(&args)
}

/// Errors of `clone` that mean "not here" (seccomp, an old or emulated kernel) rather
/// than a lack of resources, which `fork` would meet too.
fn is_refusal(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EPERM)
    )
}

/// The standard descriptors, each moved above 2 when it is not already (a server
/// started with 0-2 closed gets its pty on them): `dup2` onto a descriptor it already
/// is would keep it close-on-exec.
fn lift_above_stdio(stdio: [BorrowedFd<'_>; 3]) -> io::Result<[Lifted<'_>; 3]> {
    let [a, b, c] = stdio;
    Ok([lift(a)?, lift(b)?, lift(c)?])
}

fn lift(fd: BorrowedFd<'_>) -> io::Result<Lifted<'_>> {
    if fd.as_raw_fd() > 2 {
        Ok(Lifted::Borrowed(fd))
    } else {
        Ok(Lifted::Owned(rustix::io::fcntl_dupfd_cloexec(fd, 3)?))
    }
}

/// A standard descriptor for the child, above 2.
enum Lifted<'a> {
    Borrowed(BorrowedFd<'a>),
    /// A close-on-exec copy, closed when the spawn is over.
    Owned(OwnedFd),
}

impl AsRawFd for Lifted<'_> {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Lifted::Borrowed(fd) => fd.as_raw_fd(),
            Lifted::Owned(fd) => fd.as_raw_fd(),
        }
    }
}

/// Blocks every signal of the calling thread until dropped.
struct SignalsBlocked {
    previous: [u64; 2],
}

impl SignalsBlocked {
    fn new() -> SignalsBlocked {
        SignalsBlocked {
            previous: set_signal_mask(&[u64::MAX; 2]),
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        set_signal_mask(&self.previous);
    }
}

/// The vfork child's report: [`NOT_STARTED`], [`EXEC_TRIED`], or an errno.
const NOT_STARTED: i32 = -1;
/// Set just before the first `execve`; left as is when one succeeds.
const EXEC_TRIED: i32 = 0;

/// What the vfork child reads (args) and writes (report); lives in the parent's frame.
struct VforkShared<'a> {
    args: &'a ChildArgs<'a>,
    report: AtomicI32,
}

/// The child's stack: small, with a guard page below it.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

/// Usable stack size: the steps need a few KiB (a 4 KiB directory buffer, a signal
/// frame for SIGSYS); pages are only touched as used.
const STACK_BYTES: usize = 64 * 1024;

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        let guard = rustix::param::page_size();
        let len = STACK_BYTES + guard;
        // SAFETY: a fresh private anonymous mapping, not aliasing anything of ours.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the lowest page of the mapping just made: an overflow faults there
        // instead of running into whatever lies below.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: stacks grow down (on every architecture axs runs on).
    fn top(&self) -> *mut libc::c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; the child no longer runs
        // on it (CLONE_VFORK returned).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Starts the child with `clone(CLONE_VM | CLONE_VFORK)`; Err is `clone`'s own error
/// (nothing was started) or the child's (it has been reaped).
fn clone_vfork(args: &ChildArgs<'_>) -> io::Result<u32> {
    let stack = ChildStack::new()?;
    let shared = VforkShared {
        args,
        report: AtomicI32::new(NOT_STARTED),
    };
    let blocked = SignalsBlocked::new();
    // SAFETY: `vfork_child` gets `shared` and the stack's top. CLONE_VFORK suspends
    // this thread until the child execs or exits, so both outlive the child's use of
    // them. The child only makes async-signal-safe calls, allocates nothing and takes
    // no lock (child.rs), and no handler can run in it before its dispositions are the
    // default: every signal is blocked here and the child inherits the mask. Without
    // CLONE_FILES/CLONE_FS/CLONE_SIGHAND, its descriptors, directory and handlers are
    // its own copies.
    let pid = unsafe {
        libc::clone(
            vfork_child,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(&shared).cast_mut().cast(),
        )
    };
    let clone_error = io::Error::last_os_error();
    drop(blocked);
    drop(stack);
    if pid == -1 {
        return Err(clone_error);
    }
    let pid = child_pid(pid)?;
    match shared.report.load(Ordering::Acquire) {
        EXEC_TRIED => Ok(pid),
        NOT_STARTED => Err(reaped(pid, io::Error::other("the child ended before exec"))),
        errno => Err(reaped(pid, io::Error::from_raw_os_error(errno))),
    }
}

/// The vfork child: the steps, then `exec`; reports to the parent through memory.
extern "C" fn vfork_child(shared: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `shared` is the `VforkShared` that `clone_vfork` passed, alive in its
    // suspended frame; the child only reads `args` and writes the atomic `report`.
    let shared = unsafe { &*shared.cast::<VforkShared<'_>>() };
    let errno = child_main(shared.args, || {
        shared.report.store(EXEC_TRIED, Ordering::Release);
    });
    shared.report.store(errno, Ordering::Release);
    // SAFETY: _exit ends the child at once: no atexit handlers, no flushing of the
    // parent's stdio buffers (which it shares).
    unsafe { libc::_exit(127) }
}

/// Starts the child with `fork`; failures come back through a close-on-exec pipe
/// (end of file: `exec` succeeded).
fn fork_exec(args: &ChildArgs<'_>) -> io::Result<u32> {
    let (report_read, report_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
    let blocked = SignalsBlocked::new();
    // SAFETY: the child runs only `child_main` (async-signal-safe, no allocation, no
    // lock: other threads' locks may be copied held) and then `_exit`s; no handler
    // runs before its dispositions are the default (all signals blocked here).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let errno = child_main(args, || {});
        let bytes = errno.to_ne_bytes();
        // SAFETY: write and _exit are async-signal-safe; `bytes` lives on this stack.
        unsafe {
            libc::write(report_write.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127)
        }
    }
    let fork_error = io::Error::last_os_error();
    drop(blocked);
    drop(report_write);
    if pid == -1 {
        return Err(fork_error);
    }
    let pid = child_pid(pid)?;
    let mut bytes = [0u8; 4];
    match read_report(&report_read, &mut bytes) {
        Ok(0) => Ok(pid),
        Ok(4) => Err(reaped(
            pid,
            io::Error::from_raw_os_error(i32::from_ne_bytes(bytes)),
        )),
        Ok(_) => Err(reaped(pid, io::Error::other("short report from the child"))),
        Err(err) => Err(reaped(pid, err)),
    }
}

fn read_report(fd: &OwnedFd, bytes: &mut [u8; 4]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut bytes[..]) {
            Err(rustix::io::Errno::INTR) => continue,
            result => return Ok(result?),
        }
    }
}

fn child_pid(pid: libc::pid_t) -> io::Result<u32> {
    u32::try_from(pid).map_err(|_| io::Error::other("clone returned a negative pid"))
}

/// Waits for the failed child (it has exited or is about to) and returns `err`.
fn reaped(pid: u32, err: io::Error) -> io::Error {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    loop {
        match rustix::process::waitpid(pid, WaitOptions::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            _ => return err,
        }
    }
}

/// In the child: the steps, `before_exec`, then each candidate; returns only on
/// failure, with the errno to report.
fn child_main(args: &ChildArgs<'_>, before_exec: impl Fn()) -> libc::c_int {
    if let Err(err) = args.setup.run(&args.stdio, args.cwd) {
        return err.raw_os_error().unwrap_or(libc::EIO);
    }
    before_exec();
    exec_candidates(args)
}

/// `execve` of each candidate in turn, with `execvp`'s error rules: a denied one is
/// remembered and the search goes on, a missing one is skipped, an executable file that
/// is not a binary (ENOEXEC: a script without `#!`) is run by `/bin/sh`, any other error
/// ends the search. Returns the errno when no candidate could be run.
fn exec_candidates(args: &ChildArgs<'_>) -> libc::c_int {
    let mut denied = false;
    let mut last = libc::ENOENT;
    for (path, script_argv) in args.candidates.iter().zip(&args.script_argvs) {
        // SAFETY: NUL-terminated path, and NUL-terminated arrays of pointers to
        // NUL-terminated strings, all owned by the parent's plan (alive, unchanged).
        unsafe { libc::execve(path.as_ptr(), args.argv.as_ptr(), args.envp.as_ptr()) };
        let mut errno = last_errno();
        if errno == libc::ENOEXEC {
            // SAFETY: as above; `script_argv` points into the same plan and at the
            // static `SCRIPT_SHELL`, and is NUL-terminated.
            unsafe {
                libc::execve(
                    SCRIPT_SHELL.as_ptr(),
                    script_argv.as_ptr(),
                    args.envp.as_ptr(),
                )
            };
            // The shell could not run either: the file's own refusal is the answer.
            errno = libc::ENOEXEC;
        }
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return errno,
        }
        last = errno;
    }
    if denied {
        libc::EACCES
    } else {
        last
    }
}

/// The calling thread's errno (async-signal-safe: it only reads a thread-local).
fn last_errno() -> libc::c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn env(path: Option<&str>) -> Vec<(OsString, OsString)> {
        path.map(|p| ("PATH".into(), p.into()))
            .into_iter()
            .collect()
    }

    fn names(list: Vec<CString>) -> Vec<String> {
        list.into_iter().map(|c| c.into_string().unwrap()).collect()
    }

    #[test]
    fn candidates_follow_path_like_execvp() {
        let found = candidates(OsStr::new("sh"), &env(Some("/a::/b/"))).unwrap();
        assert_eq!(names(found), ["/a/sh", "sh", "/b//sh"]);
        let default = candidates(OsStr::new("sh"), &env(None)).unwrap();
        assert_eq!(names(default), ["/usr/bin/sh", "/bin/sh"]);
        let path = candidates(OsStr::new("./x"), &env(Some("/a"))).unwrap();
        assert_eq!(names(path), ["./x"]);
        assert!(candidates(OsStr::new(""), &env(None)).unwrap().is_empty());
    }

    #[test]
    fn nul_bytes_are_invalid_input() {
        let setup = ChildSetup::without_tty(crate::FdSweep::Auto);
        let bad = [OsString::from("a\0b")];
        let err = ExecPlan::new(OsStr::new("sh"), &bad, &[], None, setup).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
