//! Reaping children and decoding how they ended.

use std::fmt;
use std::io;

use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions, WaitStatus};

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// The signal's name ("SIGKILL") for `Signal`, `None` for `Code` or an unknown number.
    pub fn signal_name(&self) -> Option<&'static str> {
        match *self {
            ExitStatus::Signal(sig) => signal_name(sig),
            ExitStatus::Code(_) => None,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.signal_name()) {
            (ExitStatus::Code(code), _) => write!(f, "exit code {code}"),
            (ExitStatus::Signal(_), Some(name)) => write!(f, "killed by {name}"),
            (ExitStatus::Signal(sig), None) => write!(f, "killed by signal {sig}"),
        }
    }
}

/// Linux signal names, indexed by number (x86, ARM and RISC-V share this numbering).
const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of Linux signal `sig` ("SIGTERM"); real-time ones count from the kernel's SIGRTMIN (32).
pub fn signal_name(sig: i32) -> Option<&'static str> {
    const RT: [&str; 31] = [
        "SIGRTMIN",
        "SIGRTMIN+1",
        "SIGRTMIN+2",
        "SIGRTMIN+3",
        "SIGRTMIN+4",
        "SIGRTMIN+5",
        "SIGRTMIN+6",
        "SIGRTMIN+7",
        "SIGRTMIN+8",
        "SIGRTMIN+9",
        "SIGRTMIN+10",
        "SIGRTMIN+11",
        "SIGRTMIN+12",
        "SIGRTMIN+13",
        "SIGRTMIN+14",
        "SIGRTMIN+15",
        "SIGRTMIN+16",
        "SIGRTMIN+17",
        "SIGRTMIN+18",
        "SIGRTMIN+19",
        "SIGRTMIN+20",
        "SIGRTMIN+21",
        "SIGRTMIN+22",
        "SIGRTMIN+23",
        "SIGRTMIN+24",
        "SIGRTMIN+25",
        "SIGRTMIN+26",
        "SIGRTMIN+27",
        "SIGRTMIN+28",
        "SIGRTMIN+29",
        "SIGRTMIN+30",
    ];
    let idx = usize::try_from(sig).ok()?;
    match idx {
        1..=31 => Some(NAMES[idx]),
        32..=63 => Some(RT[idx - 32]),
        64 => Some("SIGRTMAX"),
        _ => None,
    }
}

fn to_pid(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from(Errno::INVAL))
}

fn decode(status: WaitStatus) -> Option<ExitStatus> {
    if let Some(code) = status.exit_status() {
        Some(ExitStatus::Code(code))
    } else {
        status.terminating_signal().map(ExitStatus::Signal)
    }
}

/// Waits for child `pid` to end and reaps it (retries on EINTR).
pub fn wait_blocking(pid: u32) -> io::Result<ExitStatus> {
    let pid = to_pid(pid)?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                if let Some(exit) = decode(status) {
                    return Ok(exit);
                }
            }
            Ok(None) => {}
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps child `pid` if it has ended (`WNOHANG`); `Ok(None)` while it runs.
pub fn try_wait(pid: u32) -> io::Result<Option<ExitStatus>> {
    let pid = to_pid(pid)?;
    loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => match decode(status) {
                Some(exit) => return Ok(Some(exit)),
                // A stop/continue report (not asked for) is not an end: still running.
                None => return Ok(None),
            },
            Ok(None) => return Ok(None),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_standard_signals() {
        assert_eq!(signal_name(9), Some("SIGKILL"));
        assert_eq!(signal_name(15), Some("SIGTERM"));
        assert_eq!(signal_name(1), Some("SIGHUP"));
        assert_eq!(signal_name(31), Some("SIGSYS"));
        assert_eq!(signal_name(34), Some("SIGRTMIN+2"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(65), None);
        assert_eq!(ExitStatus::Signal(9).signal_name(), Some("SIGKILL"));
        assert_eq!(ExitStatus::Code(9).signal_name(), None);
        assert_eq!(ExitStatus::Signal(15).to_string(), "killed by SIGTERM");
    }

    #[test]
    fn names_match_libc() {
        for (sig, name) in [
            (libc::SIGINT, "SIGINT"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGPIPE, "SIGPIPE"),
            (libc::SIGCHLD, "SIGCHLD"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGSTKFLT, "SIGSTKFLT"),
            (libc::SIGPWR, "SIGPWR"),
        ] {
            assert_eq!(signal_name(sig), Some(name));
        }
    }
}
