//! A server binary under test: started on a free loopback port with a ready FIFO, observed
//! through `/proc`, and stopped by pid (with every session it created).

use std::fs::{self, File};
use std::io::Read;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::process::{Pid, Signal};

/// How long a server may take to write its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A scratch directory under the system temp dir, removed on drop.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/axs-load-<pid>-<label>`.
    pub fn new(label: &str) -> Result<Scratch, String> {
        let path = std::env::temp_dir().join(format!("axs-load-{}-{label}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        Ok(Scratch { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A started server that announced `READY`.
pub struct Server {
    child: Child,
    /// Its loopback port.
    pub port: u16,
    /// From just before `spawn` to `READY` read from the FIFO.
    pub startup: Duration,
    /// Session pids (= process groups) created through it, killed at stop if still there.
    pub sessions: Vec<u32>,
    stopped: bool,
    stderr_path: PathBuf,
    _dir: Scratch,
}

impl Server {
    /// Starts `bin -p PORT args...` with `AXS_READY_PIPE` and waits for `READY`.
    /// A port taken in the meantime is retried on another port.
    pub fn start(bin: &Path, args: &[&str]) -> Result<Server, String> {
        Server::start_with_env(bin, args, &[])
    }

    /// Like [`Server::start`], with extra environment variables (`RUST_LOG`, say).
    pub fn start_with_env(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut last = String::new();
        for attempt in 0..4 {
            match Server::try_start(bin, args, env, attempt) {
                Ok(server) => return Ok(server),
                Err(e) if e.contains("in use") => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(format!("port in use four times: {last}"))
    }

    fn try_start(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        attempt: u32,
    ) -> Result<Server, String> {
        let port = free_port()?;
        let dir = Scratch::new(&format!("srv-{port}-{attempt}"))?;
        let fifo = dir.path().join("ready");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
        // Open the read end first (non-blocking, so it does not wait for the writer).
        let reader = rustix::fs::open(&fifo, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
            .map_err(|e| format!("open {}: {e}", fifo.display()))?;
        let stderr_path = dir.path().join("stderr");
        let stderr = File::create(&stderr_path).map_err(|e| format!("stderr log: {e}"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("-p")
            .arg(port.to_string())
            .args(args)
            .env("AXS_READY_PIPE", &fifo)
            .env_remove("RUST_LOG")
            .env_remove("AXS_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let started = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut child = child;
        let line = read_line(File::from(reader), &mut child, READY_TIMEOUT);
        let startup = started.elapsed();
        let mut server = Server {
            child,
            port,
            startup,
            sessions: Vec::new(),
            stopped: false,
            stderr_path: stderr_path.clone(),
            _dir: dir,
        };
        match line {
            Ok(l) if l == "READY" => Ok(server),
            other => {
                let log = fs::read_to_string(&stderr_path).unwrap_or_default();
                server.stop();
                Err(format!(
                    "{} did not get ready: {other:?}; stderr: {}",
                    bin.display(),
                    log.trim()
                ))
            }
        }
    }

    /// What the server wrote to stderr so far (its log).
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Memory, threads and descriptors of the server process now.
    pub fn footprint(&self) -> Result<Footprint, String> {
        footprint(self.pid())
    }

    /// User + system CPU time the server process has used so far.
    pub fn cpu(&self) -> Result<Duration, String> {
        cpu_time(self.pid())
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, a bounded wait, SIGKILL; then kills sessions that outlived it.
    pub fn stop(&mut self) {
        self.stop_within(STOP_TIMEOUT);
    }

    /// Like [`Server::stop`] with a chosen wait; returns how long the server took to exit
    /// after SIGTERM, or `None` when it had to be killed (or was stopped already).
    pub fn stop_within(&mut self, timeout: Duration) -> Option<Duration> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        // Only sessions that are still the server's children now can outlive it. A pid
        // from the list that ended long ago may lead another run's session by now (pids
        // wrap at 32768 here, and a soak churns tens of thousands of sessions): killing
        // its group killed other soaks' sessions ("session exited" failures).
        // A server killed before (no longer running) left its sessions to init: then every
        // listed pid is looked at, as before.
        let live = self.is_running().then(|| children(self.pid()));
        let took = terminate_child(&mut self.child, timeout);
        if took.is_none() {
            eprintln!(
                "axs-load: server pid {} still running {timeout:?} after SIGTERM; killed it",
                self.pid()
            );
        }
        let outlived = |pid: &&u32| live.as_ref().is_none_or(|live| live.contains(pid));
        for pid in self.sessions.iter().filter(outlived) {
            kill_stray_group(*pid);
        }
        took
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM to `child`, a wait of at most `timeout` for its exit, then SIGKILL (and the
/// reap). Returns how long it took to exit after SIGTERM, or `None` when it was killed.
pub fn terminate_child(child: &mut Child, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, Signal::TERM);
    }
    let deadline = started + timeout;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    Some(took)
}

/// Kills process group `pid` if its leader still leads it (it outlived the server).
pub fn kill_stray_group(pid: u32) {
    let leads =
        stat_fields(pid).is_ok_and(|f| f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pid));
    if leads {
        if let Some(p) = Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(p, Signal::KILL);
        }
    }
}

/// Reads one line from a non-blocking FIFO, waiting at most `timeout` for it and giving
/// up early when the server exits without writing one.
fn read_line(mut fifo: File, child: &mut Child, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no ready line within {timeout:?}"));
        }
        if !wait_readable(&fifo, left.min(Duration::from_millis(100)))? {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited ({status}) before writing a ready line"));
            }
            continue;
        }
        match fifo.read(&mut buf) {
            Ok(0) => {
                // The writer came and went without a line: wait for the exit or another try.
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited ({status}) without a ready line"));
                }
                thread::sleep(Duration::from_micros(200));
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("reading the ready pipe: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&got);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// Waits until `fd` is readable (or hung up), at most `timeout`.
pub fn wait_readable(fd: &impl AsFd, timeout: Duration) -> Result<bool, String> {
    wait_ready(fd, PollFlags::IN, timeout)
}

/// Waits until `fd` is writable, at most `timeout`.
pub fn wait_writable(fd: &impl AsFd, timeout: Duration) -> Result<bool, String> {
    wait_ready(fd, PollFlags::OUT, timeout)
}

/// Polls `fd` for `events`, at most `timeout`; an interrupted wait counts as not ready
/// (callers loop on their own deadline).
fn wait_ready(fd: &impl AsFd, events: PollFlags, timeout: Duration) -> Result<bool, String> {
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [PollFd::new(fd, events)];
    match poll(&mut fds, Some(&ts)) {
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(format!("poll: {e}")),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// What a process holds, from `/proc/PID`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Of which anonymous memory, KiB (`RssAnon`: the heap, stacks, arenas).
    pub rss_anon_kib: u64,
    /// Of which file-backed pages, KiB (`RssFile`: the binary's and libraries' pages touched).
    pub rss_file_kib: u64,
    /// Threads.
    pub threads: u64,
    /// Open descriptors.
    pub fds: u64,
}

/// Reads a process's [`Footprint`].
pub fn footprint(pid: u32) -> Result<Footprint, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .count() as u64;
    Ok(Footprint {
        rss_kib: field("VmRSS:"),
        rss_anon_kib: field("RssAnon:"),
        rss_file_kib: field("RssFile:"),
        threads: field("Threads:"),
        fds,
    })
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, is index 0).
fn stat_fields(pid: u32) -> Result<Vec<String>, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    Ok(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of a process (its own threads, not its children).
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    // Fields 14 and 15 of stat(5); index 0 here is field 3.
    ticks_to_time(pid, &[11, 12])
}

/// Time a process's threads have spent on a CPU, in nanoseconds (the first field of each
/// `/proc/PID/task/TID/schedstat`): unlike [`cpu_time`], not rounded to clock ticks, so a
/// few hundred keystrokes' worth can be measured.
pub fn run_time(pid: u32) -> Result<Duration, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut total = Duration::ZERO;
    for task in tasks.flatten() {
        let path = task.path().join("schedstat");
        // A thread that ended between the listing and the read has nothing more to add.
        let Ok(stat) = fs::read_to_string(&path) else {
            continue;
        };
        let ns = stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{}: unexpected {stat:?}", path.display()))?;
        total += Duration::from_nanos(ns);
    }
    Ok(total)
}

/// User + system CPU time of a process's children that it has reaped (cutime + cstime).
pub fn children_cpu_time(pid: u32) -> Result<Duration, String> {
    ticks_to_time(pid, &[13, 14])
}

/// Sums the given clock-tick fields of `/proc/PID/stat` (indices as in [`stat_fields`]).
fn ticks_to_time(pid: u32, indices: &[usize]) -> Result<Duration, String> {
    let fields = stat_fields(pid)?;
    let ticks: u64 = indices
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Raises this process's descriptor limit to its hard limit (children inherit it).
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.unwrap_or(1 << 20);
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => target,
        Err(_) => limit.current.unwrap_or(1024),
    }
}

/// Every process and its parent, from `/proc`.
fn parents() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let ppid = stat_fields(p).ok()?.get(1)?.parse::<u32>().ok()?;
            Some((p, ppid))
        })
        .collect()
}

/// The children of `pid` (zombies included), from `/proc`.
pub fn children(pid: u32) -> Vec<u32> {
    parents()
        .into_iter()
        .filter(|&(_, parent)| parent == pid)
        .map(|(p, _)| p)
        .collect()
}

/// How many processes descend from `pid` (children, their children, ...), from `/proc`.
pub fn descendants(pid: u32) -> u64 {
    let parents = parents();
    let mut family = vec![pid];
    let mut at = 0;
    while let Some(&parent) = family.get(at) {
        family.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        at += 1;
    }
    family.len() as u64 - 1
}
