//! axs-load: the end-to-end load client. Runs every measurement against a bare pty (the
//! ceiling) and each server binary, repeated, side by side, and prints markdown tables of
//! the medians. `benches/run` builds the binaries and calls it; see BENCHMARKS.md.
//!
//! Usage: `axs-load [--reps N] [--bulk-mib N] [--scale LEVELS|none] [--only PHASES]
//! [--think-ms N] [--typing-rounds N] [--sessions N] [--ttyd PATH] NAME=PATH...`
//! where PHASES is a comma-separated subset of
//! `echo,typing,bulk,attach,sessions,startup,flood` (for profiling one phase; `--reps 0`
//! skips them all). `flood` (typing while another session floods, about 20 s per target
//! and repetition) runs only when named. `--ttyd PATH` adds ttyd 1.7 (`benches/ttyd`
//! fetches it) to the echo, typing, flood and bulk phases.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use axs_benches::proc::{raise_fd_limit, Scratch};
use axs_benches::scenario::{self, Bulk, Echo, Flood, Target, Typed};
use axs_benches::stats::median;
use axs_benches::text;

/// The ceiling's column name.
const PTY: &str = "pty";
/// Echo round trips per run, as the issue asks.
const ECHO_ROUNDS: usize = 2000;
/// Attaches per attach-latency run.
const ATTACHES: usize = 20;
/// Starts per start-up run.
const STARTS: usize = 20;
/// The typing phases' column for the bare pty read with blocking `read`s.
const PTY_BLOCKING: &str = "pty, blocking read";
/// The echo, typing and bulk phases' column for the bare pty relayed over loopback TCP by two
/// blocking threads: the least any server adds.
const RELAY: &str = "relay (TCP ↔ pty, 2 threads)";
/// ttyd's column.
const TTYD: &str = "ttyd";
/// Phases that run only when `--only` names them.
const OPT_IN: &[&str] = &["flood"];

/// What to run.
struct Options {
    reps: usize,
    bulk_mib: usize,
    scale: Vec<usize>,
    only: Option<Vec<String>>,
    /// The pause between keystrokes of the typing phases.
    think: Duration,
    /// Measured keystrokes per typing run.
    typing_rounds: usize,
    /// Sessions created (and kept attached) per session-cost run: the create curve.
    sessions: usize,
    servers: Vec<(String, PathBuf)>,
    /// ttyd, measured beside the servers where it can be (echo, typing, flood, bulk).
    ttyd: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        reps: 5,
        bulk_mib: 32,
        scale: vec![0, 100, 500, 1000, 2000],
        only: None,
        think: Duration::from_millis(50),
        typing_rounds: 200,
        sessions: 100,
        servers: Vec::new(),
        ttyd: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--reps" => options.reps = number(&value("--reps")?)?,
            "--only" => {
                let phases = value("--only")?.split(',').map(str::to_string).collect();
                options.only = Some(phases);
            }
            "--think-ms" => {
                options.think = Duration::from_millis(number(&value("--think-ms")?)? as u64);
            }
            "--typing-rounds" => {
                options.typing_rounds = number(&value("--typing-rounds")?)?.max(1);
            }
            "--sessions" => options.sessions = number(&value("--sessions")?)?.max(1),
            "--ttyd" => options.ttyd = Some(value("--ttyd")?.into()),
            "--bulk-mib" => options.bulk_mib = number(&value("--bulk-mib")?)?.max(1),
            "--scale" => {
                let v = value("--scale")?;
                options.scale = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',').map(number).collect::<Result<_, _>>()?
                };
            }
            other => match other.split_once('=') {
                Some((name, path)) => options.servers.push((name.into(), path.into())),
                None => return Err(format!("unexpected argument {other:?}")),
            },
        }
    }
    if options.servers.is_empty() {
        return Err(
            "usage: axs-load [--reps N] [--bulk-mib N] [--scale 0,100,...|none] [--ttyd PATH] \
             NAME=PATH..."
                .into(),
        );
    }
    Ok(options)
}

impl Options {
    /// Whether a phase runs (all do unless `--only` names some).
    fn runs(&self, phase: &str) -> bool {
        match &self.only {
            None => !OPT_IN.contains(&phase),
            Some(only) => only.iter().any(|p| p == phase),
        }
    }
}

fn number(text: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// Per-repetition values of every (metric, target), and the same-run ratios to the pty.
#[derive(Default)]
struct Results {
    order: Vec<String>,
    values: BTreeMap<(String, String), Vec<f64>>,
    ratios: BTreeMap<(String, String), Vec<f64>>,
    problems: Vec<String>,
}

impl Results {
    fn record(&mut self, metric: &str, target: &str, value: f64) {
        if !self.order.iter().any(|m| m == metric) {
            self.order.push(metric.to_string());
        }
        let key = (metric.to_string(), target.to_string());
        self.values.entry(key).or_default().push(value);
    }

    /// Records `value` and, when the pty's value of this repetition is known, the ratio.
    fn record_vs_pty(&mut self, metric: &str, target: &str, value: f64, pty: Option<f64>) {
        self.record(metric, target, value);
        if let Some(base) = pty.filter(|b| *b > 0.0) {
            let key = (metric.to_string(), target.to_string());
            self.ratios.entry(key).or_default().push(value / base);
        }
    }

    /// Records `value` with its ratio to `base`, a figure of the same target (the pty
    /// column gets its ratio too).
    fn record_vs_own(&mut self, metric: &str, target: &str, value: f64, base: f64) {
        self.record(metric, target, value);
        if base > 0.0 {
            let key = (metric.to_string(), target.to_string());
            self.ratios.entry(key).or_default().push(value / base);
        }
    }

    fn problem(&mut self, rep: usize, target: &str, what: &str, error: String) {
        let line = format!("rep {rep}, {target}, {what}: {error}");
        eprintln!("axs-load: {line}");
        self.problems.push(line);
    }

    fn median_of(
        &self,
        map: &BTreeMap<(String, String), Vec<f64>>,
        metric: &str,
        target: &str,
    ) -> Option<f64> {
        map.get(&(metric.to_string(), target.to_string()))
            .and_then(|v| median(v))
    }
}

/// Bulk inputs: the file on disk and its contents.
struct BulkFile {
    label: &'static str,
    path: PathBuf,
    content: Vec<u8>,
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("axs-load: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axs-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), String> {
    let fd_limit = raise_fd_limit();
    let scratch = Scratch::new("files")?;
    let size = options.bulk_mib * 1024 * 1024;
    let files = [
        write_file(&scratch, "plain", text::plain(size))?,
        write_file(&scratch, "colour", text::colourful(size))?,
    ];
    let attach_file = write_file(&scratch, "attach", text::colourful(300 * 1024))?;
    let mut results = Results::default();
    let began = Instant::now();
    for rep in 1..=options.reps {
        eprintln!(
            "axs-load: repetition {rep} of {} ({:.0} s so far)",
            options.reps,
            began.elapsed().as_secs_f64()
        );
        // Rotate the servers' order so none always runs right after the pty.
        let mut servers: Vec<&(String, PathBuf)> = options.servers.iter().collect();
        let shift = (rep - 1) % servers.len();
        servers.rotate_left(shift);
        let mut targets: Vec<(&str, Target)> = servers
            .iter()
            .map(|(n, b)| (n.as_str(), Target::Axs(b)))
            .collect();
        if let Some(ttyd) = &options.ttyd {
            targets.push((TTYD, Target::Ttyd(ttyd)));
            let shift = (rep - 1) % targets.len();
            targets.rotate_left(shift);
        }
        if options.runs("echo") {
            echo_phase(rep, &targets, &mut results);
        }
        if options.runs("typing") {
            typing_phase(options, rep, &targets, &mut results);
        }
        if options.runs("flood") {
            flood_phase(options, rep, &targets, &mut results);
        }
        for file in files.iter().filter(|_| options.runs("bulk")) {
            bulk_phase(rep, file, &targets, &mut results);
        }
        for (name, bin) in &servers {
            measure_server(options, rep, name, bin, &attach_file.path, &mut results);
        }
    }
    let mut scale = Vec::new();
    if !options.scale.is_empty() {
        for (name, bin) in &options.servers {
            eprintln!(
                "axs-load: scale run of {name} ({:.0} s so far)",
                began.elapsed().as_secs_f64()
            );
            scale.push((name.clone(), scenario::scale(bin, &options.scale)));
        }
    }
    print_report(
        options,
        &results,
        &scale,
        fd_limit,
        began.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn write_file(
    scratch: &Scratch,
    label: &'static str,
    content: Vec<u8>,
) -> Result<BulkFile, String> {
    let path = scratch.path().join(format!("{label}.txt"));
    std::fs::write(&path, &content).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(BulkFile {
        label,
        path,
        content,
    })
}

/// Echo on the pty and every server, round trips interleaved.
fn echo_phase(rep: usize, servers: &[(&str, Target)], results: &mut Results) {
    let bins: Vec<Target> = servers.iter().map(|(_, t)| *t).collect();
    let mut echoes = scenario::echo_side_by_side(&bins, ECHO_ROUNDS).into_iter();
    let pty = match echoes.next() {
        Some(Ok(echo)) => {
            record_echo(results, PTY, &echo, None);
            Some(echo)
        }
        Some(Err(e)) => {
            results.problem(rep, PTY, "echo", e);
            None
        }
        None => None,
    };
    let names = std::iter::once(RELAY).chain(servers.iter().map(|(n, _)| *n));
    for (name, echo) in names.zip(echoes) {
        match echo {
            Ok(echo) => record_echo(results, name, &echo, pty.as_ref()),
            Err(e) => results.problem(rep, name, "echo", e),
        }
    }
}

/// Typing on both bare ptys and every server, keystrokes interleaved; ratios are to the
/// blocking reader (the kernel's floor).
fn typing_phase(options: &Options, rep: usize, servers: &[(&str, Target)], results: &mut Results) {
    let bins: Vec<Target> = servers.iter().map(|(_, t)| *t).collect();
    let typed = scenario::typing_side_by_side(&bins, options.typing_rounds, options.think);
    let names = [PTY, PTY_BLOCKING, RELAY]
        .into_iter()
        .chain(servers.iter().map(|(n, _)| *n));
    let mut typed: Vec<(&str, Result<Typed, String>)> = names.zip(typed).collect();
    let floor = match typed.get(1) {
        Some((_, Ok(typed))) => Some(typed.echo),
        _ => None,
    };
    let think = options.think.as_millis();
    for (name, typed) in typed.drain(..) {
        match typed {
            Ok(Typed {
                echo,
                server_cpu_per_key,
            }) => {
                let rows = [
                    ("p50", echo.p50, floor.map(|f| f.p50)),
                    ("p99", echo.p99, floor.map(|f| f.p99)),
                ];
                for (at, value, base) in rows {
                    let metric = format!(
                        "typing echo {at}, a key every {think} ms (µs; ÷ the blocking pty)"
                    );
                    results.record_vs_pty(&metric, name, value, base);
                }
                if let Some(cpu) = server_cpu_per_key {
                    results.record("typing: server on-CPU time per keystroke (µs)", name, cpu);
                }
            }
            Err(e) => results.problem(rep, name, "typing", e),
        }
    }
}

/// Typing while another session floods, on a pair of bare ptys and on every server (one
/// after the other: two floods at once would share the 2 cores); ratios are to the
/// same target's idle typing.
fn flood_phase(options: &Options, rep: usize, servers: &[(&str, Target)], results: &mut Results) {
    let targets = std::iter::once((PTY, None)).chain(servers.iter().map(|(n, t)| (*n, Some(*t))));
    let think = options.think.as_millis();
    for (name, bin) in targets {
        eprintln!("axs-load: flood, {name}");
        match scenario::typing_under_flood(bin, options.typing_rounds, options.think) {
            Ok(Flood {
                idle,
                flooded,
                flood_mib_per_s,
            }) => {
                let idle_p99 =
                    format!("typing echo p99, key every {think} ms, other session idle (µs)");
                results.record(&idle_p99, name, idle.p99);
                let p50 = "typing echo p50 while another session floods (µs; ÷ its idle p50)";
                results.record_vs_own(p50, name, flooded.p50, idle.p50);
                let p99 = "typing echo p99 while another session floods (µs; ÷ its idle p99)";
                results.record_vs_own(p99, name, flooded.p99, idle.p99);
                results.record(
                    "the flooding session meanwhile (MiB/s)",
                    name,
                    flood_mib_per_s,
                );
            }
            Err(e) => results.problem(rep, name, "flood", e),
        }
    }
}

/// Bulk output of one file: the pty first, then every server.
fn bulk_phase(rep: usize, file: &BulkFile, servers: &[(&str, Target)], results: &mut Results) {
    let label = file.label;
    let pty = match scenario::ceiling_bulk(&file.path, &file.content) {
        Ok(bulk) => {
            record_bulk(results, label, PTY, &bulk, None);
            Some(bulk)
        }
        Err(e) => {
            results.problem(rep, PTY, &format!("bulk {label}"), e);
            None
        }
    };
    match scenario::relay_bulk(&file.path, &file.content) {
        Ok(rate) => {
            results.record_vs_pty(&bulk_metric(label), RELAY, rate, pty.map(|p| p.mib_per_s))
        }
        Err(e) => results.problem(rep, RELAY, &format!("bulk {label}"), e),
    }
    for (name, target) in servers {
        match scenario::server_bulk(*target, &file.path, &file.content) {
            Ok(bulk) => record_bulk(results, label, name, &bulk, pty.as_ref()),
            Err(e) => results.problem(rep, name, &format!("bulk {label}"), e),
        }
    }
}

/// Throughput and CPU per MiB of each process on the path; the server's CPU is compared
/// with the bare reader's (both read the same pty), the totals with each other.
fn record_bulk(results: &mut Results, label: &str, target: &str, bulk: &Bulk, pty: Option<&Bulk>) {
    let metric = bulk_metric(label);
    results.record_vs_pty(&metric, target, bulk.mib_per_s, pty.map(|p| p.mib_per_s));
    let cpu = |what: &str| format!("CPU per MiB, {label}: {what} (ms)");
    // The server's reading is compared with the bare reader's: both read the same pty.
    let server = bulk.server_ms.unwrap_or(bulk.reader_ms);
    let server_metric = cpu("server (pty column: the bare reader)");
    results.record_vs_pty(&server_metric, target, server, pty.map(|p| p.reader_ms));
    let client_metric = cpu("load client's reading thread");
    results.record(&client_metric, target, bulk.reader_ms);
    if let Some(program) = bulk.program_ms {
        results.record(&cpu("cat"), target, program);
        let total = program + bulk.reader_ms + bulk.server_ms.unwrap_or(0.0);
        let pty_total = pty.and_then(|p| p.program_ms.map(|c| c + p.reader_ms));
        results.record_vs_pty(&cpu("all processes"), target, total, pty_total);
    }
}

fn bulk_metric(label: &str) -> String {
    format!("bulk, {label} text (MiB/s)")
}

fn record_echo(results: &mut Results, target: &str, echo: &Echo, pty: Option<&Echo>) {
    let rows = [
        ("echo p50 (µs)", echo.p50, pty.map(|p| p.p50)),
        ("echo p90 (µs)", echo.p90, pty.map(|p| p.p90)),
        ("echo p99 (µs)", echo.p99, pty.map(|p| p.p99)),
        ("echo max (µs)", echo.max, pty.map(|p| p.max)),
    ];
    for (metric, value, base) in rows {
        results.record_vs_pty(metric, target, value, base);
    }
}

/// Attach, session cost and start-up of one server.
fn measure_server(
    options: &Options,
    rep: usize,
    name: &str,
    bin: &Path,
    attach_file: &Path,
    results: &mut Results,
) {
    if options.runs("attach") {
        attach_phase(rep, name, bin, attach_file, results);
    }
    if options.runs("sessions") {
        match scenario::server_sessions(bin, options.sessions) {
            Ok(cost) => {
                let count = options.sessions;
                let metric = format!("create + attach + first byte, median of {count} (ms)");
                results.record(&metric, name, cost.median);
                // Flat means every window close to the first: the ratio column is to it.
                let first = cost.curve.first().map_or(f64::NAN, |w| w.2);
                for (from, to, ms) in cost.curve {
                    let metric = format!("… sessions {from}–{to} (ms; ÷ sessions 1–10)");
                    results.record_vs_own(&metric, name, ms, first);
                }
            }
            Err(e) => results.problem(rep, name, "sessions", e),
        }
    }
    if options.runs("startup") {
        match scenario::startup(bin, STARTS) {
            Ok(ms) => results.record("start to READY, median of 20 (ms)", name, ms),
            Err(e) => results.problem(rep, name, "start-up", e),
        }
    }
}

fn attach_phase(rep: usize, name: &str, bin: &Path, attach_file: &Path, results: &mut Results) {
    match scenario::server_attach(bin, attach_file, ATTACHES) {
        Ok((ms, bytes)) => {
            results.record("attach, full 256 KiB ring (ms)", name, ms);
            results.record("attach: replay size (bytes)", name, bytes as f64);
        }
        Err(e) => results.problem(rep, name, "attach", e),
    }
}

type ScaleResult = (String, scenario::Scale);

fn print_report(
    options: &Options,
    results: &Results,
    scale: &[ScaleResult],
    fd_limit: u64,
    secs: f64,
) {
    let measured = |floor: &str| results.values.keys().any(|(_, t)| t == floor);
    let names: Vec<&str> = [PTY_BLOCKING, RELAY]
        .into_iter()
        .filter(|floor| measured(floor))
        .chain(options.servers.iter().map(|(n, _)| n.as_str()))
        .chain(options.ttyd.iter().map(|_| TTYD))
        .collect();
    println!(
        "Medians over {} repetitions; ratios are to the bare pty of the same repetition (median of the per-repetition ratios) unless the metric says otherwise. Bulk: {} MiB per run.\n",
        options.reps, options.bulk_mib
    );
    let ratio = |metric: &str, name: &str| {
        results
            .median_of(&results.ratios, metric, name)
            .map(|r| format!("{r:.2}×"))
            .unwrap_or_else(|| "–".into())
    };
    let mut header = format!("| metric | {PTY} | ratio |");
    let mut rule = String::from("|---|---|---|");
    for name in &names {
        header.push_str(&format!(" {name} | ratio |"));
        rule.push_str("---|---|");
    }
    println!("{header}\n{rule}");
    for metric in &results.order {
        let mut line = format!(
            "| {metric} | {} | {} |",
            cell(results.median_of(&results.values, metric, PTY)),
            ratio(metric, PTY)
        );
        for name in &names {
            let value = cell(results.median_of(&results.values, metric, name));
            line.push_str(&format!(" {value} | {} |", ratio(metric, name)));
        }
        println!("{line}");
    }
    for (name, run) in scale {
        print_scale(name, run);
    }
    println!("\nRLIMIT_NOFILE of the load client and the servers: {fd_limit}. Load client run time: {secs:.0} s.");
    if results.problems.is_empty() {
        println!("\nNo run failed.");
    } else {
        println!("\nProblems ({}):", results.problems.len());
        for p in &results.problems {
            println!("- {p}");
        }
    }
}

fn print_scale(name: &str, run: &scenario::Scale) {
    let rows = &run.rows;
    println!("\nScale, {name}: idle attached sessions (`cat`), one run.\n");
    println!("| sessions | RSS (MiB) | RSS per session over 0 (KiB) | threads | fds | time to add them (s) |");
    println!("|---|---|---|---|---|---|");
    let base = rows.first().map(|r| r.footprint.rss_kib as f64);
    for row in rows {
        let per = match (base, row.sessions) {
            (Some(b), n) if n > 0 => {
                format!("{:.1}", (row.footprint.rss_kib as f64 - b) / n as f64)
            }
            _ => "–".into(),
        };
        println!(
            "| {} | {:.1} | {per} | {} | {} | {:.1} |",
            row.sessions,
            row.footprint.rss_kib as f64 / 1024.0,
            row.footprint.threads,
            row.footprint.fds,
            row.fill_secs
        );
    }
    if let Some(why) = &run.stopped {
        println!("\nStopped: {why}");
    }
    let most = rows.last().map_or(0, |r| r.sessions);
    match run.shutdown {
        Some(took) => println!(
            "\nSIGTERM to exit with {most} sessions: {:.2} s.",
            took.as_secs_f64()
        ),
        None => {
            println!("\nSIGTERM to exit with {most} sessions: still running after 60 s (killed).")
        }
    }
}

fn cell(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}
