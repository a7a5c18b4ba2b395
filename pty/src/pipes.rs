//! Spawning a program on pipes (no pty), as the leader of a new session: the language
//! servers of `axs lsp`.
//!
//! The child gets: its own session and process group (so a signal to the group reaches
//! whatever it starts), the server's working directory unless told otherwise, only
//! descriptors 0, 1 and 2 (the pipes), default signal dispositions, an empty signal mask
//! and the server's environment without any `AXS_*` variable (those are the server's own
//! switches and secrets, like `AXS_TOKEN` and `AXS_READY_PIPE`).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use rustix::pipe::PipeFlags;

use crate::child::{ChildSetup, FdSweep};
use crate::launch::{launch, SpawnMethod};
use crate::spawn::{exec_error, prepare_exec, SpawnError};

/// The prefix of the variables a piped child never sees.
pub const PRIVATE_ENV_PREFIX: &str = "AXS_";

/// What to run on pipes.
#[derive(Debug, Clone, Default)]
pub struct PipedOptions {
    /// Program name or path (looked up in `PATH` when it has no `/`).
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Working directory; `None` keeps the server's.
    pub cwd: Option<PathBuf>,
    /// How the child closes inherited descriptors (see [`FdSweep::from_env`]; tests only).
    pub fd_sweep: FdSweep,
    /// How the child process is created (see [`SpawnMethod::from_env`]).
    pub spawn_method: SpawnMethod,
}

impl PipedOptions {
    /// Options for `program` with no arguments, the `fd_sweep` and `spawn_method`
    /// switches read from the environment ([`FdSweep::from_env`],
    /// [`SpawnMethod::from_env`]).
    pub fn new(program: impl Into<OsString>) -> PipedOptions {
        PipedOptions {
            program: program.into(),
            fd_sweep: FdSweep::from_env(),
            spawn_method: SpawnMethod::from_env(),
            ..PipedOptions::default()
        }
    }
}

/// A running child on pipes: its pid (= session id = process group id) and the parent's
/// ends of its standard streams.
///
/// The three ends are close-on-exec and **blocking**; an async
/// runtime switches them with [`crate::set_nonblocking`]. Closing `stdin` is the child's
/// end of input; `stdout` and `stderr` read 0 (EOF) once every process holding the
/// other end (the child and whatever inherited it) has closed it.
#[derive(Debug)]
pub struct PipedChild {
    /// The child's process id; reap it with `wait_blocking` or `try_wait`.
    pub pid: u32,
    /// Writes go to the child's descriptor 0.
    pub stdin: OwnedFd,
    /// Reads come from the child's descriptor 1.
    pub stdout: OwnedFd,
    /// Reads come from the child's descriptor 2.
    pub stderr: OwnedFd,
}

/// Starts `opts.program` on three pipes, as a session leader with only descriptors 0, 1
/// and 2 open and no `AXS_*` variable in its environment.
///
/// Returns once `exec` has succeeded, so a missing program is reported here, and nothing
/// is left behind then (the failed child is reaped, every pipe closed). The caller owns
/// reaping, with [`crate::wait_blocking`] or [`crate::try_wait`].
pub fn spawn_piped(opts: &PipedOptions) -> Result<PipedChild, SpawnError> {
    let plan = prepare_exec(
        &opts.program,
        &opts.args,
        &child_env(),
        opts.cwd.as_deref(),
        ChildSetup::without_tty(opts.fd_sweep),
    )?;
    let exec_err = exec_error(&opts.program);
    let pipes = StdioPipes::new().map_err(exec_err)?;
    let child_ends = [
        pipes.stdin_read.as_fd(),
        pipes.stdout_write.as_fd(),
        pipes.stderr_write.as_fd(),
    ];
    let pid = launch(&plan, child_ends, opts.spawn_method).map_err(exec_err)?;
    // The child's ends close here: reads see EOF once the child (and whatever
    // inherited them) has closed its copies.
    Ok(PipedChild {
        pid,
        stdin: pipes.stdin_write,
        stdout: pipes.stdout_read,
        stderr: pipes.stderr_read,
    })
}

/// The three pipes of a piped child, all ends close-on-exec.
struct StdioPipes {
    stdin_read: OwnedFd,
    stdin_write: OwnedFd,
    stdout_read: OwnedFd,
    stdout_write: OwnedFd,
    stderr_read: OwnedFd,
    stderr_write: OwnedFd,
}

impl StdioPipes {
    fn new() -> io::Result<StdioPipes> {
        let (stdin_read, stdin_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
        let (stdout_read, stdout_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
        let (stderr_read, stderr_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?;
        Ok(StdioPipes {
            stdin_read,
            stdin_write,
            stdout_read,
            stdout_write,
            stderr_read,
            stderr_write,
        })
    }
}

/// The server's environment without any `AXS_*` variable.
fn child_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(key, _)| {
            !key.as_encoded_bytes()
                .starts_with(PRIVATE_ENV_PREFIX.as_bytes())
        })
        .collect()
}
