//! `axs-soak`: every kind of load at once against one server, then a check that it let go
//! of everything.
//!
//! ```text
//! axs-soak [--duration 60s] [--seed N] [--storms N] [--hold SECS] NAME=PATH
//! ```
//!
//! Starts `PATH` on a free loopback port (`RUST_LOG=warn`), runs the workers of
//! [`axs_benches::soak`] until the duration is up (reconnect storms with `?since=` resumes, a
//! slow reader checking every byte of a numbered stream, stalled clients, malformed
//! requests and frames, session churn), sampling the server's descriptors, threads, RSS and
//! descendant processes every few seconds. Then it waits for the server to settle and
//! fails (exit 1, one `axs-soak: FAIL:` line per problem) on any lost or duplicated byte,
//! wrong answer, panic in the server's log, or figure that did not come back: descriptors,
//! threads and processes exactly to their start, RSS within [`RSS_TOLERANCE_KIB`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axs_benches::proc::{descendants, Footprint, Server};
use axs_benches::soak::{self, Soak, SESSION_SCRIPT};

/// How often the server is sampled during the load.
const SAMPLE_EVERY: Duration = Duration::from_secs(3);
/// The longest wait, after the load, for descriptors, threads and processes to return:
/// above the retention, the terminate grace and the linger of the last connections.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// After those returned, how long RSS gets before it is read (freed memory given back).
const RSS_SETTLE: Duration = Duration::from_secs(2);
/// How far above its start RSS may end. Freed memory the allocator keeps for reuse is
/// normal; a leak grows with the run, so a 60 s run that ends several MiB up is suspect
/// and a 30 min run ending far above would be one.
const RSS_TOLERANCE_KIB: u64 = 6 * 1024;
/// Seconds an exited session is kept (short, so the end figures do not wait 5 minutes).
const RETENTION_SECS: &str = "2";
/// Seconds a client that reads nothing holds a program back (short, so it happens often).
const STALL_SECS: &str = "5";
/// Reconnect storms at once, one session each.
const STORMS: usize = 3;

/// What to run.
struct Options {
    duration: Duration,
    seed: u64,
    storms: usize,
    /// Seconds the server stays up after the end sample, for inspection (gdb, heaptrack).
    hold: u64,
    name: String,
    bin: PathBuf,
}

fn parse_args() -> Result<Options, String> {
    let usage = "usage: axs-soak [--duration 60s] [--seed N] [--storms N] [--hold SECS] NAME=PATH";
    let mut duration = Duration::from_secs(60);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut storms = STORMS;
    let mut hold = 0;
    let mut server = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--duration" => duration = parse_duration(&value("--duration")?)?,
            "--seed" => seed = number(&value("--seed")?)?,
            "--storms" => storms = number(&value("--storms")?)? as usize,
            "--hold" => hold = number(&value("--hold")?)?,
            other => match other.split_once('=') {
                Some((name, path)) if server.is_none() => {
                    server = Some((name.to_string(), PathBuf::from(path)))
                }
                _ => return Err(format!("unexpected argument {other:?}; {usage}")),
            },
        }
    }
    let (name, bin) = server.ok_or(usage)?;
    Ok(Options {
        duration,
        seed,
        storms,
        hold,
        name,
        bin,
    })
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// `90`, `90s`, `5m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.strip_suffix('m') {
        Some(d) => (d, 60),
        None => (text.strip_suffix('s').unwrap_or(text), 1),
    };
    Ok(Duration::from_secs(number(digits)? * unit))
}

/// One look at the server.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    footprint: Footprint,
    processes: u64,
}

fn sample(server: &Server) -> Result<Sample, String> {
    Ok(Sample {
        footprint: server.footprint()?,
        processes: descendants(server.pid()),
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("axs-soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(failures) => {
            eprintln!("axs-soak: {} failure(s):", failures.len());
            for f in failures {
                eprintln!("axs-soak: FAIL: {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("axs-soak: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the soak; returns the failures (empty: it passed).
fn run(options: &Options) -> Result<Vec<String>, String> {
    let scratch = axs_benches::proc::Scratch::new("soak")?;
    let script = scratch.path().join("session.sh");
    std::fs::write(&script, SESSION_SCRIPT).map_err(|e| format!("write the script: {e}"))?;
    let command = format!("sh {}", script.display());
    let args = [
        "-c",
        command.as_str(),
        "--retention",
        RETENTION_SECS,
        "--stall-timeout",
        STALL_SECS,
        "--max-sessions",
        "200",
    ];
    let mut server = Server::start_with_env(&options.bin, &args, &[("RUST_LOG", "warn")])?;
    eprintln!(
        "axs-soak: {} (pid {}, port {}) for {:?}, seed {}",
        options.name,
        server.pid(),
        server.port,
        options.duration,
        options.seed
    );
    thread::sleep(Duration::from_millis(300));
    let start = sample(&server)?;
    let began = Instant::now();
    let soak = Arc::new(Soak::new(server.port, began + options.duration));
    let samples = Arc::new(Mutex::new(vec![start]));
    let load_over = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(server.pid(), &samples, &load_over);
    soak::run_all(&soak, options.seed, options.storms);
    load_over.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let load_secs = began.elapsed().as_secs_f64();
    let (end, settled_in) = settle(&server, &start);
    if options.hold > 0 {
        eprintln!(
            "axs-soak: the load is over; holding pid {} for {} s (RSS {} KiB)",
            server.pid(),
            options.hold,
            end.footprint.rss_kib
        );
        thread::sleep(Duration::from_secs(options.hold));
    }
    let log = server.stderr();
    server.sessions = soak.sessions();
    server.stop();
    let mut failures = soak.failures();
    failures.extend(check_end(&start, &end, settled_in.is_some()));
    if let Some(line) = log.lines().find(|l| l.contains("panicked")) {
        failures.push(format!("the server panicked: {line}"));
    }
    let peak = samples.lock().map(|s| peak_of(&s)).unwrap_or_default();
    print_summary(options, &soak, load_secs, [start, peak, end], settled_in);
    Ok(failures)
}

/// Samples the server every [`SAMPLE_EVERY`] until the load is over.
fn spawn_sampler(
    pid: u32,
    samples: &Arc<Mutex<Vec<Sample>>>,
    load_over: &Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let samples = Arc::clone(samples);
    let load_over = Arc::clone(load_over);
    thread::spawn(move || {
        let mut next = Instant::now() + SAMPLE_EVERY;
        while !load_over.load(Ordering::Relaxed) {
            if Instant::now() >= next {
                next += SAMPLE_EVERY;
                if let Ok(footprint) = axs_benches::proc::footprint(pid) {
                    let s = Sample {
                        footprint,
                        processes: descendants(pid),
                    };
                    if let Ok(mut all) = samples.lock() {
                        all.push(s);
                    }
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
    })
}

/// The largest of each figure over the samples.
fn peak_of(samples: &[Sample]) -> Sample {
    let mut peak = Sample::default();
    for s in samples {
        peak.footprint.fds = peak.footprint.fds.max(s.footprint.fds);
        peak.footprint.threads = peak.footprint.threads.max(s.footprint.threads);
        peak.footprint.rss_kib = peak.footprint.rss_kib.max(s.footprint.rss_kib);
        peak.footprint.rss_anon_kib = peak.footprint.rss_anon_kib.max(s.footprint.rss_anon_kib);
        peak.footprint.rss_file_kib = peak.footprint.rss_file_kib.max(s.footprint.rss_file_kib);
        peak.processes = peak.processes.max(s.processes);
    }
    peak
}

/// Waits for descriptors, threads and processes to return to `start` (at most
/// [`SETTLE_LIMIT`]), then [`RSS_SETTLE`] more; returns the end sample and how long the
/// return took (`None`: it did not).
fn settle(server: &Server, start: &Sample) -> (Sample, Option<Duration>) {
    let began = Instant::now();
    let back = |s: &Sample| {
        s.footprint.fds == start.footprint.fds
            && s.footprint.threads == start.footprint.threads
            && s.processes == start.processes
    };
    let mut last = sample(server).unwrap_or_default();
    while !back(&last) && began.elapsed() < SETTLE_LIMIT {
        thread::sleep(Duration::from_millis(250));
        last = sample(server).unwrap_or_default();
    }
    let settled = back(&last).then(|| began.elapsed());
    thread::sleep(RSS_SETTLE);
    (sample(server).unwrap_or(last), settled)
}

/// The end figures against the start: exact for descriptors, threads and processes, RSS
/// within [`RSS_TOLERANCE_KIB`].
fn check_end(start: &Sample, end: &Sample, settled: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let (s, e) = (start.footprint, end.footprint);
    let exact = [
        ("descriptors", s.fds, e.fds),
        ("threads", s.threads, e.threads),
        ("processes", start.processes, end.processes),
    ];
    for (what, before, after) in exact {
        if before != after {
            failures.push(format!(
                "{what}: {after} at the end, {before} at the start (after {SETTLE_LIMIT:?})"
            ));
        }
    }
    if !settled && failures.is_empty() {
        failures.push("the figures came back only after the settle limit".into());
    }
    if e.rss_kib > s.rss_kib + RSS_TOLERANCE_KIB {
        failures.push(format!(
            "RSS: {:.1} MiB at the end, {:.1} MiB at the start (tolerance {} MiB)",
            mib(e.rss_kib),
            mib(s.rss_kib),
            RSS_TOLERANCE_KIB / 1024
        ));
    }
    failures
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_summary(
    options: &Options,
    soak: &Soak,
    load_secs: f64,
    [start, peak, end]: [Sample; 3],
    settled_in: Option<Duration>,
) {
    let c = &soak.counters;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "\nSoak of {} for {load_secs:.0} s (seed {}, {} storms):\n",
        options.name, options.seed, options.storms
    );
    println!("| what | count |\n|---|---|");
    println!("| sessions churned | {} |", n(&c.sessions_churned));
    println!("| reconnects (resumes checked) | {} |", n(&c.reconnects));
    println!("| stream bytes verified | {} |", n(&c.bytes_verified));
    println!("| bad inputs answered | {} |", n(&c.bad_inputs_answered));
    println!("| stalled clients | {} |", n(&c.stalled_clients));
    println!("\n| figure | start | peak | end |\n|---|---|---|---|");
    let (s, p, e) = (start.footprint, peak.footprint, end.footprint);
    println!("| descriptors | {} | {} | {} |", s.fds, p.fds, e.fds);
    println!(
        "| threads | {} | {} | {} |",
        s.threads, p.threads, e.threads
    );
    println!(
        "| RSS (MiB) | {:.1} | {:.1} | {:.1} |",
        mib(s.rss_kib),
        mib(p.rss_kib),
        mib(e.rss_kib)
    );
    println!(
        "| of which anonymous (MiB) | {:.1} | {:.1} | {:.1} |",
        mib(s.rss_anon_kib),
        mib(p.rss_anon_kib),
        mib(e.rss_anon_kib)
    );
    println!(
        "| of which file-backed (MiB) | {:.1} | {:.1} | {:.1} |",
        mib(s.rss_file_kib),
        mib(p.rss_file_kib),
        mib(e.rss_file_kib)
    );
    println!(
        "| processes | {} | {} | {} |",
        start.processes, peak.processes, end.processes
    );
    match settled_in {
        Some(t) => println!(
            "\nDescriptors, threads and processes back {:.1} s after the load; RSS read {:?} later.",
            t.as_secs_f64(),
            RSS_SETTLE
        ),
        None => println!("\nDescriptors, threads or processes not back after {SETTLE_LIMIT:?}."),
    }
}
