//! What the suite reads from /proc about the server and its sessions.

use std::fs;
use std::time::{Duration, Instant};

/// The process's state letter (`R`, `S`, `Z`...), `None` when it does not exist.
pub fn state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// The process group of `pid`.
pub fn pgid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

/// True while `pid` exists and is not a zombie.
pub fn running(pid: u32) -> bool {
    matches!(state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// The process's command name (`/proc/PID/comm`, trimmed).
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The open descriptor numbers of `pid`, sorted.
pub fn fds(pid: u32) -> Result<Vec<u32>, String> {
    let dir =
        fs::read_dir(format!("/proc/{pid}/fd")).map_err(|e| format!("/proc/{pid}/fd: {e}"))?;
    let mut v: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Each descriptor of `pid` with its target, for failure messages.
pub fn fd_targets(pid: u32) -> Vec<String> {
    fds(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|fd| {
            let t = fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "?".into());
            format!("{fd} -> {t}")
        })
        .collect()
}

/// The `Threads:` count from /proc/PID/status.
pub fn threads(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Every pid whose process group is `pgid`.
pub fn group_members(pgid_wanted: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&p| pgid(p) == Some(pgid_wanted) && running(p))
        .collect()
}

/// The parent of `pid`.
pub fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every child of `parent`, zombies included (an unreaped child is a leak too), sorted.
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&p| ppid(p) == Some(parent))
        .collect();
    v.sort_unstable();
    v
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn poll(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until none of `pids` is running (zombies count as gone); returns the survivors.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    poll(timeout, || pids.iter().all(|&p| !running(p)));
    pids.iter().copied().filter(|&p| running(p)).collect()
}

/// A description of `pids` (state and command) for failure messages.
pub fn describe(pids: &[u32]) -> String {
    pids.iter()
        .map(|&p| format!("{p} ({:?} {:?})", comm(p), state(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `read` system call number on this architecture.
#[cfg(target_arch = "x86_64")]
const SYS_READ: &str = "0";
/// The `read` system call number on this architecture.
#[cfg(any(
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
const SYS_READ: &str = "63";
/// The `read` system call number on this architecture.
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS_READ: &str = "3";

/// True while `pid` is blocked in `read(0, ...)` (its terminal), per /proc/PID/syscall.
pub fn reading_stdin(pid: u32) -> bool {
    let Ok(s) = fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        // Kernels without /proc/PID/syscall: the tty read wait is the best sign left.
        return matches!(
            fs::read_to_string(format!("/proc/{pid}/wchan")).as_deref(),
            Ok("n_tty_read") | Ok("wait_woken")
        );
    };
    let mut f = s.split_whitespace();
    f.next() == Some(SYS_READ) && f.next() == Some("0x0")
}

/// Waits until `pid` blocks reading its terminal (so its earlier setup, like `stty -echo`,
/// is done and input sent now is read, not echoed); the error says what it was doing.
pub fn wait_reading_stdin(pid: u32, timeout: Duration) -> Result<(), String> {
    if poll(timeout, || reading_stdin(pid)) {
        return Ok(());
    }
    Err(format!(
        "self-check: process {pid} ({:?}, state {:?}) did not block reading its terminal within {timeout:?}; \
         syscall {:?}",
        comm(pid),
        state(pid),
        fs::read_to_string(format!("/proc/{pid}/syscall")).ok()
    ))
}
