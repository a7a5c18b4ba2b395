//! The signal thread: SIGCHLD reaps, SIGINT/SIGTERM start the shutdown.
//!
//! One thread blocks in `poll` on two self-pipes: axs-pty's [`SigchldPipe`] and a
//! `signal-hook` pipe for SIGINT and SIGTERM. Signals coalesce, so every SIGCHLD tries
//! every pid the core lists as unreaped ([`crate::shared::State::reap`]; never
//! `waitpid(-1)`: only our own children, by pid). On SIGINT/SIGTERM the listener closes
//! at once (a new server may take the port) and the core's shutdown starts; the process
//! exits when the core says `Exit`, on whichever thread drains it.

use std::ffi::c_int;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;

use axs_pty::SigchldPipe;
use rustix::event::{PollFd, PollFlags};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::handles::StopAccepting;
use crate::shared::Shared;

/// The installed handlers: readable when a signal arrived.
#[derive(Debug)]
pub struct Signals {
    sigchld: &'static SigchldPipe,
    stop: UnixStream,
}

/// Installs the handlers (before anything is spawned or announced).
pub fn install() -> Result<Signals, String> {
    install_stopping_on(&[SIGINT, SIGTERM])
}

/// Installs the handlers with `stop` as the signals that stop the process (the `axs lsp`
/// bridge adds SIGHUP).
pub fn install_stopping_on(stop: &[c_int]) -> Result<Signals, String> {
    let sigchld =
        SigchldPipe::get().map_err(|e| format!("cannot install the SIGCHLD handler: {e}"))?;
    let stop = stop_pipe(stop).map_err(|e| format!("cannot handle the stop signals: {e}"))?;
    Ok(Signals { sigchld, stop })
}

/// A socket that becomes readable on any of `signals`.
fn stop_pipe(signals: &[c_int]) -> io::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    read.set_nonblocking(true)?;
    for &signal in signals {
        signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
    }
    Ok(read)
}

/// The signal thread's loop.
pub fn run(shared: &Shared, signals: &Signals, listener: &StopAccepting) {
    loop {
        let (child, stop) = next(signals);
        if child {
            shared.with_state(|state, now| state.reap(now));
        }
        if stop {
            listener.stop();
            log::info!("shutting down");
            shared.call(|server, now| server.shutdown(now));
        }
    }
}

/// Blocks until a signal arrived and takes it: (SIGCHLD, a stop signal).
pub fn next(signals: &Signals) -> (bool, bool) {
    let (child, stop) = wait(signals);
    if child {
        signals.sigchld.drain();
    }
    if stop {
        drain(&signals.stop);
    }
    (child, stop)
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
