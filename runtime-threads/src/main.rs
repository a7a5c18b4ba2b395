//! axs-threads: the axs terminal server on plain OS threads and blocking I/O.
//!
//! The same server as `axs` (same flags, environment, API, defaults and error answers):
//! every decision is the core's (`axs-core`); this crate moves bytes and runs timers.
//!
//! # Threads
//!
//! | thread | how many | blocks in | feeds the core |
//! |---|---|---|---|
//! | `main` | 1 | `accept` | — (spawns a connection thread) |
//! | `signals` | 1 | `poll` on the SIGCHLD and SIGINT/SIGTERM self-pipes | `child_exited` (SIGCHLD: `try_wait` per unreaped pid; a reaped `execute-command` shell wakes its connection), `shutdown` |
//! | `timer` | 1 | condvar until the core's deadline | `handle_timeout`; grace kills, command timeouts |
//! | connection | 1 per HTTP request (at most 64 at once), ≤ 15 s to send it | `read`; `poll` on a command's pty and exit (≤ 30 s) | `request`, `spawned`, `command_finished` |
//! | `ws-read` = the connection's thread after the 101 | 1 per attached client | `read`; pty writes of its input | `input`, `detach` |
//! | `ws-write` | 1 per attached client | condvar until `Wake`, then socket writes | `poll_transmit` |
//! | `pty-read` | 1 per session, until the core closes its pty | `poll` on the master and the gate's eventfd (condvar while paused) | `pty_output`, `pty_eof` |
//! //! | `shutdown` | 1 during shutdown | condvar, ≤ 4 s | `shutdown` |
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

use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;

use axs_core::limits::ACCEPT_RETRY;
use axs_pty::host;
use axs_pty::SpawnOptions;

use crate::shared::Shared;

/// Most requests read and answered at once; beyond, connections wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// Stack size of connection threads (they parse requests and run core code).
const CONNECTION_STACK: usize = 512 * 1024;

fn main() {
    let up = host::start_up(std::env::args_os());
    let signals = signals::install().unwrap_or_else(|e| host::fail_startup(&e));
    let shared = Shared::new(up.server);
    start("timer", {
        let shared = Arc::clone(&shared);
        move || timer::run(shared)
    });
    start("signals", {
        let shared = Arc::clone(&shared);
        move || signals::run(&shared, signals)
    });
    host::ready();
    log::info!("listening on http://{}", up.bound);
    accept(&shared, &Arc::new(up.program), &up.listener);
}

/// Starts a thread the server cannot work without.
fn start(name: &str, body: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(body) {
        host::fail_startup(&format!("cannot start the {name} thread: {e}"));
    }
}

/// Accepts connections forever, each served on its own thread.
fn accept(shared: &Arc<Shared>, program: &Arc<SpawnOptions>, listener: &TcpListener) -> ! {
    let slots = Arc::new(Slots::default());
    loop {
        slots.acquire();
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                slots.release();
                log::warn!("accept: {e}");
                // Out of descriptors or memory: give the others a moment to finish.
                thread::sleep(ACCEPT_RETRY);
                continue;
            }
        };
        let (shared, program) = (Arc::clone(shared), Arc::clone(program));
        let slot = Slot(Arc::clone(&slots));
        let spawned = thread::Builder::new()
            .name("conn".into())
            .stack_size(CONNECTION_STACK)
            .spawn(move || conn::serve(&shared, &program, stream, slot));
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
        }
    }
}

/// A place among the [`MAX_CONNECTIONS`]; freed when dropped.
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Counts connections reading or answering a request (a WebSocket leaves the count).
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        while *busy >= MAX_CONNECTIONS {
            busy = self
                .freed
                .wait(busy)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *busy += 1;
    }

    fn release(&self) {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        *busy = busy.saturating_sub(1);
        self.freed.notify_one();
    }
}
