//! Benchmark, not a test (ignored): the cost of one `spawn` of `true` on a pty, from a
//! parent with little or much resident memory and with many threads, with `fork`
//! (`SpawnMethod::Fork`, what std's `Command` with a pre-exec hook does) and with the
//! vfork-style clone (`SpawnMethod::Auto`).
//!
//! cargo test -p axs-pty --release --test spawn_cost -- --ignored --nocapture
//!
//! `AXS_SPAWN_BENCH_N` sets the spawns per method and parent size (default 200). The
//! time is `spawn()` alone: it returns once `exec` succeeded; reaping is not timed.

#![allow(clippy::unwrap_used)] // benchmarks may unwrap

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axs_pty::{spawn, wait_blocking, ExitStatus, SpawnMethod, SpawnOptions};

/// Grows `ballast` to `mib` MiB, touching every page so it is resident.
fn grow(ballast: &mut Vec<Vec<u8>>, mib: usize) {
    while ballast.len() < mib {
        let mut chunk = vec![0u8; 1 << 20];
        for page in chunk.chunks_mut(4096) {
            page[0] = 1;
        }
        ballast.push(black_box(chunk));
    }
}

/// One timed spawn of `true`, reaped afterwards.
fn one_spawn(method: SpawnMethod) -> Duration {
    let mut opts = SpawnOptions::new("true");
    opts.spawn_method = method;
    let start = Instant::now();
    let child = spawn(&opts).unwrap();
    let took = start.elapsed();
    // The master stays open until `true` is reaped: closing it would hang `true` up.
    assert_eq!(wait_blocking(child.pid).unwrap(), ExitStatus::Code(0));
    drop(child.master);
    took
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn spawn_cost() {
    let n: usize = std::env::var("AXS_SPAWN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut ballast = Vec::new();
    let (stop, parked) = mpsc::channel::<()>();
    let parked = std::sync::Arc::new(std::sync::Mutex::new(parked));
    let mut threads = Vec::new();
    println!("| parent | fork p50 | vfork-style clone p50 | fork / clone |");
    println!("|---|---|---|---|");
    for (mib, thread_count) in [(10, 0), (500, 0), (500, 200)] {
        grow(&mut ballast, mib);
        while threads.len() < thread_count {
            let parked = parked.clone();
            threads.push(std::thread::spawn(move || {
                let _ = parked.lock().map(|rx| rx.recv());
            }));
        }
        // Warm up both paths (page cache, the dynamic loader of `true`).
        for _ in 0..10 {
            one_spawn(SpawnMethod::Fork);
            one_spawn(SpawnMethod::Auto);
        }
        let (mut fork, mut clone) = (Vec::new(), Vec::new());
        // Alternate, so drift in the machine's load hits both alike.
        for _ in 0..n {
            fork.push(one_spawn(SpawnMethod::Fork));
            clone.push(one_spawn(SpawnMethod::Auto));
        }
        let (fork, clone) = (median(fork), median(clone));
        let rss = axs_pty::resident_bytes(std::process::id()).unwrap_or(0) >> 20;
        println!(
            "| {rss} MiB resident, {} threads | {:.0} µs | {:.0} µs | {:.1}× |",
            thread_count + 2,
            micros(fork),
            micros(clone),
            fork.as_secs_f64() / clone.as_secs_f64()
        );
    }
    drop(stop);
    // The parked threads hold the lock in turn; each recv ends with the sender gone.
    for thread in threads {
        thread.join().unwrap();
    }
}

/// One timed spawn of `true`, from `spawn()` until the child is reaped: the time the
/// kernel spends on the child's copy of the descriptor table and its close-on-exec pass
/// is included whether it runs before or after `spawn()` returns.
fn one_spawn_reaped() -> Duration {
    let opts = SpawnOptions::new("true");
    let start = Instant::now();
    let child = spawn(&opts).unwrap();
    assert_eq!(wait_blocking(child.pid).unwrap(), ExitStatus::Code(0));
    let took = start.elapsed();
    drop(child.master);
    took
}

/// Descriptor counts compared by [`spawn_cost_by_descriptors`]: an idle session holds
/// about two in the server (pty master, socket), so 4000 is a server with 2000 sessions.
const EXTRA_DESCRIPTORS: [usize; 4] = [0, 1000, 2000, 4000];

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn spawn_cost_by_descriptors() {
    let n: usize = std::env::var("AXS_SPAWN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let null = std::fs::File::open("/dev/null").unwrap();
    let mut returned = vec![Vec::new(); EXTRA_DESCRIPTORS.len()];
    let mut reaped = vec![Vec::new(); EXTRA_DESCRIPTORS.len()];
    for _ in 0..10 {
        one_spawn(SpawnMethod::Auto);
    }
    // Rounds of ten spawns per descriptor count, the counts alternating, so drift in the
    // machine's load hits every count alike.
    for _ in 0..n.div_ceil(10) {
        for (i, extra) in EXTRA_DESCRIPTORS.into_iter().enumerate() {
            let open: Vec<_> = (0..extra).map(|_| null.try_clone().unwrap()).collect();
            for _ in 0..10 {
                returned[i].push(one_spawn(SpawnMethod::Auto));
                reaped[i].push(one_spawn_reaped());
            }
            drop(open);
        }
    }
    println!("| extra open descriptors in the parent | spawn() p50 | spawn() to reaped p50 |");
    println!("|---|---|---|");
    for (i, extra) in EXTRA_DESCRIPTORS.into_iter().enumerate() {
        println!(
            "| {extra} | {:.0} µs | {:.0} µs |",
            micros(median(std::mem::take(&mut returned[i]))),
            micros(median(std::mem::take(&mut reaped[i])))
        );
    }
}
