//! Per session: one thread, the pty reader (client input goes through the session's
//! [`InputQueue`], written by the clients' own reader threads: see [`crate::handles`]).
//!
//! The reader blocks in `poll` on the master and the [`ReadGate`]'s eventfd, then reads
//! (and takes whatever else the pty already holds, up to the core's `read_size()`, in one
//! reused buffer) and feeds the chunk to `server.pty_output`; EOF or an error (EIO once
//! every slave holder is gone) becomes `server.pty_eof`. While the core has paused the
//! session it waits on the gate instead of reading, so the program blocks on its writes.
//! It ends when the core closes the pty (`ClosePty`/`Remove`), at once even while a
//! background job keeps the pty open; the master is closed when the last holder lets go.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::thread;

use axs_core::http::Response;
use axs_core::server::{Reservation, SessionId};
use axs_pty::SpawnOptions;
use rustix::event::{PollFd, PollFlags};

use crate::handles::{InputQueue, ReadGate, SessionIo};
use crate::shared::Shared;

/// Stack size of the pty threads (they run core code under the lock, nothing deep).
const STACK_SIZE: usize = 256 * 1024;

/// Spawns the program of a reserved session, registers it and starts its reader.
/// Returns the answer for the creator.
pub fn create(shared: &Arc<Shared>, program: &SpawnOptions, reservation: Reservation) -> Response {
    let spawned = ReadGate::new().map_err(|e| e.to_string()).and_then(|gate| {
        let spawned = axs_host::spawn_session(program, reservation.size());
        Ok((gate, spawned.map_err(|e| e.to_string())?))
    });
    let (gate, spawned) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            log::warn!("cannot start a session: {e}");
            return shared.call(|server, _| server.spawn_failed(reservation, &e));
        }
    };
    let (id, gate) = (spawned.pid, Arc::new(gate));
    let master = Arc::new(File::from(spawned.master));
    let input = Arc::new(InputQueue::new(Arc::clone(&master)));
    let (response, reused) = shared.with_state(|state, now| {
        let reused = state.add_session(id, SessionIo::new(&master, &gate, &input));
        let response = state.server().spawned(reservation, id, now);
        // The program may have ended before it was registered: its SIGCHLD found nothing.
        state.reap_pid(id, now);
        (response, reused)
    });
    // A reused pid's old master is closed outside the lock.
    drop(reused);
    let reader = Arc::clone(shared);
    let started = thread::Builder::new()
        .name(format!("pty-read-{id}"))
        .stack_size(STACK_SIZE)
        .spawn(move || read_pty(&reader, id, &master, &gate));
    if let Err(e) = started {
        log::error!("session {id}: cannot start its pty reader: {e}");
        shared.call(|server, now| server.terminate(id, now));
    }
    log::debug!("session {id} started");
    response
}

/// The pty reader thread.
fn read_pty(shared: &Shared, id: SessionId, master: &File, gate: &ReadGate) {
    let mut buf = vec![0u8; shared.read_size().max(1)];
    while gate.wait_open() && gate.wait_readable(master) {
        match read_available(master, &mut buf) {
            Ok(0) => break,
            Ok(n) => shared.call(|server, now| server.pty_output(id, &buf[..n], now)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("session {id}: pty read ends: {e}");
                break;
            }
        }
    }
    if !gate.is_closed() {
        shared.call(|server, now| server.pty_eof(id, now));
    }
}

/// Blocks for the first bytes, then also takes whatever else is already there, up to the
/// buffer's size: a pty hands out at most 4 KiB per read, and each core call and client
/// wake-up costs far more than a `poll` that does not wait.
fn read_available(master: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = (&*master).read(buf)?;
    while n > 0 && n < buf.len() && readable_now(master) {
        match (&*master).read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(more) => n += more,
        }
    }
    Ok(n)
}

/// Whether a read would not block.
fn readable_now(master: &File) -> bool {
    let mut fds = [PollFd::new(master, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}
