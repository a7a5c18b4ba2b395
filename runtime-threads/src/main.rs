//! axs-threads: the axs terminal server on plain OS threads and blocking I/O.
//!
//! The same server as `axs` (same flags, environment, API, defaults and error answers):
//! every decision is the core's (`axs-core`); this crate moves bytes and runs timers.
//!
//! # Threads
//!
//! | thread | how many | blocks in | feeds the core |
//! |---|---|---|---|
//! | `main` | 1 | `poll` on the listener and a stop eventfd, then `accept`; closes the listener when shutdown starts | — (spawns a connection thread) |
//! | `signals` | 1 | `poll` on the SIGCHLD and SIGINT/SIGTERM self-pipes | `child_exited` (SIGCHLD: `try_wait` per unreaped pid; a reaped `execute-command` shell wakes its connection), `shutdown` |
//! | `timer` | 1 | condvar until the core's deadline | `handle_timeout`; grace kills |
//! | connection | 1 per HTTP connection (at most 512 at once; at most 64 spawning a session or running a command), ≤ 15 s to send its request | `read`; `poll` on a command's pty and exit (≤ 30 s) | `request`, `spawned`, `command_finished` |
//! | `ws-read` = the connection's thread after the 101 | 1 per attached client | `read`; pty writes of its input | `input`, `detach` |
//! | `ws-write` | 1 per attached client | condvar until `Wake`, then socket writes | `poll_transmit` |
//! | `pty-read` | 1 per session, until the core closes its pty | `poll` on the master and the gate's eventfd (condvar while paused) | `pty_output`, `pty_eof` |
//! | `shutdown` | 1 during shutdown | condvar, ≤ 4 s | `shutdown` |
//!
//! So: 3 threads at rest, plus 1 per session and 2 per attached client.
//!
//! # One lock
//!
//! A single `Mutex` holds the core's `Server` and the runtime's handles ([`shared`]).
//! Every core call is short; after each one the actions are drained and routed before the
//! lock is released, so they keep the core's order; no thread does blocking I/O while
//! holding it. A thread that panics dies alone: the lock ignores poisoning (the core never
//! panics, so its state stays consistent) and the release profile unwinds.

mod client;
mod conn;
mod exec;
mod session;
mod shared;
mod signals;
mod timer;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use axs_core::limits::ACCEPT_RETRY;
use axs_pty::SpawnOptions;
use rustix::event::{EventfdFlags, PollFd, PollFlags};

use crate::shared::Shared;

/// Most connections served at once (reading a request, answering it, or upgrading);
/// beyond, connections wait in the listen backlog. High, so that clients that connect
/// and send nothing (each is dropped after `REQUEST_TIMEOUT`) do not starve the others.
const MAX_CONNECTIONS: usize = 512;
/// Most requests that spawn a program (a session or a command) at once; the others wait,
/// already read. `GET /status`, attaches and terminates never wait for these.
const MAX_SPAWNING: usize = 64;
/// Stack size of connection threads (they parse requests and run core code).
const CONNECTION_STACK: usize = 512 * 1024;

fn main() {
    let up = axs_host::start_up(std::env::args_os());
    let signals = signals::install().unwrap_or_else(|e| axs_host::fail_startup(&e));
    let listening = Listening::new(up.listener).unwrap_or_else(|e| {
        axs_host::fail_startup(&format!("cannot watch the listener: {e}"));
    });
    let shared = Shared::new(up.server);
    start("timer", {
        let shared = Arc::clone(&shared);
        move || timer::run(shared)
    });
    start("signals", {
        let (shared, stop) = (Arc::clone(&shared), Arc::clone(&listening.stop));
        move || signals::run(&shared, signals, &stop)
    });
    axs_host::ready();
    log::info!("listening on http://{}", up.bound);
    listening.accept(&shared, &Arc::new(up.program));
}

/// Starts a thread the server cannot work without.
fn start(name: &str, body: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(body) {
        axs_host::fail_startup(&format!("cannot start the {name} thread: {e}"));
    }
}

/// The listener and what bounds the connections it hands out.
struct Listening {
    listener: TcpListener,
    stop: Arc<StopAccepting>,
    /// Places among the [`MAX_SPAWNING`].
    spawning: Arc<Slots>,
}

/// Asks the accept loop to close the listener: shutdown has started, and a new server
/// may want the port at once (as with axs).
#[derive(Debug)]
pub struct StopAccepting {
    /// An eventfd the accept loop polls with the listener.
    fd: OwnedFd,
    /// Places among the [`MAX_CONNECTIONS`] (stopping releases a loop waiting for one).
    connections: Arc<Slots>,
}

impl StopAccepting {
    /// Closes the listener soon (never blocks).
    pub fn stop(&self) {
        self.connections.stop();
        if let Err(e) = rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            log::warn!("cannot stop accepting: {e}");
        }
    }
}

/// What the listener had.
enum Next {
    Connection(TcpStream),
    /// Nothing after all (the client gave up), or a failure worth a pause.
    Nothing,
    Stop,
}

impl Listening {
    fn new(listener: TcpListener) -> io::Result<Listening> {
        // Non-blocking: a connection reset between poll and accept must not block it.
        listener.set_nonblocking(true)?;
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Listening {
            listener,
            stop: Arc::new(StopAccepting {
                fd,
                connections: Arc::new(Slots::new(MAX_CONNECTIONS)),
            }),
            spawning: Arc::new(Slots::new(MAX_SPAWNING)),
        })
    }

    /// Accepts connections, each served on its own thread, until shutdown starts; then
    /// closes the listener and parks (the shutdown thread ends the process).
    fn accept(self, shared: &Arc<Shared>, program: &Arc<SpawnOptions>) -> ! {
        while let Some(slot) = self.stop.connections.acquire() {
            match self.next() {
                Next::Connection(stream) => self.serve(shared, program, stream, slot),
                Next::Nothing => {}
                Next::Stop => break,
            }
        }
        drop(self.listener);
        log::debug!("no longer accepting connections");
        loop {
            thread::park();
        }
    }

    /// Waits for a connection or the stop.
    fn next(&self) -> Next {
        let mut fds = [
            PollFd::new(&self.listener, PollFlags::IN),
            PollFd::new(&self.stop.fd, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Ok(_) if !fds[1].revents().is_empty() => return Next::Stop,
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                log::warn!("poll on the listener: {e}");
                thread::sleep(ACCEPT_RETRY);
            }
        }
        match self.listener.accept() {
            Ok((stream, _)) => match stream.set_nonblocking(false) {
                Ok(()) => Next::Connection(stream),
                Err(e) => {
                    log::debug!("accepted connection unusable: {e}");
                    Next::Nothing
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Next::Nothing,
            Err(e) => {
                log::warn!("accept: {e}");
                // Out of descriptors or memory: give the others a moment to finish.
                thread::sleep(ACCEPT_RETRY);
                Next::Nothing
            }
        }
    }

    fn serve(
        &self,
        shared: &Arc<Shared>,
        program: &Arc<SpawnOptions>,
        stream: TcpStream,
        slot: Slot,
    ) {
        let (shared, program) = (Arc::clone(shared), Arc::clone(program));
        let spawning = Arc::clone(&self.spawning);
        let spawned = thread::Builder::new()
            .name("conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || conn::serve(&shared, &program, stream, slot, &spawning));
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

/// A place among a [`Slots`]' limit; freed when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[derive(Debug, Default)]
struct Count {
    busy: usize,
    stopped: bool,
}

/// Counts holders of a bounded resource.
#[derive(Debug)]
pub struct Slots {
    limit: usize,
    count: Mutex<Count>,
    freed: Condvar,
}

impl Slots {
    fn new(limit: usize) -> Slots {
        Slots {
            limit,
            count: Mutex::default(),
            freed: Condvar::new(),
        }
    }

    /// Waits for a place; `None` once stopped.
    pub fn acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while count.busy >= self.limit && !count.stopped {
            count = self
                .freed
                .wait(count)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if count.stopped {
            return None;
        }
        count.busy += 1;
        Some(Slot(Arc::clone(self)))
    }

    fn release(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        count.busy = count.busy.saturating_sub(1);
        self.freed.notify_one();
    }

    fn stop(&self) {
        self.count
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopped = true;
        self.freed.notify_all();
    }
}
