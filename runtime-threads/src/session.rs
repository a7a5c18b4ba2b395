//! Per session: one thread, the pty reader, plus the input queue its clients write through.
//!
//! - The reader blocks in `read` (then takes whatever else the pty already holds, up to
//!   16 KiB or `server.read_size()`, in one reused buffer) and feeds the chunk to
//!   `server.pty_output`; EOF or an error (EIO once every slave holder is gone) becomes
//!   `server.pty_eof`. While the core has paused the session it waits on the [`ReadGate`]
//!   instead of reading, so the program blocks on its writes.
//! - Input (`Action::WritePty`, which only `server.input` produces) is appended to the
//!   [`InputQueue`] under the lock; then, outside it, the client's own reader thread writes
//!   the queue to the master ([`InputQueue::write_out`]). One writer at a time keeps the
//!   core's order across clients. A program that does not read its input blocks only the
//!   reader threads of the clients typing into it: the back-pressure a terminal or ssh
//!   gives. No thread hand-off on the way in keeps an echo fast.
//!
//! The reader ends when the core closes the pty (`ClosePty`/`Remove`): it waits in `poll`
//! on the master and the gate's eventfd, so it ends at once even while a background job
//! keeps the pty open; the master is closed when the last holder lets go.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use axs_core::http::Response;
use axs_core::limits::INPUT_BACKLOG;
use axs_core::server::{Reservation, SessionId};
use axs_pty::SpawnOptions;
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::shared::{SessionIo, Shared, State};

/// Most a pty master hands out per read (the line discipline's buffer).
const PTY_CHUNK: usize = 4096;
/// Most one reader hands the core at once. Every session's reader thread owns its buffer
/// and keeps it resident, so it is kept to four pty reads (16 KiB, not the core's 64 KiB
/// read size): that is most of an idle session's memory.
const READ_BATCH: usize = 4 * PTY_CHUNK;
/// Stack size of the pty threads (they run core code under the lock, nothing deep).
const STACK_SIZE: usize = 256 * 1024;

#[derive(Debug, Default)]
struct GateState {
    /// The core paused reading (flow control).
    paused: bool,
    /// The core closed the pty: the reader ends.
    closed: bool,
}

/// Whether the pty reader may read: paused by the core, or closed for good.
#[derive(Debug)]
pub struct ReadGate {
    state: Mutex<GateState>,
    changed: Condvar,
    /// An eventfd, readable once closed: it wakes a reader waiting for output that may
    /// never come (a background job keeps the pty open after the program ended).
    closed_fd: OwnedFd,
}

impl ReadGate {
    /// An open gate.
    pub fn new() -> io::Result<ReadGate> {
        let flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
        Ok(ReadGate {
            state: Mutex::default(),
            changed: Condvar::new(),
            closed_fd: rustix::event::eventfd(0, flags)?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pauses or resumes reading.
    pub fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
        self.changed.notify_all();
    }

    /// Stops the reader for good (never blocks: called under the server lock).
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
        if let Err(e) = rustix::io::write(&self.closed_fd, &1u64.to_ne_bytes()) {
            log::debug!("cannot wake the pty reader: {e}");
        }
    }

    /// Blocks while paused; `false` once closed.
    fn wait_open(&self) -> bool {
        let mut state = self.lock();
        while state.paused && !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !state.closed
    }

    /// Blocks until `master` has something to read (or hung up); `false` once closed.
    fn wait_readable(&self, master: &File) -> bool {
        loop {
            let mut fds = [
                PollFd::new(master, PollFlags::IN),
                PollFd::new(&self.closed_fd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) if !fds[1].revents().is_empty() => return false,
                Ok(_) => return true,
                Err(rustix::io::Errno::INTR) => {}
                // Cannot wait (out of memory): the read blocks instead, as it would anyway.
                Err(_) => return !self.is_closed(),
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[derive(Debug, Default)]
struct Pending {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// A thread is writing to the pty (it writes whatever is queued before it stops).
    busy: bool,
    /// Where input goes; `None` once the core closed the pty.
    master: Option<Arc<File>>,
}

/// Client input on its way to a session's pty.
#[derive(Debug, Default)]
pub struct InputQueue {
    pending: Mutex<Pending>,
    /// Queued input was taken (or the queue closed).
    room: Condvar,
}

impl InputQueue {
    /// A queue writing to `master`.
    pub fn new(master: Arc<File>) -> InputQueue {
        let pending = Pending {
            master: Some(master),
            ..Pending::default()
        };
        InputQueue {
            pending: Mutex::new(pending),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues bytes for the program; never blocks (called under the server lock).
    pub fn push(&self, bytes: Vec<u8>) {
        let mut pending = self.lock();
        if pending.master.is_some() && !bytes.is_empty() {
            pending.bytes += bytes.len();
            pending.chunks.push_back(bytes);
        }
    }

    /// Drops queued input and lets go of the master.
    pub fn close(&self) {
        let mut pending = self.lock();
        pending.master = None;
        pending.chunks.clear();
        pending.bytes = 0;
        self.room.notify_all();
    }

    /// Writes the queued input to the pty on this thread, unless another thread is at it
    /// (it writes everything queued before it stops); then waits while more than
    /// [`INPUT_BACKLOG`] bytes are queued. Blocks while the program does not read its
    /// input. Call after every `server.input`, without the server lock.
    pub fn write_out(&self) {
        let mut pending = self.lock();
        if !pending.busy {
            pending.busy = true;
            while let (Some(master), false) = (pending.master.clone(), pending.chunks.is_empty()) {
                let bytes = take_all(&mut pending);
                self.room.notify_all();
                drop(pending);
                let written = (&*master).write_all(&bytes);
                pending = self.lock();
                if let Err(e) = written {
                    log::debug!("pty write fails, input is dropped from now on: {e}");
                    pending.master = None;
                    pending.chunks.clear();
                    pending.bytes = 0;
                }
            }
            pending.busy = false;
        }
        while pending.bytes > INPUT_BACKLOG && pending.master.is_some() {
            pending = self
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Everything queued, as one chunk (one write).
fn take_all(pending: &mut Pending) -> Vec<u8> {
    let mut all = pending.chunks.pop_front().unwrap_or_default();
    for chunk in pending.chunks.drain(..) {
        all.extend_from_slice(&chunk);
    }
    pending.bytes = 0;
    all
}

/// Spawns the program of a reserved session, registers it and starts its threads.
/// Returns the answer for the creator.
pub fn create(shared: &Arc<Shared>, program: &SpawnOptions, reservation: Reservation) -> Response {
    let gate = match ReadGate::new() {
        Ok(gate) => Arc::new(gate),
        Err(e) => {
            log::warn!("cannot start a session: {e}");
            return shared.call(|server, _| server.spawn_failed(reservation, &e.to_string()));
        }
    };
    let spawned = match axs_host::spawn_session(program, reservation.size()) {
        Ok(spawned) => spawned,
        Err(e) => {
            log::warn!("cannot start a session: {e}");
            return shared.call(|server, _| server.spawn_failed(reservation, &e.to_string()));
        }
    };
    let pid = spawned.pid;
    let master = Arc::new(File::from(spawned.master));
    let input = Arc::new(InputQueue::new(Arc::clone(&master)));
    let response = shared.with_state(|state: &mut State, _| {
        state.last_serial += 1;
        state.unreaped.insert(pid, state.last_serial);
        state.sessions.insert(
            pid,
            SessionIo {
                serial: state.last_serial,
                master: Some(Arc::clone(&master)),
                gate: Arc::clone(&gate),
                input: Arc::clone(&input),
            },
        );
        state.server.spawned(reservation, pid)
    });
    let reader = Arc::clone(shared);
    let started = thread::Builder::new()
        .name(format!("pty-read-{pid}"))
        .stack_size(STACK_SIZE)
        .spawn(move || read_pty(&reader, pid, &master, &gate));
    if let Err(e) = started {
        log::error!("session {pid}: cannot start its pty reader: {e}");
        shared.call(|server, _| server.terminate(pid));
    }
    // The program may have ended before it was registered: its SIGCHLD found nothing.
    crate::signals::reap(shared, pid);
    log::debug!("session {pid} started");
    response
}

/// The pty reader thread.
fn read_pty(shared: &Shared, id: SessionId, master: &File, gate: &ReadGate) {
    let mut buf = vec![0u8; shared.read_size.clamp(1, READ_BATCH)];
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
    while n > 0 && buf.len() - n >= PTY_CHUNK && readable_now(master) {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn temp_master(name: &str) -> (std::path::PathBuf, Arc<File>) {
        let path = std::env::temp_dir().join(format!("axs-threads-{}-{name}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, Arc::new(file))
    }

    #[test]
    fn input_from_several_threads_keeps_the_queue_order() {
        let (path, master) = temp_master("order");
        let queue = Arc::new(InputQueue::new(master));
        let order = Arc::new(Mutex::new(()));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (queue, order) = (Arc::clone(&queue), Arc::clone(&order));
                thread::spawn(move || {
                    for i in 0..200 {
                        // The server lock: pushes are ordered, writes happen outside it.
                        let guard = order.lock().unwrap();
                        queue.push(format!("{t}:{i};").into_bytes());
                        drop(guard);
                        queue.write_out();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        for t in 0..4 {
            let mine: Vec<usize> = text
                .split(';')
                .filter_map(|item| item.strip_prefix(&format!("{t}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..200).collect::<Vec<_>>(), "thread {t}");
        }
    }

    #[test]
    fn a_closed_queue_drops_input_and_releases_waiters() {
        let (path, master) = temp_master("closed");
        let queue = InputQueue::new(master);
        queue.close();
        queue.push(b"late".to_vec());
        queue.write_out();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_gate_blocks_while_paused_and_opens_on_resume_or_close() {
        let gate = Arc::new(ReadGate::new().unwrap());
        assert!(gate.wait_open());
        gate.set_paused(true);
        let waiter = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait_open())
        };
        gate.set_paused(false);
        assert!(waiter.join().unwrap());
        gate.set_paused(true);
        let waiter = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait_open())
        };
        gate.close();
        assert!(!waiter.join().unwrap());
    }

    #[test]
    fn closing_the_gate_wakes_a_reader_waiting_for_output() {
        // A socket nobody writes to stands for a pty a background job keeps open.
        let (quiet, _writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let quiet = File::from(OwnedFd::from(quiet));
        let gate = Arc::new(ReadGate::new().unwrap());
        let waiter = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait_readable(&quiet))
        };
        gate.close();
        assert!(!waiter.join().unwrap());
    }
}
