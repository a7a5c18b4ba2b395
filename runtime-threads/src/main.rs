//! axs-threads: the axs terminal server on plain OS threads and blocking I/O.
//!
//! The same server as `axs` (same flags, environment, API, defaults and error answers):
//! every decision is the core's (`axs-core`); this crate moves bytes between sockets,
//! ptys and the core, and carries out the core's outputs.
//!
//! # Threads
//!
//! | thread | how many | blocks in | feeds the core |
//! |---|---|---|---|
//! | `main` | 1 | `poll` on the listener and a stop eventfd, then `accept`; closes the listener when shutdown starts | `connection_opened`, `accept_failed` |
//! | `signals` | 1 | `poll` on the SIGCHLD and SIGINT/SIGTERM self-pipes | `child_exited` (`try_wait` per `unreaped()` pid), `shutdown` |
//! | `timer` | 1 | condvar until the core's `poll_timeout()` | `handle_timeout` |
//! | connection | 1 per admitted connection (the core's admission bounds them) | `read`/`write` until the core `Connection`'s deadline; a job's pty | `request`, `connection_*`, `spawned`, `job_*` |
//! | `ws-read` = the connection's thread after the 101 | 1 per attached client | `read`; pty writes of its input | `input`, `detach` |
//! | `ws-write` | 1 per attached client | condvar until `Wake`, then socket writes | `poll_transmit` |
//! | `pty-read` | 1 per session, until the core closes its pty | `poll` on the master and the gate's eventfd (condvar while paused) | `pty_output`, `pty_eof` |
//!
//! So: 3 threads at rest, plus 1 per session and 2 per attached client.
//!
//! # Modules
//!
//! `main` → `conn` → {`session`, `job`, `client`} → `shared` → {`handles`, `timer`};
//! `signals` → `shared`; `main` and `lsp` → [`accept`] (the accept loop) → `handles`. No module imports one above it: [`handles`] and [`timer`] are
//! leaves holding what the router reaches under the lock.
//!
//! # One lock
//!
//! A single `Mutex` holds the core's `Server` and the runtime's handles ([`shared`]).
//! Every core call is short; after each one the outputs are drained and routed before the
//! lock is released, so they keep the core's order; no thread does blocking I/O while
//! holding it. The core's `Output::Exit` ends the process (status 0) on whichever thread
//! drains it, after the kills before it. A thread that panics dies alone: the lock ignores
//! poisoning (the core never panics, so its state stays consistent) and the release
//! profile unwinds.

mod accept;
mod client;
mod conn;
mod handles;
mod job;
mod lsp;
mod session;
mod shared;
mod signals;
mod timer;

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;

use axs_core::admission::Admission;
use axs_pty::SpawnOptions;

use crate::accept::accept_until_stopped;
use crate::handles::StopAccepting;
use crate::shared::Shared;

/// Stack size of connection threads (they parse requests and run core code).
const CONNECTION_STACK: usize = 512 * 1024;

/// The C allocator's arenas for the whole process: glibc would give each of this
/// runtime's many threads that meets a locked arena its own (up to 16 on 2 cores), and
/// each keeps what lies between its live blocks after the load is gone. With 2 a 90 s
/// soak ends with 1.1 MiB of anonymous memory over the start instead of 3.3; typing,
/// floods and bulk output moved within this machine's noise (typing p50 222 against 214 µs
/// side by side; RELIABILITY.md, "The RSS question").
const ALLOCATOR_ARENAS: u16 = 2;

fn main() {
    // Before any thread exists: a thread's arena is chosen at its first allocation.
    axs_pty::limit_allocator_arenas(ALLOCATOR_ARENAS);
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if axs_host::lsp::is_lsp_command(&args) {
        lsp::main(args);
    }
    let up = axs_host::start_up(args);
    let signals = signals::install().unwrap_or_else(|e| axs_host::fail_startup(&e));
    let stop = StopAccepting::new().unwrap_or_else(|e| {
        axs_host::fail_startup(&format!("cannot watch the listener: {e}"));
    });
    if let Err(e) = up.listener.set_nonblocking(true) {
        // A connection reset between poll and accept must not block the loop.
        axs_host::fail_startup(&format!("cannot watch the listener: {e}"));
    }
    let (shared, stop) = (Shared::new(up.server), Arc::new(stop));
    start("timer", {
        let shared = Arc::clone(&shared);
        move || loop {
            shared.wait_deadline();
            // Re-arms itself: every call leaves with the server's next deadline.
            shared.call(|server, now| server.handle_timeout(now));
        }
    });
    start("signals", {
        let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
        move || signals::run(&shared, &signals, &stop)
    });
    // Logged before READY, so whoever waits for READY finds the line already written.
    log::info!("listening on http://{}", up.bound);
    axs_host::ready();
    let program = Arc::new(up.program);
    accept_until_stopped(
        &up.listener,
        &stop,
        |stream| admit(&shared, &program, stream),
        |e| {
            // Out of descriptors, usually: the core may evict an idle connection to free
            // one, and says how long to wait.
            let failure = axs_host::accept_failure(e);
            shared.call(|server, now| server.accept_failed(failure, now))
        },
    );
    drop(up.listener);
    log::debug!("no longer accepting connections");
    // The process ends with the core's `Exit`, on another thread.
    loop {
        thread::park();
    }
}

/// Starts a thread the server cannot work without.
fn start(name: &str, body: impl FnOnce() + Send + 'static) {
    if let Err(e) = thread::Builder::new().name(name.into()).spawn(body) {
        axs_host::fail_startup(&format!("cannot start the {name} thread: {e}"));
    }
}

/// Asks the core to admit a connection, and serves it on a new thread (or refuses it).
fn admit(shared: &Arc<Shared>, program: &Arc<SpawnOptions>, stream: TcpStream) {
    let admission = match clone_socket(shared, &stream) {
        Ok(clone) => shared.with_state(|state, _| state.open_connection(clone)),
        Err(e) => return log::debug!("accepted connection unusable: {e}"),
    };
    let cid = match admission {
        Admission::Admitted(cid) => cid,
        Admission::Refused(answer) => return refuse(stream, &answer.to_bytes()),
    };
    let (shared, program) = (Arc::clone(shared), Arc::clone(program));
    let closer = Arc::clone(&shared);
    let spawned = thread::Builder::new()
        .name("conn".into())
        .stack_size(CONNECTION_STACK)
        .spawn(move || conn::serve(&shared, &program, stream, cid));
    if let Err(e) = spawned {
        log::warn!("cannot start a connection thread: {e}");
        closer.with_state(|state, _| state.close_connection(cid));
    }
}

/// A clone of an accepted socket, the handle that shuts it down on eviction. Out of
/// descriptors, the core may evict an idle connection first, as when `accept` fails, and
/// the clone is tried once more: the newest connection (maybe a `/status`) is not the one
/// to drop.
fn clone_socket(shared: &Shared, stream: &TcpStream) -> io::Result<TcpStream> {
    stream.try_clone().or_else(|e| {
        let failure = axs_host::accept_failure(&e);
        thread::sleep(shared.call(|server, now| server.accept_failed(failure, now)));
        stream.try_clone()
    })
}

/// Writes the refusal without waiting (it fits a fresh socket's buffer) and closes.
fn refuse(mut stream: TcpStream, answer: &[u8]) {
    let sent = stream
        .set_nonblocking(true)
        .and_then(|()| stream.write_all(answer));
    if let Err(e) = sent {
        log::debug!("refusal not sent: {e}");
    }
}
