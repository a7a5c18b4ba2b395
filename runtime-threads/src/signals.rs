//! The signal thread: SIGCHLD reaps session programs, SIGINT/SIGTERM shut down.
//!
//! One thread blocks on `signal-hook`'s self-pipe for all three signals. Signals
//! coalesce, so every SIGCHLD checks every unreaped session program with `try_wait`
//! (never `waitpid(-1)`: `execute-command` threads reap their own children).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axs_core::frame::ExitStatus;
use axs_pty::host;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::shared::Shared;

/// How long shutdown waits for sessions to end and clients to get their exit and close.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(4);

/// Installs the handlers (before anything is spawned or announced).
pub fn install() -> Result<Signals, String> {
    Signals::new([SIGCHLD, SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle SIGCHLD/SIGINT/SIGTERM: {e}"))
}

/// The signal thread's loop.
pub fn run(shared: &Arc<Shared>, mut signals: Signals) {
    let mut stopping = false;
    for signal in signals.forever() {
        match signal {
            SIGCHLD => reap_all(shared),
            _ if stopping => log::info!("already shutting down"),
            _ => {
                stopping = true;
                let shared = Arc::clone(shared);
                let started = std::thread::Builder::new()
                    .name("shutdown".into())
                    .spawn(move || shutdown(&shared));
                if let Err(e) = started {
                    log::error!("cannot start the shutdown: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

/// Checks every session program that has not been reaped yet.
fn reap_all(shared: &Shared) {
    let pids: Vec<u32> = shared.with_state(|state, _| state.unreaped.iter().copied().collect());
    for pid in pids {
        reap(shared, pid);
    }
}

/// Reaps session program `pid` if it has ended, and tells the core how.
pub fn reap(shared: &Shared, pid: u32) {
    match axs_pty::try_wait(pid) {
        Ok(None) => {}
        Ok(Some(status)) => {
            log::info!("session {pid}: {status}");
            let status = match host::exit_fields(status) {
                (_, Some(signal)) => ExitStatus::Signal(signal),
                (code, None) => ExitStatus::Code(code.unwrap_or_default()),
            };
            shared.with_state(|state, now| {
                state.unreaped.remove(&pid);
                state.server.child_exited(pid, status, now);
            });
        }
        Err(e) => {
            // Only another reap of the same pid can get here first (ECHILD).
            log::debug!("session {pid}: wait: {e}");
            shared.with_state(|state, _| state.unreaped.remove(&pid));
        }
    }
}

/// Terminates every session, waits (bounded) until the core is done and every client got
/// its exit and close, kills what remains, and exits with status 0.
fn shutdown(shared: &Shared) -> ! {
    log::info!("shutting down");
    shared.call(|server, now| server.shutdown(now));
    let deadline = Instant::now() + SHUTDOWN_LIMIT;
    let clean = shared.wait_until(deadline, |state| {
        state.server.is_shut_down() && state.writers == 0
    });
    let left: Vec<u32> = shared.with_state(|state, _| {
        let mut pids: Vec<u32> = state.unreaped.iter().copied().collect();
        pids.extend(state.sessions.keys().copied());
        pids
    });
    if !clean {
        log::warn!("shutdown limit reached: killing {} session(s)", left.len());
    }
    for pid in left {
        if axs_pty::group_alive(pid) {
            let _ = axs_pty::kill_group(pid);
        }
    }
    // Kills due after a grace (processes that ignored the hangup) cannot wait any more.
    shared.timer.run_all_now();
    std::process::exit(0);
}
