//! axs: the terminal server on smol.
//!
//! One thread runs everything: one executor and one reactor, both driven by this thread
//! ([`reactor`]: it waits in `epoll_wait` itself, so an event after a pause wakes it
//! directly). async-io's helper thread remains, only for async-signal's SIGINT/SIGTERM
//! pipe: two threads whatever the number of sessions.
//! The table of contents:
//! - start-up: parse flags, find the program, bind (`axs_host::start_up`), watch
//!   the listener and signals, tell the ready pipe ([`main`]);
//! - accept connections ([`run`]) and serve each as a task, driven by the core's
//!   `Connection` ([`conn`]);
//! - sessions' pty readers and writers ([`pty`]), WebSocket clients ([`ws`]),
//!   `execute-command` jobs ([`job`]);
//! - the core's outputs carried out, SIGCHLD reaping, the core's timer ([`driver`]);
//! - SIGINT/SIGTERM: close the listener, `shutdown`, serve on until the core's `Exit`
//!   ([`run`]).
//!
//! Every decision is the core's (`axs-core`); this crate moves bytes and makes syscalls.

mod conn;
mod driver;
mod job;
mod lsp;
mod pty;
mod reactor;
mod wake;
mod ws;

use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

use async_signal::{Signal, Signals};
use axs_core::server::Server;
use axs_pty::{SigchldPipe, SpawnOptions};
use futures_lite::StreamExt;
use smol::LocalExecutor;

use crate::driver::Driver;
use crate::reactor::Async;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if axs_host::lsp::is_lsp_command(&args) {
        lsp::main(args);
    }
    let up = axs_host::start_up(args);
    let reactor = Reactor::new(up.listener, &[Signal::Term, Signal::Int])
        .unwrap_or_else(|e| axs_host::fail_startup(&e));
    // Logged before READY, so whoever waits for READY finds the line already written.
    log::info!("listening on http://{}", up.bound);
    axs_host::ready();
    run(up.server, up.program, reactor);
    std::process::exit(0);
}

/// The OS handles the event loop watches, set up before READY so a signal right after
/// it is already handled.
struct Reactor {
    listener: Async<TcpListener>,
    sigchld: Async<std::os::fd::BorrowedFd<'static>>,
    sigchld_pipe: &'static SigchldPipe,
    signals: Signals,
}

impl Reactor {
    /// Watches `listener`, SIGCHLD and `stop` (the signals that end the server).
    fn new(listener: TcpListener, stop: &[Signal]) -> Result<Reactor, String> {
        let listener =
            Async::new(listener).map_err(|e| format!("cannot watch the listener: {e}"))?;
        let sigchld_pipe =
            SigchldPipe::get().map_err(|e| format!("cannot install the SIGCHLD handler: {e}"))?;
        let sigchld = Async::new(sigchld_pipe.fd())
            .map_err(|e| format!("cannot watch the SIGCHLD pipe: {e}"))?;
        let signals = Signals::new(stop.iter().copied())
            .map_err(|e| format!("cannot handle {stop:?}: {e}"))?;
        Ok(Reactor {
            listener,
            sigchld,
            sigchld_pipe,
            signals,
        })
    }
}

/// Serves until SIGINT or SIGTERM, then until the core's shutdown is complete.
fn run(server: Server, program: SpawnOptions, reactor: Reactor) {
    let executor = Rc::new(LocalExecutor::new());
    let driver = Driver::new(server, executor.clone(), program);
    let Reactor {
        listener,
        sigchld,
        sigchld_pipe,
        mut signals,
    } = reactor;
    let main = async {
        let _timers = executor.spawn(driver.clone().run_timers());
        let reaper = driver.clone();
        let _reaper = executor.spawn(watch_children(sigchld, sigchld_pipe, move || {
            reaper.reap();
        }));
        let (accept, pause) = (driver.clone(), driver.clone());
        let acceptor = executor.spawn(accept_connections(
            listener,
            move |stream| serve_connection(&accept, stream),
            // Out of descriptors, usually: the core may evict an idle connection to free
            // one, and says how long to wait.
            move |e| {
                let failure = axs_host::accept_failure(e);
                pause.call(|server, now| server.accept_failed(failure, now))
            },
        ));
        // A task of its own: the main future is polled on every wake-up of the thread,
        // and polling the signal stream costs a syscall.
        let stop = executor.spawn(async move {
            if let Some(Ok(signal)) = signals.next().await {
                log::info!("{signal:?}: shutting down");
            }
        });
        stop.await;
        // Dropping the acceptor closes the listener: a new server can take the port.
        acceptor.cancel().await;
        driver.call(|server, now| server.shutdown(now));
        driver.exited().await;
    };
    if let Err(e) = reactor::run(&executor, main) {
        log::error!("the event loop failed: {e}");
        std::process::exit(1);
    }
}

/// Serves an accepted connection as a task of its own.
/// Accepts connections until cancelled, handing each to `serve`; after a failed `accept`
/// waits as long as `pause_after` says (zero: let other tasks run first, such as an
/// evicted connection closing its socket). Shared by the terminal server and the bridge.
pub(crate) async fn accept_connections(
    listener: Async<TcpListener>,
    mut serve: impl FnMut(Async<TcpStream>),
    mut pause_after: impl FnMut(&std::io::Error) -> std::time::Duration,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => serve(stream),
            Err(e) => {
                log::warn!("accept: {e}");
                let pause = pause_after(&e);
                if pause.is_zero() {
                    futures_lite::future::yield_now().await;
                } else {
                    reactor::Timer::after(pause).await;
                }
            }
        }
    }
}

/// Calls `reap` whenever SIGCHLD arrived, until the pipe fails. Shared by the terminal
/// server and the bridge.
pub(crate) async fn watch_children(
    sigchld: Async<std::os::fd::BorrowedFd<'static>>,
    pipe: &'static SigchldPipe,
    mut reap: impl FnMut(),
) {
    while sigchld.readable().await.is_ok() {
        pipe.drain();
        reap();
    }
    log::error!("the SIGCHLD pipe failed; exits are no longer noticed");
}

fn serve_connection(driver: &Rc<Driver>, stream: Async<TcpStream>) {
    driver.spawn(conn::serve(driver.clone(), stream)).detach();
}
