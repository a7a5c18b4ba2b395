//! Spawning a program on a new pty, as the leader of a new session.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::child::{ChildSetup, FdSweep};
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
}

impl SpawnOptions {
    /// Options for `program` with no arguments, 80x24, and the environment switches
    /// applied: `slave_open` from [`SlaveOpen::from_env`] (`AXS_PTY_PEER=1`) and
    /// `fd_sweep` from [`FdSweep::from_env`] (`AXS_PTY_NO_CLOSE_RANGE=1`).
    /// (`SpawnOptions::default()` ignores the environment.)
    pub fn new(program: impl Into<OsString>) -> SpawnOptions {
        SpawnOptions {
            program: program.into(),
            slave_open: SlaveOpen::from_env(),
            fd_sweep: FdSweep::from_env(),
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
    /// The program could not be started (missing, not executable, pre-exec failure).
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
/// Returns once `exec` has succeeded (std's exec-error pipe tells), so a missing
/// program is reported here. The child is not reaped by this crate's spawn: the
/// caller owns reaping, with [`crate::wait_blocking`] or [`crate::try_wait`].
pub fn spawn(opts: &SpawnOptions) -> Result<Spawned, SpawnError> {
    if let Some(dir) = &opts.cwd {
        check_dir(dir)?;
    }
    let pair = open_pair(opts.size, opts.slave_open).map_err(SpawnError::Pty)?;
    let exec_err = |source| SpawnError::Exec {
        program: opts.program.clone(),
        source,
    };
    let mut cmd = command(opts);
    for stdio in 0..3 {
        let fd = pair.slave.try_clone().map_err(SpawnError::Pty)?;
        match stdio {
            0 => cmd.stdin(Stdio::from(fd)),
            1 => cmd.stdout(Stdio::from(fd)),
            _ => cmd.stderr(Stdio::from(fd)),
        };
    }
    let setup = ChildSetup::new(opts.fd_sweep);
    // SAFETY: the hook only makes async-signal-safe calls (sigaction, sigprocmask,
    // setsid, ioctl, close_range/getdents64/fcntl) and allocates nothing; see child.rs.
    unsafe { cmd.pre_exec(move || setup.run()) };
    // On exec failure std has already reaped the child before returning the error.
    let child = cmd.spawn().map_err(exec_err)?;
    let pid = child.id();
    // Dropping a std Child neither waits nor kills: the runtime reaps by pid.
    drop(child);
    // The parent's copies of the slave close here (cmd holds three, pair one), so the
    // master sees EIO once every process in the session has closed the terminal.
    drop(cmd);
    drop(pair.slave);
    Ok(Spawned {
        pid,
        master: pair.master,
    })
}

/// Builds the command: program, args, environment with TERM and without the server's
/// own variables ([`SERVER_ONLY_ENV`]), even when `opts.env` names them.
fn command(opts: &SpawnOptions) -> Command {
    let mut cmd = Command::new(&opts.program);
    cmd.args(&opts.args);
    for name in SERVER_ONLY_ENV {
        cmd.env_remove(name);
    }
    if !opts.env.iter().any(|(k, _)| k == "TERM") {
        cmd.env("TERM", DEFAULT_TERM);
    }
    for (key, value) in &opts.env {
        if !SERVER_ONLY_ENV.iter().any(|name| key == name) {
            cmd.env(key, value);
        }
    }
    if let Some(dir) = &opts.cwd {
        cmd.current_dir(dir);
    }
    cmd
}

/// Checks the working directory in the parent, so the error names it (a chdir
/// failure in the child would be reported like a missing program).
pub(crate) fn check_dir(dir: &std::path::Path) -> Result<(), SpawnError> {
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
