//! The handles threads use to reach each other: what the action router touches under the
//! server lock, and what the threads behind them wait on. A leaf: it imports nothing of
//! this crate, so every other module may use it and the module graph stays one-way.
//!
//! Invariant: every method called under the server lock ([`ReadGate::close`],
//! [`ReadGate::set_paused`], [`InputQueue::push`], [`ClientSignal::wake`],
//! [`ClientSignal::gone`], [`StopAccepting::stop`]) only flips a flag, appends to a queue,
//! notifies a condvar or writes an eventfd: none can block.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axs_core::client::Generation;
use axs_core::limits::{INPUT_BACKLOG, MAX_PONGS};
use axs_core::server::SessionId;
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use tungstenite::protocol::CloseFrame;
use tungstenite::Bytes;

/// Locks a mutex; a thread that panicked while holding it does not take the others down
/// (what these mutexes guard is a flag or a queue, consistent after every statement).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A non-blocking eventfd, for waking a thread blocked in `poll`.
fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
    )?)
}

/// Makes an eventfd readable (never blocks).
fn signal_eventfd(fd: &OwnedFd) -> io::Result<()> {
    rustix::io::write(fd, &1u64.to_ne_bytes())?;
    Ok(())
}

/// Asks the accept loop to close the listener: shutdown has started, and a new server
/// may want the port at once.
#[derive(Debug)]
pub struct StopAccepting {
    /// An eventfd the accept loop polls with the listener.
    fd: OwnedFd,
}

impl StopAccepting {
    /// Not stopped yet.
    pub fn new() -> io::Result<StopAccepting> {
        Ok(StopAccepting { fd: eventfd()? })
    }

    /// Closes the listener soon (never blocks).
    pub fn stop(&self) {
        if let Err(e) = signal_eventfd(&self.fd) {
            log::warn!("cannot stop accepting: {e}");
        }
    }

    /// What the accept loop polls.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

#[derive(Debug, Default)]
struct GateState {
    /// The core paused reading (flow control).
    paused: bool,
    /// The core closed the pty: the reader ends.
    closed: bool,
}

/// Whether a pty reader may read: paused by the core, or closed for good.
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
        Ok(ReadGate {
            state: Mutex::default(),
            changed: Condvar::new(),
            closed_fd: eventfd()?,
        })
    }

    /// Pauses or resumes reading.
    pub fn set_paused(&self, paused: bool) {
        lock(&self.state).paused = paused;
        self.changed.notify_all();
    }

    /// Stops the reader for good.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.notify_all();
        if let Err(e) = signal_eventfd(&self.closed_fd) {
            log::debug!("cannot wake the pty reader: {e}");
        }
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Blocks while paused; `false` once closed.
    pub fn wait_open(&self) -> bool {
        let mut state = lock(&self.state);
        while state.paused && !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !state.closed
    }

    /// Blocks until closed.
    pub fn wait_closed(&self) {
        let mut state = lock(&self.state);
        while !state.closed {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Blocks until `master` has something to read (or hung up); `false` once closed.
    pub fn wait_readable(&self, master: &File) -> bool {
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
}

/// What a session's runtime side holds: its pty master, reader gate and input queue.
#[derive(Debug)]
pub struct SessionIo {
    /// The pty master; `None` once the core closed it.
    master: Option<Arc<File>>,
    /// Pauses and stops the pty reader thread.
    gate: Arc<ReadGate>,
    /// Client input on its way to the pty.
    input: Arc<InputQueue>,
}

impl SessionIo {
    /// The handles of a session reading and writing `master`.
    pub fn new(master: &Arc<File>, gate: &Arc<ReadGate>, input: &Arc<InputQueue>) -> SessionIo {
        SessionIo {
            master: Some(Arc::clone(master)),
            gate: Arc::clone(gate),
            input: Arc::clone(input),
        }
    }

    /// The pty master, while open.
    pub fn master(&self) -> Option<&File> {
        self.master.as_deref()
    }

    /// The reader's gate.
    pub fn gate(&self) -> &ReadGate {
        &self.gate
    }

    /// The input queue.
    pub fn input(&self) -> &Arc<InputQueue> {
        &self.input
    }

    /// Stops the pty reader and input, and hands back the master for closing outside the lock.
    pub fn close(&mut self) -> Option<Arc<File>> {
        self.gate.close();
        self.input.close();
        self.master.take()
    }
}

#[derive(Debug, Default)]
struct PendingInput {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    /// A thread is writing to the pty (it writes whatever is queued before it stops).
    busy: bool,
    /// Where input goes; `None` once the core closed the pty.
    master: Option<Arc<File>>,
}

impl PendingInput {
    /// Everything queued, as one chunk (one write).
    fn take_all(&mut self) -> Vec<u8> {
        let mut all = self.chunks.pop_front().unwrap_or_default();
        for chunk in self.chunks.drain(..) {
            all.extend_from_slice(&chunk);
        }
        self.bytes = 0;
        all
    }

    fn drop_all(&mut self) {
        self.master = None;
        self.chunks.clear();
        self.bytes = 0;
    }
}

/// Client input on its way to a session's pty.
#[derive(Debug, Default)]
pub struct InputQueue {
    pending: Mutex<PendingInput>,
    /// Queued input was taken (or the queue closed).
    room: Condvar,
}

impl InputQueue {
    /// A queue writing to `master`.
    pub fn new(master: Arc<File>) -> InputQueue {
        let pending = PendingInput {
            master: Some(master),
            ..PendingInput::default()
        };
        InputQueue {
            pending: Mutex::new(pending),
            room: Condvar::new(),
        }
    }

    /// Queues bytes for the program.
    pub fn push(&self, bytes: Vec<u8>) {
        let mut pending = lock(&self.pending);
        if pending.master.is_some() && !bytes.is_empty() {
            pending.bytes += bytes.len();
            pending.chunks.push_back(bytes);
        }
    }

    /// Drops queued input and lets go of the master.
    pub fn close(&self) {
        lock(&self.pending).drop_all();
        self.room.notify_all();
    }

    /// Writes the queued input to the pty on this thread, unless another thread is at it
    /// (it writes everything queued before it stops); then waits while more than
    /// [`INPUT_BACKLOG`] bytes are queued. Blocks while the program does not read its
    /// input. Call after every `server.input`, without the server lock.
    pub fn write_out(&self) {
        let mut pending = lock(&self.pending);
        if !pending.busy {
            pending.busy = true;
            while let (Some(master), false) = (pending.master.clone(), pending.chunks.is_empty()) {
                let bytes = pending.take_all();
                self.room.notify_all();
                drop(pending);
                let written = (&*master).write_all(&bytes);
                pending = lock(&self.pending);
                if let Err(e) = written {
                    log::debug!("pty write fails, input is dropped from now on: {e}");
                    pending.drop_all();
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

/// Who a WebSocket client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The session.
    pub id: SessionId,
    /// The client's generation in it.
    pub generation: Generation,
}

/// Why a client's reader stopped, for its writer to answer.
#[derive(Debug, Clone)]
pub enum End {
    /// The client sent a close: answer it.
    PeerClosed(Option<CloseFrame>),
    /// The client broke the protocol: close with this.
    Broken(CloseFrame),
    /// The socket ended without a close.
    Vanished,
}

/// What a client's writer has to do, taken all at once by [`ClientSignal::wait`].
#[derive(Debug, Default)]
pub struct ClientWork {
    /// The core has frames for it (`Action::Wake`).
    pub wake: bool,
    /// Pings to answer (the latest [`MAX_PONGS`]).
    pub pongs: Vec<Bytes>,
    /// The reader stopped: how to end.
    pub end: Option<End>,
    /// The session is gone.
    pub gone: bool,
    reader_done: bool,
}

impl ClientWork {
    /// A writer's first round: poll the core once (more of the replay may be waiting).
    pub fn first() -> ClientWork {
        ClientWork {
            wake: true,
            ..ClientWork::default()
        }
    }

    fn is_empty(&self) -> bool {
        !self.wake && self.pongs.is_empty() && self.end.is_none() && !self.gone
    }
}

/// A client writer's wake-up, set by the router and the client's reader.
#[derive(Debug, Default)]
pub struct ClientSignal {
    work: Mutex<ClientWork>,
    changed: Condvar,
}

impl ClientSignal {
    fn update(&self, f: impl FnOnce(&mut ClientWork)) {
        f(&mut lock(&self.work));
        self.changed.notify_all();
    }

    /// The core has something for this client (`Action::Wake`).
    pub fn wake(&self) {
        self.update(|w| w.wake = true);
    }

    /// The session is gone.
    pub fn gone(&self) {
        self.update(|w| w.gone = true);
    }

    /// The client pinged: answer with this payload (older pongs make room).
    pub fn pong(&self, payload: Bytes) {
        self.update(|w| {
            if w.pongs.len() == MAX_PONGS {
                w.pongs.remove(0);
            }
            w.pongs.push(payload);
        });
    }

    /// The reader stopped for this reason (the first one counts).
    pub fn end(&self, end: End) {
        self.update(|w| {
            w.end.get_or_insert(end);
        });
    }

    /// The reader's thread is done with the socket.
    pub fn reader_finished(&self) {
        self.update(|w| {
            w.end.get_or_insert(End::Vanished);
            w.reader_done = true;
        });
    }

    /// Blocks until there is something to do, and takes it.
    pub fn wait(&self) -> ClientWork {
        let mut work = lock(&self.work);
        while work.is_empty() {
            work = self
                .changed
                .wait(work)
                .unwrap_or_else(PoisonError::into_inner);
        }
        ClientWork {
            wake: std::mem::take(&mut work.wake),
            pongs: std::mem::take(&mut work.pongs),
            end: work.end.take(),
            gone: work.gone,
            reader_done: work.reader_done,
        }
    }

    /// Waits up to `timeout` for the reader thread to end.
    pub fn wait_reader(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut work = lock(&self.work);
        while !work.reader_done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            work = self
                .changed
                .wait_timeout(work, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::thread;

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
    fn closing_the_gate_wakes_a_reader_waiting_for_output_or_the_close() {
        // A socket nobody writes to stands for a pty a background job keeps open.
        let (quiet, _writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let quiet = File::from(OwnedFd::from(quiet));
        let gate = Arc::new(ReadGate::new().unwrap());
        let waiter = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait_readable(&quiet))
        };
        let closed = {
            let gate = Arc::clone(&gate);
            thread::spawn(move || gate.wait_closed())
        };
        gate.close();
        assert!(!waiter.join().unwrap());
        closed.join().unwrap();
    }

    #[test]
    fn a_ping_flood_keeps_the_latest_pongs_only() {
        let signal = ClientSignal::default();
        for i in 0..(MAX_PONGS + 3) {
            signal.pong(Bytes::from(vec![u8::try_from(i).unwrap()]));
        }
        let work = signal.wait();
        assert_eq!(work.pongs.len(), MAX_PONGS);
        assert_eq!(work.pongs[0], Bytes::from(vec![3u8]));
    }
}
