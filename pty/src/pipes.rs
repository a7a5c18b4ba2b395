//! Spawning a program on pipes (no pty), as the leader of a new session: the language
//! servers of `axs lsp`.
//!
//! The child gets: its own session and process group (so a signal to the group reaches
//! whatever it starts), the server's working directory unless told otherwise, only
//! descriptors 0, 1 and 2 (the pipes), default signal dispositions, an empty signal mask
//! and the server's environment without any `AXS_*` variable (those are the server's own
//! switches and secrets, like `AXS_TOKEN` and `AXS_READY_PIPE`).

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::child::{ChildSetup, FdSweep};
use crate::spawn::{check_dir, SpawnError};

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
}

impl PipedOptions {
    /// Options for `program` with no arguments, the `fd_sweep` switch read from the
    /// environment ([`FdSweep::from_env`]).
    pub fn new(program: impl Into<OsString>) -> PipedOptions {
        PipedOptions {
            program: program.into(),
            fd_sweep: FdSweep::from_env(),
            ..PipedOptions::default()
        }
    }
}

/// A running child on pipes: its pid (= session id = process group id) and the parent's
/// ends of its standard streams.
///
/// The three ends are close-on-exec and **blocking**, as std creates them; an async
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
/// Returns once `exec` has succeeded (std's exec-error pipe tells), so a missing program
/// is reported here, and nothing is left behind then (std reaps the failed child). The
/// caller owns reaping, with [`crate::wait_blocking`] or [`crate::try_wait`].
pub fn spawn_piped(opts: &PipedOptions) -> Result<PipedChild, SpawnError> {
    if let Some(dir) = &opts.cwd {
        check_dir(dir)?;
    }
    let mut cmd = command(opts);
    let setup = ChildSetup::without_tty(opts.fd_sweep);
    // SAFETY: the hook only makes async-signal-safe calls (sigaction, sigprocmask,
    // setsid, close_range/getdents64/fcntl) and allocates nothing; see child.rs.
    unsafe { cmd.pre_exec(move || setup.run()) };
    let mut child = cmd.spawn().map_err(|source| SpawnError::Exec {
        program: opts.program.clone(),
        source,
    })?;
    let pid = child.id();
    let ends = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    // Dropping a std Child neither waits nor kills: the runtime reaps by pid.
    drop(child);
    match ends {
        (Some(stdin), Some(stdout), Some(stderr)) => Ok(PipedChild {
            pid,
            stdin: stdin.into(),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }),
        // std always fills all three for `Stdio::piped()`; stay safe if it ever did not.
        _ => {
            let _ = crate::kill_group(pid);
            let _ = crate::wait_blocking(pid);
            Err(SpawnError::Exec {
                program: opts.program.clone(),
                source: std::io::Error::other("a standard stream pipe is missing"),
            })
        }
    }
}

/// Builds the command: program, args, cwd, pipes, and the environment without `AXS_*`.
fn command(opts: &PipedOptions) -> Command {
    let mut cmd = Command::new(&opts.program);
    cmd.args(&opts.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars_os() {
        if key
            .as_encoded_bytes()
            .starts_with(PRIVATE_ENV_PREFIX.as_bytes())
        {
            cmd.env_remove(key);
        }
    }
    if let Some(dir) = &opts.cwd {
        cmd.current_dir(dir);
    }
    cmd
}
