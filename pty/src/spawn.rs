//! Spawning a program on a new pty, as the leader of a new session.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::child::{ChildSetup, FdSweep};
use crate::launch::{launch, ExecPlan, SpawnMethod};
use crate::pty::{open_pair, SlaveOpen, WinSize};
use crate::ready_pipe::READY_PIPE_ENV;

/// The server's own variables that no spawned program may see: the ready pipe (a
/// program writing to it would fake a start-up), and the tokens (a program, or anything
/// it prints or uploads, must not learn the keys to every other shell). Anything that
/// starts programs without [`spawn`] must remove these too.
pub const SERVER_ONLY_ENV: &[&str] = &[READY_PIPE_ENV, "AXS_TOKEN", "AXS_VIEW_TOKEN"];

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Program name or path (looked up in `PATH` when it has no `/`).
    pub program: OsString,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Variables added to (or overriding) the server's environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory; `None` keeps the server's.
    pub cwd: Option<PathBuf>,
    /// Initial terminal size.
    pub size: WinSize,
    /// How to open the slave side (see [`SlaveOpen::from_env`]).
    pub slave_open: SlaveOpen,
    /// How the child closes inherited descriptors (see [`FdSweep::from_env`]; tests only).
    pub fd_sweep: FdSweep,
    /// How the child process is created (see [`SpawnMethod::from_env`]).
    pub spawn_method: SpawnMethod,
}

impl SpawnOptions {
    /// Options for `program` with no arguments, 80x24, and the environment switches
    /// applied: `slave_open` from [`SlaveOpen::from_env`] (`AXS_PTY_PEER=1`),
    /// `fd_sweep` from [`FdSweep::from_env`] (`AXS_PTY_NO_CLOSE_RANGE=1`) and
    /// `spawn_method` from [`SpawnMethod::from_env`] (`AXS_PTY_FORK=1`).
    /// (`SpawnOptions::default()` ignores the environment.)
    pub fn new(program: impl Into<OsString>) -> SpawnOptions {
        SpawnOptions {
            program: program.into(),
            slave_open: SlaveOpen::from_env(),
            fd_sweep: FdSweep::from_env(),
            spawn_method: SpawnMethod::from_env(),
            ..SpawnOptions::default()
        }
    }
}

/// A running child: its pid (= session id = process group id) and the pty master.
#[derive(Debug)]
pub struct Spawned {
    /// The child's process id; reap it with `wait_blocking` or `try_wait`.
    pub pid: u32,
    /// The pty master, close-on-exec and blocking (see `set_nonblocking`). Reads
    /// fail with EIO once no process holds the terminal; closing it hangs up the
    /// session (the kernel sends SIGHUP to the child).
    pub master: OwnedFd,
}

/// Why a spawn failed.
#[derive(Debug)]
pub enum SpawnError {
    /// The pty pair could not be opened.
    Pty(io::Error),
    /// The working directory is missing or not a directory.
    Cwd {
        /// The directory asked for.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The program could not be started (missing, not executable, a failed step in the
    /// child before `exec`).
    Exec {
        /// The program asked for.
        program: OsString,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Pty(e) => write!(f, "cannot open a pty: {}", error_text(e)),
            SpawnError::Cwd { path, source } => {
                write!(f, "{}: {}", error_text(source), path.display())
            }
            SpawnError::Exec { program, source } => {
                write!(f, "{}: {}", error_text(source), program.to_string_lossy())
            }
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Pty(e) => Some(e),
            SpawnError::Cwd { source, .. } | SpawnError::Exec { source, .. } => Some(source),
        }
    }
}

/// The error text without std's " (os error N)" suffix: "No such file or directory".
pub fn error_text(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Value of `TERM` for children unless the options give one: the clients run xterm.js.
pub const DEFAULT_TERM: &str = "xterm-256color";

/// Starts `opts.program` on a new pty, as a session leader with the pty as its
/// controlling terminal and only descriptors 0, 1 and 2 open.
///
/// Returns once `exec` has succeeded, so a missing program is reported here (and the
/// failed child is reaped). The cost does not grow with the server's memory or threads
/// (see [`SpawnMethod`]). The caller owns reaping, with [`crate::wait_blocking`] or
/// [`crate::try_wait`].
pub fn spawn(opts: &SpawnOptions) -> Result<Spawned, SpawnError> {
    let plan = prepare_exec(
        &opts.program,
        &opts.args,
        &child_env(opts),
        opts.cwd.as_deref(),
        ChildSetup::new(opts.fd_sweep),
    )?;
    let exec_err = exec_error(&opts.program);
    let pair = open_pair(opts.size, opts.slave_open).map_err(SpawnError::Pty)?;
    let slave = pair.slave.as_fd();
    let pid = launch(&plan, [slave, slave, slave], opts.spawn_method).map_err(exec_err)?;
    // The parent's slave closes here, so the master sees EIO once every process in
    // the session has closed the terminal.
    drop(pair.slave);
    Ok(Spawned {
        pid,
        master: pair.master,
    })
}

/// The child's environment: the server's, with TERM and without the server's own
/// variables ([`SERVER_ONLY_ENV`]), even when `opts.env` names them.
fn child_env(opts: &SpawnOptions) -> Vec<(OsString, OsString)> {
    let server_only = |key: &OsString| SERVER_ONLY_ENV.iter().any(|name| key == name);
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(key, _)| !server_only(key))
        .collect();
    if !opts.env.iter().any(|(k, _)| k == "TERM") {
        set_var(&mut env, "TERM".into(), DEFAULT_TERM.into());
    }
    for (key, value) in &opts.env {
        if !server_only(key) {
            set_var(&mut env, key.clone(), value.clone());
        }
    }
    env
}

/// Sets `key` in `env`, replacing its value when present.
fn set_var(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => env.push((key, value)),
    }
}

/// The first steps of every spawn, before any descriptor is opened: checks the working
/// directory, then prepares the `exec` of `program` (its argv, environment and directory
/// as C strings).
pub(crate) fn prepare_exec(
    program: &OsStr,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: Option<&Path>,
    setup: ChildSetup,
) -> Result<ExecPlan, SpawnError> {
    if let Some(dir) = cwd {
        check_dir(dir)?;
    }
    ExecPlan::new(program, args, env, cwd, setup).map_err(exec_error(program))
}

/// Turns an error of starting `program` into [`SpawnError::Exec`], naming the program.
pub(crate) fn exec_error(program: &OsStr) -> impl Fn(io::Error) -> SpawnError + Copy + '_ {
    move |source| SpawnError::Exec {
        program: program.to_os_string(),
        source,
    }
}

/// Checks the working directory in the parent, so the error names it (a chdir
/// failure in the child would be reported like a missing program).
fn check_dir(dir: &std::path::Path) -> Result<(), SpawnError> {
    let cwd_err = |source| SpawnError::Cwd {
        path: dir.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(dir).map_err(cwd_err)?;
    if meta.is_dir() {
        Ok(())
    } else {
        Err(cwd_err(io::Error::from_raw_os_error(libc::ENOTDIR)))
    }
}
