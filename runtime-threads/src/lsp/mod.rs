//! `axs-threads lsp …`: the language-server bridge on threads. Every decision is the
//! core's (`axs_core::lsp`: the `Bridge` routes and lists the programs, each `Link` says
//! what goes where, when to close and when to signal); this module accepts connections,
//! spawns the programs and moves bytes, following the driving loop in
//! `axs_core::lsp::bridge`'s docs.
//!
//! # Threads
//!
//! | thread | how many | blocks in | does |
//! |---|---|---|---|
//! | `main` | 1 | `poll` on the listener and the stop eventfd, then a condvar until no link is left | accepts; at the end removes the port file and exits 0 |
//! | `lsp-signals` | 1 | `poll` on the SIGCHLD and SIGTERM/SIGINT/SIGHUP pipes | wakes every link (SIGCHLD: each reaps its own pid; stop: each shuts down) |
//! | `lsp-conn` | 1 per connection | the HTTP request (the core's `Connection`, as the terminal server's); after the 101 the same thread runs the link ([`link`]) | |
//!
//! Invariants: a program is reaped only by its own link's thread (by pid, never
//! `waitpid(-1)`), and `/status` lists it until then; after a stop signal the process
//! exits only once no link is left and no spawn is under way, so no program outlives it
//! unsignalled; every way out removes the port file.

mod link;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use axs_core::api::{ApiError, Policy};
use axs_core::conn::{ConnEvent, Connection, Request};
use axs_core::http::Response;
use axs_core::limits::{ACCEPT_RETRY, CONN_READ_CHUNK};
use axs_core::lsp::{Bridge, BridgeRoute, Link};
use axs_core::time::Time;
use axs_host::lsp::{self as host_lsp, remove_port_file};
use axs_host::Clock;
use axs_pty::{PipedChild, PipedOptions};
use rustix::event::EventfdFlags;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::accept::accept_until_stopped;
use crate::handles::StopAccepting;
use crate::{conn, signals};

/// Runs the bridge (`args` start with the binary's name, then `lsp`); never returns.
pub fn main(args: Vec<OsString>) -> ! {
    let up = host_lsp::start_up(args);
    let signals =
        signals::install_stopping_on(&[SIGTERM, SIGINT, SIGHUP]).unwrap_or_else(|e| fail(&e));
    let stop =
        StopAccepting::new().unwrap_or_else(|e| fail(&format!("cannot watch the listener: {e}")));
    if let Err(e) = up.listener.set_nonblocking(true) {
        // A connection reset between poll and accept must not block the loop.
        fail(&format!("cannot watch the listener: {e}"));
    }
    let (hub, stop) = (Arc::new(Hub::new(up.bridge)), Arc::new(stop));
    let spawned = thread::Builder::new().name("lsp-signals".into()).spawn({
        let (hub, stop) = (Arc::clone(&hub), Arc::clone(&stop));
        move || loop {
            let (child, stopping) = signals::next(&signals);
            if stopping {
                log::info!("shutting down");
                stop.stop();
                hub.stop();
            }
            if child || stopping {
                hub.wake_all();
            }
        }
    });
    if let Err(e) = spawned {
        fail(&format!("cannot start the signal thread: {e}"));
    }
    host_lsp::announce(up.bound);
    let program = Arc::new(up.program);
    accept_until_stopped(
        &up.listener,
        &stop,
        |stream| start_serving(&hub, &program, stream),
        // Out of descriptors or memory: give the others a moment to finish.
        |_| ACCEPT_RETRY,
    );
    drop(up.listener);
    // Held to the end: no spawn can start after the last look.
    let _idle = hub.wait_idle();
    remove_port_file();
    log::info!("shut down");
    std::process::exit(0)
}

/// A start-up failure after the port file was written: remove it, then fail as usual.
fn fail(reason: &str) -> ! {
    remove_port_file();
    axs_host::fail_startup(reason)
}

/// Serves a connection on a thread of its own.
fn start_serving(hub: &Arc<Hub>, program: &Arc<PipedOptions>, stream: TcpStream) {
    let (hub, program) = (Arc::clone(hub), Arc::clone(program));
    let started = thread::Builder::new()
        .name("lsp-conn".into())
        .stack_size(crate::CONNECTION_STACK)
        .spawn(move || serve(&hub, &program, stream));
    if let Err(e) = started {
        log::warn!("cannot start a connection thread: {e}");
    }
}

/// Serves one connection: its request through the core's [`Connection`] (as the
/// terminal server's), then, after a 101, its link on this thread.
fn serve(hub: &Hub, program: &PipedOptions, mut stream: TcpStream) {
    // Small JSON-RPC messages must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::new(hub.now());
    let mut buf = vec![0u8; CONN_READ_CHUNK];
    let mut connected = None;
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ConnEvent::Request(request) => {
                    let (answer, spawned) = decide(hub, program, &request);
                    connected = spawned.map(|s| (s, request.early));
                    conn.respond(answer, hub.now());
                }
                ConnEvent::ShutdownWrite => {
                    let _ = stream.shutdown(Shutdown::Write);
                }
                ConnEvent::Upgraded => {
                    if let Some((spawned, early)) = connected {
                        link::run(hub, spawned, Some((stream, early)));
                    }
                    return;
                }
            }
        }
        if conn.is_closed() {
            // The 101 never went out: the program runs its link without a socket.
            if let Some((spawned, _)) = connected {
                link::run(hub, spawned, None);
            }
            return;
        }
        conn::step(&hub.clock, &hub.policy, &mut conn, &mut stream, &mut buf);
    }
}

/// The core's answer to a request; for a WebSocket, the program spawned first.
fn decide(hub: &Hub, program: &PipedOptions, request: &Request) -> (Response, Option<Spawned>) {
    let head = &request.head;
    let bridge = hub.bridge();
    match bridge.route(head) {
        Err(e) => (bridge.answer(head, Err(e)), None),
        Ok(BridgeRoute::Status) => (bridge.status(head, hub.now(), host_lsp::memory_of), None),
        Ok(BridgeRoute::Preflight) => (bridge.preflight(head), None),
        Ok(BridgeRoute::Connect) => match hub.spawn(program) {
            Ok(spawned) => (bridge.accept(head), Some(spawned)),
            Err(e) => (bridge.answer(head, Err(e)), None),
        },
    }
}

/// A program spawned for a socket, with its link and its thread's wake-up.
#[derive(Debug)]
struct Spawned {
    link: Link,
    child: PipedChild,
    waker: Arc<Waker>,
}

/// Wakes a link's thread from its `poll`: a SIGCHLD (reap?) or a stop (shut down).
#[derive(Debug)]
struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A waker already set: its thread looks once at start (the program may have ended
    /// before the waker was registered, its SIGCHLD seen by nobody).
    fn new() -> io::Result<Waker> {
        let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let waker = Waker { fd };
        waker.wake();
        Ok(waker)
    }

    /// Makes the eventfd readable (never blocks).
    fn wake(&self) {
        if let Err(e) = rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
            log::debug!("cannot wake a link: {e}");
        }
    }

    /// Whether it was woken since the last call (empties it, never blocks).
    fn take(&self) -> bool {
        let mut count = [0u8; 8];
        rustix::io::read(&self.fd, &mut count).is_ok()
    }
}

/// What the threads share: the core's bridge, the links' wakers, and the stop.
#[derive(Debug)]
struct Hub {
    state: Mutex<HubState>,
    /// Notified when a link ends or a spawn completes.
    idle: Condvar,
    clock: Clock,
    /// Who may connect (never changes: connections parse without the lock).
    policy: Policy,
}

#[derive(Debug)]
struct HubState {
    bridge: Bridge,
    /// Every running link, by its program's pid.
    links: HashMap<u32, Arc<Waker>>,
    /// Spawns under way (their links are not registered yet).
    spawning: usize,
    stopping: bool,
}

impl Hub {
    fn new(bridge: Bridge) -> Hub {
        Hub {
            policy: bridge.policy().clone(),
            state: Mutex::new(HubState {
                bridge,
                links: HashMap::new(),
                spawning: 0,
                stopping: false,
            }),
            idle: Condvar::new(),
            clock: Clock::start(),
        }
    }

    /// The lock; a thread that panicked while holding it does not take the bridge down
    /// (every statement leaves the tables consistent, and the core never panics).
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Time {
        self.clock.now()
    }

    /// A copy of the bridge, to answer a request without the lock (`/status` reads `/proc`).
    fn bridge(&self) -> Bridge {
        self.lock().bridge.clone()
    }

    /// Spawns a socket's program and registers its link (counted meanwhile, so a stop
    /// waits for it).
    fn spawn(&self, program: &PipedOptions) -> Result<Spawned, ApiError> {
        let waker = Waker::new()
            .map_err(|e| ApiError::SpawnFailed(format!("cannot watch the language server: {e}")))?;
        self.lock().spawning += 1;
        let child = host_lsp::spawn_server(program);
        let mut state = self.lock();
        state.spawning -= 1;
        self.idle.notify_all();
        let child = child?;
        let link = state.bridge.connected(child.pid, self.now());
        let waker = Arc::new(waker);
        state.links.insert(child.pid, Arc::clone(&waker));
        Ok(Spawned { link, child, waker })
    }

    /// The program `pid` was reaped: `/status` no longer lists it.
    fn exited(&self, pid: u32) {
        self.lock().bridge.exited(pid);
    }

    /// The link of `pid` is over.
    fn finished(&self, pid: u32) {
        self.lock().links.remove(&pid);
        self.idle.notify_all();
    }

    /// Whether a stop signal arrived.
    fn stopping(&self) -> bool {
        self.lock().stopping
    }

    fn stop(&self) {
        self.lock().stopping = true;
    }

    fn wake_all(&self) {
        for waker in self.lock().links.values() {
            waker.wake();
        }
    }

    /// Blocks until no link is left and no spawn is under way; returns the lock, which
    /// keeps it so.
    fn wait_idle(&self) -> MutexGuard<'_, HubState> {
        let mut state = self.lock();
        while !state.links.is_empty() || state.spawning > 0 {
            state = self
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state
    }
}
