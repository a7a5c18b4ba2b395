//! Starting a server binary the way client B does, and stopping it without leaving processes.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

use crate::http::{self, Response};
use crate::procfs;

/// How long a server may take to write `READY` (its own bound is 10 s; the machine is shared).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server gets to exit after SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A unique temporary directory, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/axs-conf-<pid>-<n>-<label>`.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "axs-conf-{}-{n}-{nanos}-{label}",
            std::process::id()
        ));
        if let Err(e) = fs::create_dir_all(&path) {
            panic!("cannot create temp dir {}: {e}", path.display());
        }
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        if let Err(e) = fs::write(&p, contents) {
            panic!("cannot write {}: {e}", p.display());
        }
        p
    }

    /// Creates a FIFO named `name` inside the directory (like `mkfifo`).
    pub fn fifo(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        if let Err(e) = rustix::fs::mknodat(CWD, &p, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
        {
            panic!("mkfifo {}: {e}", p.display());
        }
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A spawned server process with its output captured to files; no ready handling.
///
/// Dropping it stops the process (SIGTERM, bounded wait, SIGKILL) and kills the process
/// groups of every session registered with [`Proc::track_session`].
pub struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    /// The directory holding `stderr.log`, `stdout.log` and the ready FIFO.
    pub dir: TempDir,
    /// What was run, for failure messages.
    pub cmdline: String,
    sessions: Mutex<Vec<u32>>,
}

impl Proc {
    /// Spawns `bin args` with `env` added (RUST_LOG, AXS_TOKEN, AXS_VIEW_TOKEN and AXS_READY_PIPE are
    /// removed from the inherited environment first; `AXS_TEST_LOG` passes through as RUST_LOG).
    pub fn spawn(bin: &Path, args: &[String], env: &[(&str, &str)]) -> Proc {
        let dir = TempDir::new("server");
        let stderr = create(&dir.path().join("stderr.log"));
        let stdout = create(&dir.path().join("stdout.log"));
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env_remove("AXS_TOKEN")
            .env_remove("AXS_VIEW_TOKEN")
            .env_remove("AXS_READY_PIPE")
            .env_remove("AXS_PTY_PEER")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        if let Ok(filter) = std::env::var("AXS_TEST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let cmdline = format!("{} {}", bin.display(), shell_quote(args));
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot spawn `{cmdline}`: {e}"),
        };
        Proc {
            child,
            status: None,
            dir,
            cmdline,
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Remembers a session pid so that drop kills its process group if it outlived the server.
    pub fn track_session(&self, pid: u32) {
        if let Ok(mut s) = self.sessions.lock() {
            s.push(pid);
        }
    }

    /// The exit status if the process has exited (reaps it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to the server process (only while it has not been reaped).
    pub fn signal(&mut self, sig: Signal) {
        if self.try_wait().is_none() {
            let _ = rustix::process::kill_process(Pid::from_child(&self.child), sig);
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.dir.path().join("stderr.log"))
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.dir.path().join("stdout.log"))
    }

    /// The last lines of stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        tail(&self.dir.path().join("stderr.log"), 4096)
    }

    /// A block describing the server for a failure message.
    pub fn context(&self) -> String {
        format!(
            "server `{}` (pid {}), stderr tail:\n{}",
            self.cmdline,
            self.child.id(),
            indent(&self.stderr_tail())
        )
    }

    fn stop(&mut self) {
        // Only sessions that are still the server's children now can outlive it; an older
        // pid may lead another test's session by now (pids wrap). A server killed before
        // left its sessions to init: then every listed pid is looked at.
        let running = matches!(self.child.try_wait(), Ok(None));
        let live = running.then(|| procfs::children(self.child.id()));
        self.signal(Signal::TERM);
        if self.wait_timeout(STOP_TIMEOUT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let sessions = self.sessions.lock().map(|s| s.clone()).unwrap_or_default();
        let outlived = |pid: &u32| live.as_ref().is_none_or(|live| live.contains(pid));
        for pid in sessions.into_iter().filter(outlived) {
            kill_stray_group(pid);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() {
            eprintln!("---- {}", self.context());
        }
    }
}

/// Kills the process group led by `pid` if it still exists and `pid` still leads it.
fn kill_stray_group(pid: u32) {
    if procfs::pgid(pid) == Some(pid) {
        if let Some(p) = Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(p, Signal::KILL);
        }
    }
}

/// Why a start failed.
#[derive(Debug)]
pub enum StartError {
    /// The server wrote `ERROR <reason>` to the ready pipe.
    Error(String),
    /// The process exited without writing a line.
    Exited(String),
    /// Nothing arrived in time.
    Timeout(String),
    /// Something else arrived.
    Garbage(String),
}

/// A running server that wrote `READY`.
pub struct Server {
    /// The process; dropping the server stops it.
    pub proc: Proc,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts `bin -p PORT args` on a free loopback port and waits for `READY`; panics on failure.
    pub fn start(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut last = String::new();
        for _ in 0..4 {
            match Server::try_start(bin, args, env) {
                Ok(s) => return s,
                Err((StartError::Error(msg), _)) if looks_like_port_in_use(&msg) => last = msg,
                Err((e, proc)) => panic!("server did not start: {e:?}\n{}", proc.context()),
            }
        }
        panic!("server did not start: port in use four times in a row: {last}");
    }

    /// One start attempt on a fresh free port.
    pub fn try_start(
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, (StartError, Box<Proc>)> {
        let port = free_port();
        Server::try_start_on(bin, port, args, env).map(|proc| Server { proc, port })
    }

    /// One start attempt on `port`; returns the process either way.
    pub fn try_start_on(
        bin: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Proc, (StartError, Box<Proc>)> {
        let mut full = vec!["-p".to_string(), port.to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        let fifo_dir = TempDir::new("fifo");
        let fifo = fifo_dir.fifo("ready");
        let fifo_str = fifo.to_string_lossy().into_owned();
        let mut env2: Vec<(&str, &str)> = vec![("AXS_READY_PIPE", fifo_str.as_str())];
        env2.extend_from_slice(env);
        let mut proc = Proc::spawn(bin, &full, &env2);
        match read_ready_line(&fifo, &mut proc, READY_TIMEOUT) {
            Ok(line) if line == "READY" => Ok(proc),
            Ok(line) if line.starts_with("ERROR") => Err((StartError::Error(line), Box::new(proc))),
            Ok(line) => Err((StartError::Garbage(line), Box::new(proc))),
            Err(e) => Err((e, Box::new(proc))),
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// `http://127.0.0.1:PORT`, the server's own origin.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one HTTP request; panics (with the server's stderr) if no answer arrives.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        match http::request(self.port, method, path, headers, body) {
            Ok(r) => r,
            Err(e) => panic!(
                "{method} {path}: no HTTP answer: {e}\n{}",
                self.proc.context()
            ),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None)
    }

    /// `POST path` with a JSON body and Origin `https://localhost`, as the clients send it.
    pub fn post_json(&self, path: &str, json: &str) -> Response {
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Origin", "https://localhost"),
            ],
            Some(json.as_bytes()),
        )
    }

    /// Asserts `GET /status` answers 2xx with body `OK`; `after` names what came before.
    pub fn assert_alive(&self, after: &str) {
        let r = self.get("/status");
        assert!(
            r.is_success() && r.text().trim() == "OK",
            "after {after}: GET /status answered {} {:?} instead of 200 OK\n{}",
            r.status,
            r.text(),
            self.proc.context()
        );
    }

    /// Creates a terminal of `cols`x`rows` and returns its pid (registered for cleanup).
    pub fn create_terminal(&self, cols: u16, rows: u16) -> u32 {
        let r = self.post_json(
            "/terminals",
            &format!("{{\"cols\":{cols},\"rows\":{rows}}}"),
        );
        self.expect_pid(&r)
    }

    /// Parses a create answer as a pid and registers it; panics with details otherwise.
    pub fn expect_pid(&self, r: &Response) -> u32 {
        let text = r.text();
        match text.trim().parse::<u32>() {
            Ok(pid) if r.is_success() => {
                self.proc.track_session(pid);
                pid
            }
            _ => panic!(
                "POST /terminals answered {} {:?}; expected 2xx with the pid as text\n{}",
                r.status,
                text,
                self.proc.context()
            ),
        }
    }

    /// `POST /terminals/{pid}/terminate` with no body; asserts a 2xx answer.
    pub fn terminate(&self, pid: u32) {
        let path = format!("/terminals/{pid}/terminate");
        let r = self.request("POST", &path, &[], None);
        assert!(
            r.is_success(),
            "POST {path} answered {} {:?}; expected 2xx\n{}",
            r.status,
            r.text(),
            self.proc.context()
        );
    }
}

fn looks_like_port_in_use(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("in use") || m.contains("os error 98") || m.contains("addrinuse")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("cannot bind 127.0.0.1:0: {e}"),
    }
}

/// Opens `fifo` for reading without blocking (as client B's shell does, but with a watchdog)
/// and reads one line, failing if `proc` exits first or `timeout` passes.
pub fn read_ready_line(
    fifo: &Path,
    proc: &mut Proc,
    timeout: Duration,
) -> Result<String, StartError> {
    let fd = match rustix::fs::open(
        fifo,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Err(StartError::Garbage(format!("cannot open FIFO: {e}"))),
    };
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        drain_fifo(&fd, &mut got);
        if let Some(i) = got.iter().position(|&b| b == b'\n') {
            return Ok(String::from_utf8_lossy(&got[..i]).into_owned());
        }
        if let Some(status) = proc.try_wait() {
            drain_fifo(&fd, &mut got);
            if let Some(i) = got.iter().position(|&b| b == b'\n') {
                return Ok(String::from_utf8_lossy(&got[..i]).into_owned());
            }
            return Err(StartError::Exited(format!(
                "exited with {status} before writing a line to the ready pipe (got {:?})",
                String::from_utf8_lossy(&got)
            )));
        }
        if Instant::now() >= deadline {
            return Err(StartError::Timeout(format!(
                "no line on the ready pipe within {timeout:?} (got {:?})",
                String::from_utf8_lossy(&got)
            )));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn drain_fifo(fd: &OwnedFd, got: &mut Vec<u8>) {
    let mut buf = [0u8; 512];
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

/// Connects to the server's port once, without retries.
pub fn connect_once(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect(("127.0.0.1", port))
}

fn create(p: &Path) -> File {
    match File::create(p) {
        Ok(f) => f,
        Err(e) => panic!("cannot create {}: {e}", p.display()),
    }
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(p: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(p) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    if buf.is_empty() {
        return "(empty)".into();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

fn shell_quote(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A helper binary of this crate (`fake-lsp`, `ws-client`): `$env_var` when set, else
/// `name` beside the server binary `bin` (the same target directory), built with cargo
/// the first time it is missing.
pub fn suite_binary(bin: &Path, name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let sibling = bin.with_file_name(name);
    static BUILD: Mutex<()> = Mutex::new(());
    let _once = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !sibling.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "axs-conformance", "--bin", name]);
        if bin.components().any(|c| c.as_os_str() == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().map_err(|e| e.to_string());
        assert!(
            matches!(status, Ok(s) if s.success()) && sibling.exists(),
            "cannot build {name} ({status:?}); set {env_var} to its path"
        );
    }
    sibling
}
