//! The signal thread: SIGCHLD reaps session programs and command shells, SIGINT/SIGTERM
//! shut down.
//!
//! One thread blocks in `poll` on two self-pipes: axs-pty's [`SigchldPipe`] and a
//! `signal-hook` pipe for SIGINT and SIGTERM. Signals coalesce, so every SIGCHLD checks
//! every unreaped session program and `execute-command` shell with `try_wait` (never
//! `waitpid(-1)`: only our own children, by pid).

use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Instant;

use axs_core::limits::SHUTDOWN_LIMIT;
use axs_pty::SigchldPipe;
use rustix::event::{PollFd, PollFlags};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::shared::Shared;
use crate::StopAccepting;

/// The installed handlers: readable when a signal arrived.
#[derive(Debug)]
pub struct Signals {
    sigchld: &'static SigchldPipe,
    stop: UnixStream,
}

/// Installs the handlers (before anything is spawned or announced).
pub fn install() -> Result<Signals, String> {
    let sigchld =
        SigchldPipe::get().map_err(|e| format!("cannot install the SIGCHLD handler: {e}"))?;
    let stop = stop_pipe().map_err(|e| format!("cannot handle SIGINT/SIGTERM: {e}"))?;
    Ok(Signals { sigchld, stop })
}

/// A socket that becomes readable on SIGINT or SIGTERM.
fn stop_pipe() -> io::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    read.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(SIGINT, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(SIGTERM, write)?;
    Ok(read)
}

/// The signal thread's loop.
pub fn run(shared: &Arc<Shared>, signals: Signals, listener: &StopAccepting) {
    let mut stopping = false;
    loop {
        let (child, stop) = wait(&signals);
        if child {
            signals.sigchld.drain();
            reap_all(shared);
        }
        if stop {
            drain(&signals.stop);
            if stopping {
                log::info!("already shutting down");
            } else {
                stopping = true;
                // A new server may take the port while this one ends its sessions.
                listener.stop();
                start_shutdown(shared);
            }
        }
    }
}

/// Blocks until a signal arrived: (SIGCHLD, SIGINT or SIGTERM).
fn wait(signals: &Signals) -> (bool, bool) {
    let sigchld = signals.sigchld.fd();
    let mut fds = [
        PollFd::new(&sigchld, PollFlags::IN),
        PollFd::new(&signals.stop, PollFlags::IN),
    ];
    match rustix::event::poll(&mut fds, None) {
        Ok(_) => (!fds[0].revents().is_empty(), !fds[1].revents().is_empty()),
        // EINTR: some signal arrived; look at both.
        Err(_) => (true, false),
    }
}

fn drain(mut stop: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(stop.read(&mut buf), Ok(n) if n > 0) {}
}

fn start_shutdown(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let started = std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || shutdown(&shared));
    if let Err(e) = started {
        log::error!("cannot start the shutdown: {e}");
        std::process::exit(1);
    }
}

/// Checks every session program and command shell that has not been reaped yet.
fn reap_all(shared: &Shared) {
    let (sessions, jobs): (Vec<u32>, Vec<u32>) = shared.with_state(|state, _| {
        let sessions = state.unreaped.keys().copied().collect();
        (sessions, state.jobs.keys().copied().collect())
    });
    for pid in sessions {
        reap(shared, pid);
    }
    for pid in jobs {
        reap_job(shared, pid);
    }
}

/// Reaps command shell `pid` if it has ended; forgetting it tells its thread.
pub fn reap_job(shared: &Shared, pid: u32) {
    match axs_pty::try_wait(pid) {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => {
            let watch = shared.with_state(|state, _| state.jobs.remove(&pid));
            drop(watch);
        }
    }
}

/// Reaps session program `pid` if it has ended, and tells the core how.
pub fn reap(shared: &Shared, pid: u32) {
    match axs_pty::try_wait(pid) {
        Ok(None) => {}
        Ok(Some(status)) => {
            log::debug!("session {pid}: {status}");
            let status = axs_host::exit_status(status);
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
    shared.call(|server, _| server.shutdown());
    let deadline = Instant::now() + SHUTDOWN_LIMIT;
    let clean = shared.wait_until(deadline, |state| {
        state.server.is_shut_down() && state.writers == 0
    });
    let left: Vec<u32> = shared.with_state(|state, _| {
        let mut pids: Vec<u32> = state.unreaped.keys().copied().collect();
        pids.extend(state.sessions.keys().copied());
        pids.extend(state.jobs.keys().copied());
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
