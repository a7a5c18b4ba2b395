//! A signal that reaches the server while it spawns is neither lost nor handled in the
//! child: the spawning thread blocks every signal around the child's creation, so one
//! arriving then stays pending and its handler runs in the server once the spawn is over,
//! exactly once per signal, with either spawn method.
//!
//! The vfork-style child shares the server's memory, so a handler that ran in it would
//! show up here (its `getpid` differs); and a signal still blocked or dropped after the
//! spawn shows up as one never delivered.
//!
//! A binary of its own: it installs a process-wide SIGTERM handler.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use axs_pty::{spawn, SpawnMethod, SpawnOptions};
use common::{wait_exit, LIMIT};

/// Handler runs, wherever they happened.
static DELIVERED: AtomicUsize = AtomicUsize::new(0);
/// Handler runs while the spawning thread was inside `spawn` (the signal most likely
/// arrived while it blocked signals, and was delivered when it unblocked them).
static DELIVERED_IN_SPAWN: AtomicUsize = AtomicUsize::new(0);
/// Handler runs in another process than the test's: in a child sharing its memory.
static IN_OTHER_PROCESS: AtomicUsize = AtomicUsize::new(0);
/// The test process's pid, for the handler to compare with.
static TEST_PID: AtomicI32 = AtomicI32::new(0);
/// Set by the spawning thread around each `spawn` call.
static SPAWNING: AtomicBool = AtomicBool::new(false);

/// How many signals must arrive during a spawn for a method to count as exercised.
const WANTED_IN_SPAWN: usize = 100;
/// Bound on the signals sent per method (each waits for its delivery first).
const MAX_SIGNALS: usize = 20_000;

extern "C" fn on_sigterm(_sig: libc::c_int) {
    // SAFETY: getpid as a raw syscall (no libc cache): async-signal-safe, no memory.
    let pid = unsafe { libc::syscall(libc::SYS_getpid) } as i32;
    if pid != TEST_PID.load(Ordering::Relaxed) {
        IN_OTHER_PROCESS.fetch_add(1, Ordering::Relaxed);
    }
    if SPAWNING.load(Ordering::Relaxed) {
        DELIVERED_IN_SPAWN.fetch_add(1, Ordering::Relaxed);
    }
    DELIVERED.fetch_add(1, Ordering::SeqCst);
}

/// Catches SIGTERM with [`on_sigterm`], restarting interrupted calls as signal-hook does.
fn catch_sigterm() {
    // SAFETY: the action struct is zeroed then filled in; the handler only touches
    // atomics and makes a raw getpid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// The calling thread's kernel id, for `tgkill`.
fn thread_id() -> i32 {
    // SAFETY: gettid takes no argument and touches no memory.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Spawns `true` with `method` over and over until `stop`, reaping each child.
fn spawn_until(stop: &AtomicBool, method: SpawnMethod) -> usize {
    let mut opts = SpawnOptions::new("true");
    opts.spawn_method = method;
    let mut spawned = 0;
    while !stop.load(Ordering::SeqCst) {
        SPAWNING.store(true, Ordering::SeqCst);
        let child = spawn(&opts);
        SPAWNING.store(false, Ordering::SeqCst);
        let child = child.unwrap();
        let _guard = common::Guard(child.pid);
        wait_exit(child.pid);
        spawned += 1;
    }
    spawned
}

/// Sends SIGTERM to thread `tid` one at a time while it spawns, each only once the
/// previous one was handled (pending signals of one kind merge), until enough arrived
/// during a spawn; panics naming the first signal never handled.
fn send_until_exercised(tid: i32) -> usize {
    let mut sent = 0;
    let mut pause = 0u64;
    while DELIVERED_IN_SPAWN.load(Ordering::SeqCst) < WANTED_IN_SPAWN && sent < MAX_SIGNALS {
        let before = DELIVERED.load(Ordering::SeqCst);
        // SAFETY: tgkill with integer arguments; `tid` is a live thread of this process
        // (the spawner runs until told to stop).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                TEST_PID.load(Ordering::Relaxed),
                tid,
                libc::SIGTERM,
            )
        };
        assert_eq!(rc, 0, "tgkill: {}", std::io::Error::last_os_error());
        sent += 1;
        let deadline = Instant::now() + LIMIT;
        while DELIVERED.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "SIGTERM number {sent} was never handled (sent during a spawn, it must be \
                 delivered once the spawn is over)"
            );
            thread::sleep(Duration::from_micros(50));
        }
        // Vary where in the spawn cycle the next signal lands.
        pause = (pause + 137) % 1000;
        thread::sleep(Duration::from_micros(pause));
    }
    sent
}

fn signals_during_spawns(method: SpawnMethod) {
    DELIVERED.store(0, Ordering::SeqCst);
    DELIVERED_IN_SPAWN.store(0, Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let spawner = {
        let stop = stop.clone();
        thread::spawn(move || {
            tid_tx.send(thread_id()).unwrap();
            spawn_until(&stop, method)
        })
    };
    let tid = tid_rx.recv_timeout(LIMIT).unwrap();
    let sent = std::panic::catch_unwind(|| send_until_exercised(tid));
    stop.store(true, Ordering::SeqCst);
    let spawned = spawner.join().unwrap();
    let sent = sent.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let in_spawn = DELIVERED_IN_SPAWN.load(Ordering::SeqCst);
    eprintln!("{method:?}: {sent} signals, {in_spawn} during one of {spawned} spawns");
    assert_eq!(
        IN_OTHER_PROCESS.load(Ordering::SeqCst),
        0,
        "{method:?}: a handler ran in a child"
    );
    assert_eq!(
        DELIVERED.load(Ordering::SeqCst),
        sent,
        "{method:?}: handled once each"
    );
    assert!(
        in_spawn >= WANTED_IN_SPAWN,
        "{method:?}: only {in_spawn} of {sent} signals arrived during a spawn"
    );
}

#[test]
fn signals_during_spawn_are_delivered_once_in_the_parent() {
    TEST_PID.store(std::process::id() as i32, Ordering::SeqCst);
    catch_sigterm();
    for method in [SpawnMethod::Auto, SpawnMethod::Fork] {
        signals_during_spawns(method);
    }
}
