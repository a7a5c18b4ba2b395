//! axs-lsp-load: the language-server bridge's load client. Measures `<bin> lsp` (one bridge
//! per binary given) against the same fake language server (`fake-lsp`, echo mode) driven
//! on direct pipes, interleaved so machine noise hits every target alike, and prints a
//! markdown table. See BENCHMARKS.md, "The LSP bridge".
//!
//! Usage: `axs-lsp-load [--rounds N] [--bulk-mib N] [--bulk-reps N] --fake PATH NAME=PATH...`
//!
//! - round trip: a ~100-byte JSON-RPC body sent and its echo received whole, `--rounds`
//!   times per target (default 2000), one round per target in turn; p50, p99, and the p50
//!   ratio to the direct pipes;
//! - bulk: one `--bulk-mib` MiB body (default 32) sent and echoed back whole, checked
//!   byte-exact, `--bulk-reps` times per target (default 3), interleaved; the median time;
//! - the bridge's resident set: idle after start, with 10 open sockets each past one round
//!   trip, and idle again after the bulk runs.
//!
//! Every process it starts (bridges with a temporary HOME and `--port 0`, the direct
//! fake-lsp) is stopped by its own pid, and the bridges' programs by their process groups;
//! every wait is bounded by [`STALL`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use axs_benches::link::{connect_loopback, http_request, read_failure, upgrade, STALL};
use axs_benches::proc::{
    footprint, kill_stray_group, terminate_child, wait_readable, wait_writable, Scratch,
};
use axs_benches::stats::{median, percentile, sorted_micros};
use tungstenite::{Message, WebSocket};

/// The direct-pipes column's name.
const PIPE: &str = "pipe";
/// Untimed round trips per target before the timed ones (page faults, lazy set-up).
const WARMUP_ROUNDS: usize = 100;
/// Sockets open at once for the "with 10 sockets" resident set.
const OPEN_SOCKETS: usize = 10;
/// How long a bridge gets to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the bridge gets to spawn or reap a socket's program before the RSS is read.
const SETTLE: Duration = Duration::from_millis(300);

/// What to run.
struct Options {
    rounds: usize,
    bulk_mib: usize,
    bulk_reps: usize,
    fake: PathBuf,
    bridges: Vec<(String, PathBuf)>,
}

const USAGE: &str =
    "usage: axs-lsp-load [--rounds N] [--bulk-mib N] [--bulk-reps N] --fake PATH NAME=PATH...";

fn parse_args() -> Result<Options, String> {
    let mut rounds = 2000;
    let mut bulk_mib = 32;
    let mut bulk_reps = 3;
    let mut fake = None;
    let mut bridges = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => rounds = number(&value("--rounds")?)?.max(1),
            "--bulk-mib" => bulk_mib = number(&value("--bulk-mib")?)?,
            "--bulk-reps" => bulk_reps = number(&value("--bulk-reps")?)?,
            "--fake" => fake = Some(PathBuf::from(value("--fake")?)),
            other => match other.split_once('=') {
                Some((name, path)) => bridges.push((name.to_string(), PathBuf::from(path))),
                None => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
            },
        }
    }
    match fake {
        Some(fake) if !bridges.is_empty() => Ok(Options {
            rounds,
            bulk_mib,
            bulk_reps,
            fake,
            bridges,
        }),
        _ => Err(USAGE.into()),
    }
}

fn number(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// One end of a language-server conversation: sends a body, receives one whole body.
trait Peer {
    /// Sends `body` as one message.
    fn send(&mut self, body: &str) -> Result<(), String>;
    /// Waits (bounded) for the next whole message and returns its body.
    fn recv(&mut self) -> Result<Vec<u8>, String>;
}

/// The fake server on direct pipes, framed with `Content-Length` by this client.
struct PipePeer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// Bytes read and not yet returned as a message.
    buffer: Vec<u8>,
}

impl PipePeer {
    /// Spawns `fake` with piped stdin/stdout (both non-blocking on this side), stderr null.
    fn spawn(fake: &Path) -> Result<PipePeer, String> {
        let mut child = Command::new(fake)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", fake.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("fake-lsp without pipes".into());
        };
        // Only this side's ends: the child's ends stay blocking.
        rustix::io::ioctl_fionbio(&stdin, true).map_err(|e| format!("stdin nonblocking: {e}"))?;
        rustix::io::ioctl_fionbio(&stdout, true).map_err(|e| format!("stdout nonblocking: {e}"))?;
        Ok(PipePeer {
            child,
            stdin: Some(stdin),
            stdout,
            buffer: Vec::with_capacity(64 * 1024),
        })
    }

    /// Writes all of `bytes`, waiting (bounded) whenever the pipe is full.
    fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        while !bytes.is_empty() {
            match stdin.write(bytes) {
                Ok(0) => return Err("pipe write: wrote nothing".into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !wait_writable(&*stdin, STALL)? {
                        return Err(format!("pipe: full for {STALL:?}"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("pipe write: {e}")),
            }
        }
        Ok(())
    }

    /// Reads what is there into the buffer, waiting (bounded) when nothing is.
    fn fill(&mut self) -> Result<(), String> {
        let start = self.buffer.len();
        // Read in large steps: a 32 MiB body should not take 500 small reads.
        self.buffer.resize(start + 1024 * 1024, 0);
        loop {
            match self.stdout.read(&mut self.buffer[start..]) {
                Ok(0) => {
                    self.buffer.truncate(start);
                    return Err("fake-lsp closed its stdout".into());
                }
                Ok(n) => {
                    self.buffer.truncate(start + n);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !wait_readable(&self.stdout, STALL)? {
                        self.buffer.truncate(start);
                        return Err(format!("pipe: no output for {STALL:?}"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buffer.truncate(start);
                    return Err(format!("pipe read: {e}"));
                }
            }
        }
    }
}

impl Peer for PipePeer {
    fn send(&mut self, body: &str) -> Result<(), String> {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        self.write_all(header.as_bytes())?;
        self.write_all(body.as_bytes())
    }

    fn recv(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some((header_len, body_len)) = parse_header(&self.buffer)? {
                let end = header_len + body_len;
                if self.buffer.len() >= end {
                    let rest = self.buffer.split_off(end);
                    let mut message = std::mem::replace(&mut self.buffer, rest);
                    message.drain(..header_len);
                    return Ok(message);
                }
                self.buffer.reserve(end - self.buffer.len());
            }
            self.fill()?;
        }
    }
}

impl Drop for PipePeer {
    fn drop(&mut self) {
        // End of stdin: the fake exits 0; a bounded wait, then SIGKILL.
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The header block at the start of `buffer`: `(header length, body length)` once the
/// blank line has arrived, `None` before; an error when it has no `Content-Length`.
fn parse_header(buffer: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let Some(blank) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buffer[..blank]);
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match length {
        Some(length) => Ok(Some((blank + 4, length))),
        None => Err(format!("header without Content-Length: {head:?}")),
    }
}

/// A WebSocket to a bridge: one JSON-RPC body per text frame.
struct WsPeer {
    ws: WebSocket<TcpStream>,
}

impl WsPeer {
    /// Connects to `ws://127.0.0.1:<port>/` as the editor does (Origin `https://localhost`,
    /// TCP_NODELAY), with no size limits and [`STALL`] as the read and write timeout.
    fn connect(port: u16) -> Result<WsPeer, String> {
        let stream = connect_loopback(port)?;
        stream
            .set_write_timeout(Some(STALL))
            .map_err(|e| format!("timeout: {e}"))?;
        let ws = upgrade(stream, port, "/")?;
        Ok(WsPeer { ws })
    }
}

impl Peer for WsPeer {
    fn send(&mut self, body: &str) -> Result<(), String> {
        self.ws
            .send(Message::text(body))
            .map_err(|e| format!("ws send: {e}"))
    }

    fn recv(&mut self) -> Result<Vec<u8>, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => return Ok(bytes.to_vec()),
                Ok(Message::Close(close)) => return Err(format!("ws closed: {close:?}")),
                Ok(_) => {}
                Err(e) => return Err(read_failure(e)),
            }
        }
    }
}

impl Drop for WsPeer {
    fn drop(&mut self) {
        // A clean close: the bridge then closes the program's stdin and the fake exits.
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// A running `<bin> lsp --session bench --port 0 <fake>` with its own HOME.
struct Bridge {
    child: Child,
    port: u16,
    /// Program pids seen in `/status` (process-group leaders), killed at stop if still there.
    programs: Vec<u32>,
    /// The temporary HOME (port file, the bridge's stderr log), removed on drop.
    home: Scratch,
}

impl Bridge {
    /// Starts the bridge and waits (bounded) for its stdout line; checks the port file.
    fn start(name: &str, bin: &Path, fake: &Path) -> Result<Bridge, String> {
        let home = Scratch::new(&format!("lsp-{name}"))?;
        let log = File::create(home.path().join("bridge.stderr"))
            .map_err(|e| format!("stderr log: {e}"))?;
        let mut child = Command::new(bin)
            .args(["lsp", "--session", "bench", "--port", "0"])
            .arg(fake)
            .env("HOME", home.path())
            .env_remove("RUST_LOG")
            .env_remove("AXS_TOKEN")
            .env_remove("AXS_READY_PIPE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let line = match child.stdout.take() {
            Some(stdout) => read_line(stdout, STALL),
            None => Err("no stdout pipe".into()),
        };
        let mut bridge = Bridge {
            child,
            port: 0,
            programs: Vec::new(),
            home,
        };
        let port = line.and_then(|l| {
            l.strip_prefix("listening on 127.0.0.1:")
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or(format!("unexpected stdout line {l:?}"))
        });
        match port.and_then(|p| bridge.check_port_file(p).map(|()| p)) {
            Ok(p) => {
                bridge.port = p;
                Ok(bridge)
            }
            Err(e) => {
                let log = bridge.stderr_log();
                bridge.stop();
                Err(format!(
                    "{} lsp: {e}; stderr: {}",
                    bin.display(),
                    log.trim()
                ))
            }
        }
    }

    /// The port file the editor reads must hold the announced port.
    fn check_port_file(&self, port: u16) -> Result<(), String> {
        let path = self.home.path().join(".axs/lsp_ports/fake-lsp_bench");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("port file {}: {e}", path.display()))?;
        if text.trim() == port.to_string() {
            Ok(())
        } else {
            Err(format!("port file says {text:?}, stdout {port}"))
        }
    }

    fn stderr_log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("bridge.stderr")).unwrap_or_default()
    }

    /// The bridge process's resident set now, KiB.
    fn rss_kib(&self) -> Result<u64, String> {
        footprint(self.child.id()).map(|f| f.rss_kib)
    }

    /// The bridge process's peak resident set so far (`VmHWM`), KiB.
    fn peak_rss_kib(&self) -> Result<u64, String> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or(format!("/proc/{pid}/status: no VmHWM"))
    }

    /// Notes the programs `/status` lists (to kill stragglers at stop); returns how many.
    fn note_programs(&mut self) -> Result<usize, String> {
        let (status, body) = http_request(self.port, "GET", "/status", b"")?;
        if status != 200 {
            return Err(format!("/status answered {status}: {body}"));
        }
        let pids = status_pids(&body);
        for &pid in &pids {
            if !self.programs.contains(&pid) {
                self.programs.push(pid);
            }
        }
        Ok(pids.len())
    }

    /// SIGTERM, a bounded wait, SIGKILL; then the groups of programs that outlived it.
    fn stop(&mut self) {
        if terminate_child(&mut self.child, STOP_TIMEOUT).is_none() {
            eprintln!(
                "axs-lsp-load: bridge {} ignored SIGTERM; killed it",
                self.child.id()
            );
        }
        for &pid in &self.programs {
            kill_stray_group(pid);
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `"pid":N` values of a `/status` body (no JSON parser in this crate: the shape is fixed).
fn status_pids(body: &str) -> Vec<u32> {
    body.split("\"pid\":")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Reads the first line of a child's stdout, at most `timeout`.
fn read_line(mut stdout: ChildStdout, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no stdout line within {timeout:?}"));
        }
        if !wait_readable(&stdout, left)? {
            continue;
        }
        match stdout.read(&mut buf) {
            Ok(0) => return Err("stdout closed before a line (the bridge exited?)".into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading stdout: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&got);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// A small JSON-RPC request, padded to about `len` bytes (a hover request's shape).
fn small_body(id: usize, len: usize) -> String {
    let head =
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"textDocument/hover","params":{{"pad":""#);
    let tail = r#""}}"#;
    let pad = len.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// A `mib` MiB JSON-RPC notification of printable ASCII (valid UTF-8, no escapes).
fn bulk_body(mib: usize) -> String {
    let len = mib * 1024 * 1024;
    let head = r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"text":""#;
    let tail = r#""}}"#;
    let mut body = String::with_capacity(len);
    body.push_str(head);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    let fill = len.saturating_sub(head.len() + tail.len());
    body.extend((0..fill).map(|i| alphabet[(i * 7 + i / 101) % alphabet.len()] as char));
    body.push_str(tail);
    body
}

/// Sends `body`, receives one message; checks it is `body` byte for byte; returns the time.
fn round_trip(peer: &mut dyn Peer, body: &str) -> Result<Duration, String> {
    let started = Instant::now();
    peer.send(body)?;
    let echo = peer.recv()?;
    let took = started.elapsed();
    if echo != body.as_bytes() {
        return Err(format!(
            "echo differs: sent {} bytes, got {} bytes",
            body.len(),
            echo.len()
        ));
    }
    Ok(took)
}

/// The measurements of one target (the pipes or a bridge).
#[derive(Default)]
struct Figures {
    rounds: Vec<Duration>,
    bulk: Vec<Duration>,
    rss_idle_kib: Option<u64>,
    rss_open_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
}

/// Loads the machine (1, 5, 15 min) from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let load_before = load_average();
    match run(&options) {
        Ok(figures) => {
            print_report(&options, &figures, &load_before, &load_average());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("axs-lsp-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts everything, measures, stops everything (also on errors, through `Drop`).
fn run(options: &Options) -> Result<BTreeMap<String, Figures>, String> {
    let mut figures: BTreeMap<String, Figures> = BTreeMap::new();
    let mut bridges = Vec::new();
    for (name, bin) in &options.bridges {
        let bridge = Bridge::start(name, bin, &options.fake)?;
        thread::sleep(SETTLE);
        figures.entry(name.clone()).or_default().rss_idle_kib = Some(bridge.rss_kib()?);
        bridges.push((name.clone(), bridge));
    }
    eprintln!("axs-lsp-load: {OPEN_SOCKETS} sockets per bridge");
    for (name, bridge) in &mut bridges {
        let kib = with_open_sockets(bridge)?;
        figures.entry(name.clone()).or_default().rss_open_kib = Some(kib);
    }

    let mut peers: Vec<(String, Box<dyn Peer>)> =
        vec![(PIPE.to_string(), Box::new(PipePeer::spawn(&options.fake)?))];
    for (name, bridge) in &mut bridges {
        peers.push((name.clone(), Box::new(WsPeer::connect(bridge.port)?)));
        bridge.note_programs()?;
    }

    eprintln!(
        "axs-lsp-load: {} round trips per target, interleaved",
        options.rounds
    );
    for round in 0..WARMUP_ROUNDS + options.rounds {
        let body = small_body(round, 100);
        for (name, peer) in &mut peers {
            let took = round_trip(peer.as_mut(), &body).map_err(|e| format!("{name}: {e}"))?;
            if round >= WARMUP_ROUNDS {
                figures.entry(name.clone()).or_default().rounds.push(took);
            }
        }
    }

    if options.bulk_reps > 0 && options.bulk_mib > 0 {
        eprintln!(
            "axs-lsp-load: {} MiB echoed {} times per target, interleaved",
            options.bulk_mib, options.bulk_reps
        );
        let body = bulk_body(options.bulk_mib);
        for _ in 0..options.bulk_reps {
            for (name, peer) in &mut peers {
                let took =
                    round_trip(peer.as_mut(), &body).map_err(|e| format!("{name}: {e}, bulk"))?;
                figures.entry(name.clone()).or_default().bulk.push(took);
            }
        }
    }
    drop(peers);

    for (name, bridge) in &bridges {
        // Wait until the benchmark socket's program is reaped, then read the idle RSS.
        wait_no_programs(bridge)?;
        let entry = figures.entry(name.clone()).or_default();
        entry.rss_after_kib = Some(bridge.rss_kib()?);
        entry.rss_peak_kib = Some(bridge.peak_rss_kib()?);
    }
    Ok(figures)
}

/// Opens [`OPEN_SOCKETS`] sockets, one round trip on each (so each has its program), reads
/// the bridge's RSS, then closes them.
fn with_open_sockets(bridge: &mut Bridge) -> Result<u64, String> {
    let mut sockets = Vec::new();
    for i in 0..OPEN_SOCKETS {
        let mut peer = WsPeer::connect(bridge.port)?;
        round_trip(&mut peer, &small_body(i, 100))?;
        sockets.push(peer);
    }
    let programs = bridge.note_programs()?;
    if programs != OPEN_SOCKETS {
        return Err(format!(
            "/status lists {programs} programs, {OPEN_SOCKETS} sockets are open"
        ));
    }
    thread::sleep(SETTLE);
    let kib = bridge.rss_kib()?;
    drop(sockets);
    wait_no_programs(bridge)?;
    Ok(kib)
}

/// Waits (bounded) until `/status` lists no program, then lets the bridge settle.
fn wait_no_programs(bridge: &Bridge) -> Result<(), String> {
    let deadline = Instant::now() + STALL;
    loop {
        let (_, body) = http_request(bridge.port, "GET", "/status", b"")?;
        if status_pids(&body).is_empty() {
            thread::sleep(SETTLE);
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("programs still listed after {STALL:?}: {body}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn print_report(
    options: &Options,
    figures: &BTreeMap<String, Figures>,
    load_before: &str,
    load_after: &str,
) {
    let mut targets = vec![PIPE.to_string()];
    targets.extend(options.bridges.iter().map(|(name, _)| name.clone()));
    let cell = |f: Option<f64>, digits: usize| match f {
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    };
    let p = |name: &str, q: f64| {
        figures
            .get(name)
            .and_then(|f| percentile(&sorted_micros(&f.rounds), q))
    };
    let bulk_ms = |name: &str| {
        figures.get(name).and_then(|f| {
            let ms: Vec<f64> = f.bulk.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            median(&ms)
        })
    };
    let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
    let rss = |name: &str, pick: fn(&Figures) -> Option<u64>| {
        figures.get(name).and_then(|f| mib(pick(f)))
    };
    let size_mib = options.bulk_mib as f64;

    println!("load average before: {load_before}; after: {load_after} (1, 5, 15 min)\n");
    println!(
        "{} round trips of a {}-byte body per target, interleaved; {} MiB echoed {} times per \
         target (median).\n",
        options.rounds,
        small_body(0, 100).len(),
        options.bulk_mib,
        options.bulk_reps
    );
    println!("| metric | {} |", targets.join(" | "));
    println!("|---|{}", "---|".repeat(targets.len()));
    let row = |label: &str, values: Vec<String>| println!("| {label} | {} |", values.join(" | "));
    let pipe_p50 = p(PIPE, 50.0);
    row(
        "round trip p50 (µs)",
        targets.iter().map(|t| cell(p(t, 50.0), 1)).collect(),
    );
    row(
        "round trip p99 (µs)",
        targets.iter().map(|t| cell(p(t, 99.0), 1)).collect(),
    );
    row(
        "p50 ÷ pipe p50",
        targets
            .iter()
            .map(|t| {
                let ratio = p(t, 50.0).zip(pipe_p50).map(|(v, b)| v / b);
                cell(ratio, 2) + "×"
            })
            .collect(),
    );
    row(
        &format!("{} MiB echo (ms)", options.bulk_mib),
        targets.iter().map(|t| cell(bulk_ms(t), 0)).collect(),
    );
    row(
        "MiB/s each way (2 × size ÷ echo time)",
        targets
            .iter()
            .map(|t| cell(bulk_ms(t).map(|ms| 2.0 * size_mib / (ms / 1e3)), 0))
            .collect(),
    );
    row(
        "bridge RSS idle (MiB)",
        targets
            .iter()
            .map(|t| cell(rss(t, |f| f.rss_idle_kib), 1))
            .collect(),
    );
    row(
        &format!("bridge RSS, {OPEN_SOCKETS} sockets open (MiB)"),
        targets
            .iter()
            .map(|t| cell(rss(t, |f| f.rss_open_kib), 1))
            .collect(),
    );
    row(
        "bridge RSS idle after the bulk runs (MiB)",
        targets
            .iter()
            .map(|t| cell(rss(t, |f| f.rss_after_kib), 1))
            .collect(),
    );
    row(
        "bridge peak RSS over the run, VmHWM (MiB)",
        targets
            .iter()
            .map(|t| cell(rss(t, |f| f.rss_peak_kib), 1))
            .collect(),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{bulk_body, parse_header, small_body, status_pids};

    #[test]
    fn bodies_have_the_asked_sizes() {
        assert_eq!(small_body(1234, 100).len(), 100);
        assert_eq!(bulk_body(1).len(), 1024 * 1024);
        assert!(bulk_body(1).is_ascii());
    }

    #[test]
    fn headers_parse_case_insensitively() {
        assert_eq!(
            parse_header(b"Content-Length: 3\r\n\r\nabc").unwrap(),
            Some((21, 3))
        );
        assert_eq!(
            parse_header(b"content-length:3\r\nX: y\r\n\r\n").unwrap(),
            Some((26, 3))
        );
        assert_eq!(parse_header(b"Content-Length: 3\r\n").unwrap(), None);
        assert!(parse_header(b"X: y\r\n\r\n").is_err());
    }

    #[test]
    fn status_pids_are_read() {
        let body =
            r#"{"program":"f","args":[],"processes":[{"pid":12,"uptime_secs":1},{"pid": 7}]}"#;
        assert_eq!(status_pids(body), vec![12, 7]);
        assert!(status_pids(r#"{"processes":[]}"#).is_empty());
    }
}
