//! `axs lsp`: the language-server bridge on smol, a thin driver of the core's
//! [`Bridge`] and [`Link`]s (the driving loop is in `axs_core::lsp::bridge`'s docs).
//!
//! One thread, one executor, as for the terminal server:
//! - start-up (`axs_host::lsp::start_up`), the reactor's handles, the listening line
//!   ([`main`]);
//! - the accept loop, the SIGCHLD reaper and SIGTERM/SIGINT/SIGHUP ([`run`]);
//! - each HTTP connection driven by the core's `Connection`, routed by the [`Bridge`]
//!   ([`serve`]); a WebSocket upgrade spawns the program and becomes a [`LinkIo`].
//!
//! Invariants: every spawned program has its [`LinkIo`] in [`Hub::links`] until its
//! link is finished (socket gone, leader reaped); the port file is removed on every
//! way out (the `PortFile` guard for returns and panics, [`remove_port_file`] before
//! `exit`).

mod link;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;

use async_signal::Signal;
use axs_core::conn::{ConnEvent, Connection, Request};
use axs_core::http::{RequestHead, Response};
use axs_core::limits::{ACCEPT_RETRY, CONN_READ_CHUNK};
use axs_core::lsp::{Bridge, BridgeRoute, Link};
use axs_core::time::Time;
use axs_host::lsp::{remove_port_file, LspStartUp};
use axs_host::Clock;
use axs_pty::PipedOptions;
use futures_lite::StreamExt;
use smol::{LocalExecutor, Task};

use crate::conn::{connection_ready, read_into, write_from, SocketReady};
use crate::reactor::{Async, Timer};
use crate::wake::Wake;
use crate::{accept_connections, watch_children, Reactor};
use link::LinkIo;

/// Runs `axs lsp ...` (`args` as given to the process) to its end; never returns.
pub fn main(args: Vec<OsString>) -> ! {
    let LspStartUp {
        bridge,
        listener,
        bound,
        program,
        port_file,
    } = axs_host::lsp::start_up(args);
    let signals = [Signal::Term, Signal::Int, Signal::Hup];
    let reactor = Reactor::new(listener, &signals).unwrap_or_else(|e| {
        remove_port_file();
        axs_host::fail_startup(&e)
    });
    axs_host::lsp::announce(bound);
    log::info!("bridging {} on {bound}", bridge.program());
    run(bridge, program, reactor);
    drop(port_file);
    remove_port_file();
    std::process::exit(0);
}

/// The bridge and what the runtime holds for it; shared by every task as `Rc<Hub>`.
pub struct Hub {
    bridge: RefCell<Bridge>,
    program: PipedOptions,
    clock: Clock,
    executor: Rc<LocalExecutor<'static>>,
    /// Every spawned program's link, by pid, until the link is finished.
    links: RefCell<HashMap<u32, Rc<LinkIo>>>,
    /// The bridge is shutting down: a link made from now on shuts down at once.
    closing: Cell<bool>,
    /// Notified when the last link is forgotten.
    emptied: Wake,
    /// The one buffer sockets and pipes are read into (reads are handed on at once,
    /// never across an await).
    read_buffer: RefCell<Vec<u8>>,
}

impl Hub {
    /// The core's time now.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Sleeps until the core's time `at`.
    pub async fn sleep_until(&self, at: Time) {
        Timer::at(self.clock.instant(at)).await;
    }

    /// Spawns a task on the executor; dropping the handle cancels it.
    pub fn spawn<T: 'static>(&self, f: impl std::future::Future<Output = T> + 'static) -> Task<T> {
        self.executor.spawn(f)
    }

    /// Runs `f` on the shared read buffer; never from inside `f`, never across an await.
    pub fn with_read_buffer<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        f(&mut self.read_buffer.borrow_mut())
    }

    /// A finished link is dropped (with its program's pipes and its socket).
    fn forget(&self, pid: u32) {
        let mut links = self.links.borrow_mut();
        links.remove(&pid);
        if links.is_empty() {
            self.emptied.notify();
        }
    }

    /// SIGCHLD arrived: reaps the programs the bridge lists, each reported at once.
    fn reap(&self) {
        let pids: Vec<u32> = self.bridge.borrow().pids().collect();
        for pid in pids {
            match axs_pty::try_wait(pid) {
                Ok(Some(status)) => {
                    log::debug!("language server {pid} ended: {status}");
                    self.bridge.borrow_mut().exited(pid);
                    let status = axs_host::exit_status(status);
                    let io = self.links.borrow().get(&pid).cloned();
                    if let Some(io) = io {
                        io.call(|link, now| link.exited(status, now));
                    }
                }
                Ok(None) => {}
                Err(e) => log::debug!("waitpid({pid}): {e}"),
            }
        }
    }

    /// Every link shuts down; returns once all of them are finished (the core's
    /// deadlines bound it).
    async fn shut_down(&self) {
        self.closing.set(true);
        let links: Vec<Rc<LinkIo>> = self.links.borrow().values().cloned().collect();
        for io in links {
            io.call(Link::shutdown);
        }
        while !self.links.borrow().is_empty() {
            self.emptied.wait().await;
        }
    }

    /// The answer to a whole request; a WebSocket upgrade spawns the program first and
    /// leaves its link (and the bytes after the request) in `connected`.
    fn answer(
        self: &Rc<Self>,
        request: Request,
        connected: &mut Option<(Rc<LinkIo>, Vec<u8>)>,
    ) -> Response {
        let Request { head, early, .. } = request;
        let route = self.bridge.borrow().route(&head);
        let bridge = self.bridge.borrow();
        match route {
            Ok(BridgeRoute::Status) => bridge.status(&head, self.now(), axs_host::lsp::memory_of),
            Ok(BridgeRoute::Preflight) => bridge.preflight(&head),
            Ok(BridgeRoute::Connect) => {
                drop(bridge);
                self.connect(&head, early, connected)
            }
            Err(e) => bridge.answer(&head, Err(e)),
        }
    }

    /// Spawns the program for a WebSocket; the `101`, or why it failed.
    fn connect(
        self: &Rc<Self>,
        head: &RequestHead,
        early: Vec<u8>,
        connected: &mut Option<(Rc<LinkIo>, Vec<u8>)>,
    ) -> Response {
        let child = match axs_host::lsp::spawn_server(&self.program) {
            Ok(child) => child,
            Err(e) => {
                log::warn!("cannot start the language server: {e:?}");
                return self.bridge.borrow().answer(head, Err(e));
            }
        };
        let link = self.bridge.borrow_mut().connected(child.pid, self.now());
        let io = LinkIo::start(self, link, child);
        if self.closing.get() {
            io.call(Link::shutdown);
        }
        *connected = Some((io, early));
        self.bridge.borrow().accept(head)
    }
}

/// Serves until SIGTERM, SIGINT or SIGHUP, then until every link is finished.
fn run(bridge: Bridge, program: PipedOptions, reactor: Reactor) {
    let executor = Rc::new(LocalExecutor::new());
    let hub = Rc::new(Hub {
        bridge: RefCell::new(bridge),
        program,
        clock: Clock::start(),
        executor: executor.clone(),
        links: RefCell::new(HashMap::new()),
        closing: Cell::new(false),
        emptied: Wake::new(),
        read_buffer: RefCell::new(vec![0; CONN_READ_CHUNK]),
    });
    let Reactor {
        listener,
        sigchld,
        sigchld_pipe,
        mut signals,
    } = reactor;
    let main = async {
        let reaper = hub.clone();
        let _reaper = executor.spawn(watch_children(sigchld, sigchld_pipe, move || {
            reaper.reap();
        }));
        let accept = hub.clone();
        let acceptor = executor.spawn(accept_connections(
            listener,
            move |stream| accept.spawn(serve(accept.clone(), stream)).detach(),
            // Out of descriptors, usually: wait a little instead of spinning.
            |_| ACCEPT_RETRY,
        ));
        let stop = executor.spawn(async move {
            if let Some(Ok(signal)) = signals.next().await {
                log::info!("{signal:?}: shutting down");
            }
        });
        stop.await;
        // Closes the listener: a new bridge can take the port.
        acceptor.cancel().await;
        hub.shut_down().await;
    };
    if let Err(e) = crate::reactor::run(&executor, main) {
        log::error!("the event loop failed: {e}");
        std::process::exit(1);
    }
}

type Socket = Async<TcpStream>;

/// Serves one accepted connection: answers its request; an upgraded socket goes to its
/// link, a link whose `101` never got out learns that its client is gone.
async fn serve(hub: Rc<Hub>, stream: Socket) {
    let mut conn = Connection::new(hub.now());
    let mut connected = None;
    let upgraded = drive(&hub, &stream, &mut conn, &mut connected).await;
    match connected {
        Some((io, early)) if upgraded => io.attach(stream, early),
        Some((io, _)) => io.call(|link, now| link.client_closed(now)),
        None => {}
    }
}

/// Runs the connection until it is closed (false) or upgraded (true).
async fn drive(
    hub: &Rc<Hub>,
    stream: &Socket,
    conn: &mut Connection,
    connected: &mut Option<(Rc<LinkIo>, Vec<u8>)>,
) -> bool {
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                ConnEvent::Request(request) => {
                    let answer = hub.answer(request, connected);
                    conn.respond(answer, hub.now());
                }
                ConnEvent::ShutdownWrite => _ = stream.get_ref().shutdown(Shutdown::Write),
                ConnEvent::Upgraded => return true,
            }
        }
        if conn.is_closed() {
            return false;
        }
        if !conn.outgoing().is_empty() && write(hub, stream, conn) {
            continue;
        }
        match connection_ready(stream, conn, |at| hub.sleep_until(at)).await {
            SocketReady::Readable => read(hub, stream, conn),
            SocketReady::Writable => _ = write(hub, stream, conn),
            SocketReady::Timer => {
                conn.handle_timeout(hub.bridge.borrow().policy(), hub.now());
            }
        }
    }
}

/// Reads what the socket has into the connection (a readiness may be spurious).
fn read(hub: &Hub, stream: &Socket, conn: &mut Connection) {
    hub.with_read_buffer(|buf| {
        read_into(stream, conn, buf, hub.bridge.borrow().policy(), hub.now());
    });
}

/// Writes what the connection has to write; false when the socket took nothing.
fn write(hub: &Hub, stream: &Socket, conn: &mut Connection) -> bool {
    write_from(stream, conn, hub.now())
}
