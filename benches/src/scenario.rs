//! The end-to-end measurements, each on a fresh server (or a bare pty for the ceiling).
//!
//! Programs run under `sh -c`; each prints `R` once its terminal is set up, so timing
//! starts only when the program is ready (a raw-mode switch racing the first keystroke
//! would otherwise be measured).

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::link::{create_session, recv_until, Link, PtyLink, RelayLink, WsLink};
use crate::proc::{children_cpu_time, cpu_time, run_time, Footprint, Server};
use crate::stats::{curve_windows, percentile, sorted_micros};
use crate::ttyd::Ttyd;

/// Raw mode, no echo: every byte sent comes back once, from `cat`.
pub const ECHO_SCRIPT: &str = "stty raw -echo; printf R; exec cat";

/// Keystrokes not measured before the 2000 that are (caches, first-use allocations).
const ECHO_WARMUP: usize = 100;

/// Echo latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest round trip.
    pub max: f64,
}

/// A bulk run: throughput, and the CPU each process on the path spent per MiB (ms).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulk {
    /// MiB per second from the request to the last byte.
    pub mib_per_s: f64,
    /// The server's user+system time (`None` on a bare pty).
    pub server_ms: Option<f64>,
    /// The load client's reading thread: the WebSocket client, or the bare pty reader
    /// (the floor any server pays for reading a pty).
    pub reader_ms: f64,
    /// The program writing the file (`cat`); `None` when it was gone before it was read.
    pub program_ms: Option<f64>,
}

/// CPU used so far by the processes of a bulk run.
struct CpuSnapshot {
    server: Option<Duration>,
    reader: Duration,
    program: Option<Duration>,
}

impl CpuSnapshot {
    fn take(server: Option<u32>, program: u32) -> Result<CpuSnapshot, String> {
        Ok(CpuSnapshot {
            server: server.map(cpu_time).transpose()?,
            reader: thread_cpu(),
            program: cpu_time(program).ok(),
        })
    }

    /// The CPU per MiB each process spent since `before`.
    fn since(&self, before: &CpuSnapshot, bytes: usize, took: Duration) -> Bulk {
        let per = |a: Option<Duration>, b: Option<Duration>| {
            a.zip(b)
                .map(|(a, b)| ms_per_mib(a.saturating_sub(b), bytes))
        };
        Bulk {
            mib_per_s: mib_per_s(bytes, took),
            server_ms: per(self.server, before.server),
            reader_ms: ms_per_mib(self.reader.saturating_sub(before.reader), bytes),
            program_ms: per(self.program, before.program),
        }
    }
}

/// The script that waits for one byte, then writes `file` with no output processing.
pub fn bulk_script(file: &Path) -> String {
    format!(
        "stty raw -echo -opost; printf R; head -c 1 >/dev/null; exec cat {}",
        file.display()
    )
}

/// `-c` for a server: `sh -c 'SCRIPT'` (scripts hold no single quotes).
fn command(script: &str) -> String {
    format!("sh -c '{script}'")
}

/// Waits for the program's `R`.
fn wait_ready(link: &mut dyn Link) -> Result<(), String> {
    recv_until(link, |got| got.contains(&b'R')).map(|_| ())
}

/// Round trip number `i`: sends one byte and waits for exactly that byte back.
fn round_trip(link: &mut dyn Link, i: usize) -> Result<Duration, String> {
    let byte = b'a' + (i % 26) as u8;
    let start = Instant::now();
    link.send(&[byte])?;
    let got = recv_until(link, |got| !got.is_empty())?;
    let took = start.elapsed();
    if got != [byte] {
        return Err(format!(
            "echo {i}: sent {:?}, got {:?}",
            byte as char,
            String::from_utf8_lossy(&got)
        ));
    }
    Ok(took)
}

/// Percentiles of round-trip samples.
fn echo_stats(samples: &[Duration]) -> Echo {
    let sorted = sorted_micros(samples);
    let at = |p| percentile(&sorted, p).unwrap_or(f64::NAN);
    Echo {
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: at(100.0),
    }
}

/// Asks a ready bulk program for its file and receives all of it, checking every byte.
fn bulk_receive(link: &mut dyn Link, content: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    link.send(b"g")?;
    let mut got = Vec::with_capacity(content.len());
    while got.len() < content.len() {
        let before = got.len();
        link.recv(&mut got)
            .map_err(|e| format!("after {before} of {} bytes: {e}", content.len()))?;
        let end = got.len().min(content.len());
        if got[before..end] != content[before..end] {
            let at = (before..end)
                .find(|&i| got[i] != content[i])
                .unwrap_or(before);
            return Err(format!(
                "bulk: byte {at} differs from the file (lost or altered bytes)"
            ));
        }
    }
    let took = start.elapsed();
    if got.len() > content.len() {
        return Err(format!(
            "bulk: {} bytes more than the file",
            got.len() - content.len()
        ));
    }
    Ok(took)
}

fn ms_per_mib(cpu: Duration, bytes: usize) -> f64 {
    cpu.as_secs_f64() * 1000.0 / (bytes as f64 / (1024.0 * 1024.0))
}

/// CPU time of the calling thread (nanosecond resolution).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn mib_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / took.as_secs_f64()
}

/// The ceiling's bulk: `cat` of the file on a bare pty, read directly.
pub fn ceiling_bulk(file: &Path, content: &[u8]) -> Result<Bulk, String> {
    let mut pty = PtyLink::spawn(&bulk_script(file))?;
    wait_ready(&mut pty)?;
    let before = CpuSnapshot::take(None, pty.pid())?;
    let took = bulk_receive(&mut pty, content)?;
    let after = CpuSnapshot::take(None, pty.pid())?;
    Ok(after.since(&before, content.len(), took))
}

/// The bulk throughput (MiB/s) of `cat` of the file on a bare pty relayed over loopback
/// TCP by a [`RelayLink`]: what any server's extra hop leaves of the ceiling.
pub fn relay_bulk(file: &Path, content: &[u8]) -> Result<f64, String> {
    let mut relay = RelayLink::spawn(&bulk_script(file))?;
    wait_ready(&mut relay)?;
    let took = bulk_receive(&mut relay, content)?;
    Ok(mib_per_s(content.len(), took))
}

/// A server the echo, typing, flood and bulk phases measure.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// An axs binary (`axs` or `axs-threads`).
    Axs(&'a Path),
    /// ttyd 1.7, the reference: one session per WebSocket.
    Ttyd(&'a Path),
}

/// A started [`Target`].
enum Running {
    Axs(Server),
    Ttyd(Ttyd),
}

impl Running {
    /// Starts `target` with `script` as every session's program.
    fn start(target: Target, script: &str) -> Result<Running, String> {
        match target {
            Target::Axs(bin) => start(bin, script, &[]).map(Running::Axs),
            Target::Ttyd(bin) => Ttyd::start(bin, &command(script)).map(Running::Ttyd),
        }
    }

    /// The server's pid.
    fn pid(&self) -> u32 {
        match self {
            Running::Axs(server) => server.pid(),
            Running::Ttyd(ttyd) => ttyd.pid(),
        }
    }

    /// A new session, attached.
    fn open(&mut self) -> BoxedLink {
        match self {
            Running::Axs(server) => {
                open_session(server).map(|w| Box::new(w) as Box<dyn Link + Send>)
            }
            Running::Ttyd(ttyd) => ttyd.open().map(|t| Box::new(t) as Box<dyn Link + Send>),
        }
    }
}

/// Starts `bin` running `script` for every session.
fn start(bin: &Path, script: &str, extra: &[&str]) -> Result<Server, String> {
    let cmd = command(script);
    let mut args = vec!["-c", cmd.as_str()];
    args.extend_from_slice(extra);
    Server::start(bin, &args)
}

/// Creates a session and attaches a WebSocket to it.
fn open_session(server: &mut Server) -> Result<WsLink, String> {
    let id = create_session(server.port)?;
    server.sessions.push(id);
    WsLink::connect(server.port, id)
}

/// Keystroke echo on a bare pty and through each server, side by side: the round trips
/// alternate between the targets (pty, relay, server 1, server 2, pty, ...), so a noisy
/// moment on a shared machine hits every target alike. One result per target: the pty,
/// the [`RelayLink`] (the least a server adds), then the servers.
pub fn echo_side_by_side(bins: &[Target], rounds: usize) -> Vec<Result<Echo, String>> {
    let mut servers = Vec::new();
    let mut links = vec![
        pty_link(PtyLink::spawn(ECHO_SCRIPT)),
        relay_link(RelayLink::spawn(ECHO_SCRIPT)),
    ];
    links.extend(
        bins.iter()
            .map(|bin| server_link(&mut servers, *bin, ECHO_SCRIPT)),
    );
    interleaved_round_trips(links, ECHO_WARMUP, rounds, Duration::ZERO)
}

/// Keystrokes not measured before the typing ones that are.
const TYPING_WARMUP: usize = 10;

/// A typing run on one target: the echo, and for a server the time its threads spent on
/// a CPU per keystroke (µs; waiting between keystrokes included, costs nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Typed {
    /// Echo latency.
    pub echo: Echo,
    /// Server on-CPU time per keystroke (µs); `None` for a bare pty.
    pub server_cpu_per_key: Option<f64>,
}

/// Typing: one keystroke every `think` (the pause people leave between keys), on a bare
/// pty read with `poll`, on one read with blocking `read`s (the kernel's floor), and
/// through each server. Interleaved as [`echo_side_by_side`], then a pause of `think`:
/// every target sees a gap of at least `think` before each keystroke. One result per
/// target: the polled pty, the blocking pty, the [`RelayLink`], then the servers.
pub fn typing_side_by_side(
    bins: &[Target],
    rounds: usize,
    think: Duration,
) -> Vec<Result<Typed, String>> {
    let mut servers = Vec::new();
    let mut links = vec![
        pty_link(PtyLink::spawn(ECHO_SCRIPT)),
        pty_link(PtyLink::spawn_blocking(ECHO_SCRIPT)),
        relay_link(RelayLink::spawn(ECHO_SCRIPT)),
    ];
    let mut pids = vec![None, None, None];
    for bin in bins {
        links.push(server_link(&mut servers, *bin, ECHO_SCRIPT));
        let started = links.last().is_some_and(Result::is_ok);
        pids.push(servers.last().filter(|_| started).map(Running::pid));
    }
    let run_times = |pids: &[Option<u32>]| -> Vec<Option<Duration>> {
        let at = |pid: &Option<u32>| pid.and_then(|p| run_time(p).ok());
        pids.iter().map(at).collect()
    };
    let before = run_times(&pids);
    let echoes = interleaved_round_trips(links, TYPING_WARMUP, rounds, think);
    let after = run_times(&pids);
    let keys = (TYPING_WARMUP + rounds) as f64;
    echoes
        .into_iter()
        .zip(before.into_iter().zip(after))
        .map(|(echo, times)| {
            let server_cpu_per_key = match times {
                (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64() * 1e6 / keys),
                _ => None,
            };
            echo.map(|echo| Typed {
                echo,
                server_cpu_per_key,
            })
        })
        .collect()
}

type BoxedLink = Result<Box<dyn Link + Send>, String>;

fn pty_link(pty: Result<PtyLink, String>) -> BoxedLink {
    pty.map(|p| Box::new(p) as Box<dyn Link + Send>)
}

fn relay_link(relay: Result<RelayLink, String>) -> BoxedLink {
    relay.map(|r| Box::new(r) as Box<dyn Link + Send>)
}

/// Starts `target` running `script` (kept in `servers`) and attaches to one session.
fn server_link(servers: &mut Vec<Running>, target: Target, script: &str) -> BoxedLink {
    Running::start(target, script).and_then(|mut server| {
        let link = server.open();
        servers.push(server);
        link
    })
}

/// Waits for every link's program, then `warmup + rounds` round trips on each in turn,
/// pausing `think` after each turn; the percentiles of the measured ones, per link.
fn interleaved_round_trips(
    mut links: Vec<BoxedLink>,
    warmup: usize,
    rounds: usize,
    think: Duration,
) -> Vec<Result<Echo, String>> {
    for link in links.iter_mut() {
        if let Ok(l) = link {
            if let Err(e) = wait_ready(l.as_mut()) {
                *link = Err(e);
            }
        }
    }
    let mut samples: Vec<Result<Vec<Duration>, String>> = links
        .iter()
        .map(|_| Ok(Vec::with_capacity(rounds)))
        .collect();
    for i in 0..warmup + rounds {
        for (link, samples) in links.iter_mut().zip(samples.iter_mut()) {
            let (Ok(link), Ok(list)) = (link, &mut *samples) else {
                continue;
            };
            match round_trip(link.as_mut(), i) {
                Ok(took) if i >= warmup => list.push(took),
                Ok(_) => {}
                Err(e) => *samples = Err(e),
            }
        }
        if !think.is_zero() {
            thread::sleep(think);
        }
    }
    links
        .into_iter()
        .zip(samples)
        .map(|(link, samples)| link.and(samples).map(|s| echo_stats(&s)))
        .collect()
}

/// One program for both sessions of the flood run, chosen by the first byte it reads:
/// `f` floods (`x` as fast as `tr` writes them), anything else echoes (`cat`).
pub const FLOOD_OR_ECHO_SCRIPT: &str = "stty raw -echo; printf R; m=$(head -c 1); \
     if [ \"$m\" = f ]; then exec tr \"\\000\" x </dev/zero; else exec cat; fi";

/// Typing into one session while another session of the same server floods output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flood {
    /// Typing echo with the other session idle.
    pub idle: Echo,
    /// Typing echo while the other session floods.
    pub flooded: Echo,
    /// What the flooding session delivered meanwhile, MiB/s.
    pub flood_mib_per_s: f64,
}

/// How long the flood runs before the typing is measured.
const FLOOD_RAMP: Duration = Duration::from_millis(300);

/// Typing echo in one session, first with a second session idle, then while the second
/// floods output that a client thread reads as fast as it can; on `bin` (`None`: two
/// bare ptys, the floor for the same CPU contention).
pub fn typing_under_flood(
    bin: Option<Target>,
    rounds: usize,
    think: Duration,
) -> Result<Flood, String> {
    let mut servers = Vec::new();
    let mut open = || match bin {
        None => pty_link(PtyLink::spawn(FLOOD_OR_ECHO_SCRIPT)),
        Some(bin) => match servers.first_mut() {
            None => server_link(&mut servers, bin, FLOOD_OR_ECHO_SCRIPT),
            Some(server) => server.open(),
        },
    };
    let mut typed = open()?;
    let mut flooding = open()?;
    wait_ready(typed.as_mut())?;
    wait_ready(flooding.as_mut())?;
    typed.send(b"e")?;
    let idle = typing(typed.as_mut(), rounds, think)?;
    flooding.send(b"f")?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        thread::spawn(move || drain_until(flooding.as_mut(), &stop))
    };
    thread::sleep(FLOOD_RAMP);
    let started = Instant::now();
    let flooded = typing(typed.as_mut(), rounds, think);
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let drained = reader
        .join()
        .map_err(|_| "the flood reader panicked".to_string())??;
    let flooded = flooded?;
    // Bytes before the ramp ended count too: a rate, not an exact figure.
    let flood_mib_per_s = mib_per_s(drained, took + FLOOD_RAMP);
    drop(servers);
    Ok(Flood {
        idle,
        flooded,
        flood_mib_per_s,
    })
}

/// Echo percentiles of `rounds` keystrokes one `think` apart (after a short warm-up).
fn typing(link: &mut dyn Link, rounds: usize, think: Duration) -> Result<Echo, String> {
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..TYPING_WARMUP + rounds {
        let took = round_trip(link, i)?;
        if i >= TYPING_WARMUP {
            samples.push(took);
        }
        thread::sleep(think);
    }
    Ok(echo_stats(&samples))
}

/// Reads (and counts) everything until `stop` is set.
fn drain_until(link: &mut dyn Link, stop: &std::sync::atomic::AtomicBool) -> Result<usize, String> {
    let mut total = 0;
    let mut buf = Vec::with_capacity(64 * 1024);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        total += link.recv(&mut buf)?;
        buf.clear();
    }
    Ok(total)
}

/// Bulk output through a server, with the server's CPU time over the run.
pub fn server_bulk(target: Target, file: &Path, content: &[u8]) -> Result<Bulk, String> {
    match target {
        Target::Axs(bin) => axs_bulk(bin, file, content),
        Target::Ttyd(bin) => ttyd_bulk(bin, file, content),
    }
}

/// Bulk output through ttyd. The program stays alive after the file (`cat FILE; exec
/// cat`): ttyd closes the WebSocket as soon as its program exits, without the output still
/// in the pty (the last ~10 KB of 4 MiB were lost in every such run), so the exiting
/// script of the other targets cannot measure it.
fn ttyd_bulk(bin: &Path, file: &Path, content: &[u8]) -> Result<Bulk, String> {
    let script = format!(
        "stty raw -echo -opost; printf R; head -c 1 >/dev/null; cat {}; exec cat",
        file.display()
    );
    let ttyd = Ttyd::start(bin, &command(&script))?;
    let mut link = ttyd.open()?;
    wait_ready(&mut link)?;
    let program = crate::proc::children(ttyd.pid())
        .first()
        .copied()
        .ok_or_else(|| "ttyd started no program".to_string())?;
    let before = CpuSnapshot::take(Some(ttyd.pid()), program)?;
    let took = bulk_receive(&mut link, content)?;
    let after = CpuSnapshot::take(Some(ttyd.pid()), program)?;
    Ok(after.since(&before, content.len(), took))
}

/// Bulk output through an axs binary.
fn axs_bulk(bin: &Path, file: &Path, content: &[u8]) -> Result<Bulk, String> {
    let mut server = start(bin, &bulk_script(file), &[])?;
    let mut ws = open_session(&mut server)?;
    let program = server.sessions.last().copied().unwrap_or_default();
    wait_ready(&mut ws)?;
    let before = CpuSnapshot::take(Some(server.pid()), program)?;
    let reaped_before = children_cpu_time(server.pid())?;
    let took = bulk_receive(&mut ws, content)?;
    let after = CpuSnapshot::take(Some(server.pid()), program)?;
    ws.read_to_exit(Duration::from_secs(10))
        .map_err(|e| format!("after the bulk output: {e}"))?;
    let mut bulk = after.since(&before, content.len(), took);
    // `cat` is gone by now; the server reaped it (before sending the exit message), so
    // its CPU time, all of it spent in this run, is in the server's children's time.
    let reaped = children_cpu_time(server.pid())?.saturating_sub(reaped_before);
    bulk.program_ms = Some(ms_per_mib(reaped, content.len()));
    Ok(bulk)
}

/// The marker the attach program prints last, so a client knows the replay is complete.
const END_MARKER: &[u8] = b"@END@";

/// Attach latency with a full ring: from connect to the last byte of the replay.
/// Returns the median in ms and the replay size in bytes.
pub fn server_attach(bin: &Path, file: &Path, attaches: usize) -> Result<(f64, usize), String> {
    let script = format!(
        "stty raw -echo -opost; cat {}; printf @END@; exec cat",
        file.display()
    );
    let mut server = start(bin, &script, &[])?;
    let id = create_session(server.port)?;
    server.sessions.push(id);
    // The first client waits until all output is in the ring.
    let mut first = WsLink::connect(server.port, id)?;
    recv_until(&mut first, |got| got.ends_with(END_MARKER))?;
    first.drop_connection();
    let mut times = Vec::with_capacity(attaches);
    let mut replay = 0;
    for _ in 0..attaches {
        let start = Instant::now();
        let mut ws = WsLink::connect(server.port, id)?;
        let got = recv_until(&mut ws, |got| got.ends_with(END_MARKER))?;
        times.push(start.elapsed());
        replay = got.len();
        ws.drop_connection();
    }
    let sorted = sorted_micros(&times);
    let median = percentile(&sorted, 50.0).unwrap_or(f64::NAN) / 1000.0;
    Ok((median, replay))
}

/// Session cost: create + attach + first byte, for `count` sessions kept open.
#[derive(Debug, Clone, Default)]
pub struct SessionCost {
    /// Median over all sessions, ms.
    pub median: f64,
    /// The curve: sessions `first..=last` (1-based) and their median, ms, one entry per
    /// window of [`curve_windows`].
    pub curve: Vec<(usize, usize, f64)>,
}

/// Creates `count` sessions one after the other, each attached until the end.
pub fn server_sessions(bin: &Path, count: usize) -> Result<SessionCost, String> {
    let limit = (count + 10).to_string();
    let mut server = start(bin, "printf R; exec cat", &["--max-sessions", &limit])?;
    let mut links = Vec::with_capacity(count);
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let start = Instant::now();
        let mut ws = open_session(&mut server).map_err(|e| format!("session {i}: {e}"))?;
        recv_until(&mut ws, |got| !got.is_empty()).map_err(|e| format!("session {i}: {e}"))?;
        times.push(start.elapsed());
        links.push(ws);
    }
    let ms = |d: &[Duration]| {
        let sorted = sorted_micros(d);
        percentile(&sorted, 50.0).unwrap_or(f64::NAN) / 1000.0
    };
    let curve = curve_windows(times.len())
        .into_iter()
        .map(|w| (w.start + 1, w.end, ms(&times[w])))
        .collect();
    let cost = SessionCost {
        median: ms(&times),
        curve,
    };
    for ws in links {
        ws.drop_connection();
    }
    Ok(cost)
}

/// Median start-up time (spawn to `READY`) over `starts` starts, ms.
pub fn startup(bin: &Path, starts: usize) -> Result<f64, String> {
    let mut times = Vec::with_capacity(starts);
    for _ in 0..starts {
        let mut server = Server::start(bin, &["-c", "cat"])?;
        times.push(server.startup);
        server.stop();
    }
    let sorted = sorted_micros(&times);
    Ok(percentile(&sorted, 50.0).unwrap_or(f64::NAN) / 1000.0)
}

/// One level of the scale run.
#[derive(Debug, Clone, Copy)]
pub struct ScaleRow {
    /// Idle attached sessions.
    pub sessions: usize,
    /// The server's footprint with them.
    pub footprint: Footprint,
    /// Wall time to create and attach the sessions added since the last level, seconds.
    pub fill_secs: f64,
}

/// What a scale run found.
#[derive(Debug, Clone, Default)]
pub struct Scale {
    /// One row per level reached.
    pub rows: Vec<ScaleRow>,
    /// Why it stopped before the last level.
    pub stopped: Option<String>,
    /// SIGTERM to exit with every session still there (`None`: killed after the wait).
    pub shutdown: Option<Duration>,
}

/// How long a server with thousands of sessions gets to shut down before it is killed.
const SCALE_STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle attached sessions (`cat`) at each level; stops at the first failure and says why.
pub fn scale(bin: &Path, levels: &[usize]) -> Scale {
    let most = levels.iter().copied().max().unwrap_or(0);
    let limit = (most + 100).to_string();
    let mut server = match Server::start(bin, &["-c", "cat", "--max-sessions", &limit]) {
        Ok(s) => s,
        Err(e) => {
            return Scale {
                stopped: Some(e),
                ..Scale::default()
            }
        }
    };
    let mut rows = Vec::new();
    let mut links: Vec<WsLink> = Vec::with_capacity(most);
    for &level in levels {
        let started = Instant::now();
        while links.len() < level {
            match open_session(&mut server) {
                Ok(ws) => links.push(ws),
                Err(e) => {
                    let alive = if server.is_running() {
                        "still running"
                    } else {
                        "exited"
                    };
                    let why = format!("session {} failed: {e} (server {alive})", links.len() + 1);
                    return finish_scale(server, links, rows, Some(why));
                }
            }
        }
        let fill_secs = started.elapsed().as_secs_f64();
        // Let the spawned programs and the server settle before reading /proc.
        thread::sleep(Duration::from_millis(500));
        match server.footprint() {
            Ok(footprint) => rows.push(ScaleRow {
                sessions: level,
                footprint,
                fill_secs,
            }),
            Err(e) => return finish_scale(server, links, rows, Some(e)),
        }
    }
    finish_scale(server, links, rows, None)
}

/// Drops the clients, then times the server's shutdown with all its sessions.
fn finish_scale(
    mut server: Server,
    links: Vec<WsLink>,
    rows: Vec<ScaleRow>,
    stopped: Option<String>,
) -> Scale {
    for ws in links {
        ws.drop_connection();
    }
    let shutdown = server.stop_within(SCALE_STOP_TIMEOUT);
    Scale {
        rows,
        stopped,
        shutdown,
    }
}
