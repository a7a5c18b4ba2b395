//! axs: the terminal server on smol.
//!
//! One thread runs everything: one executor, one reactor (async-io keeps a helper thread
//! that polls the reactor while this one is busy, whatever the number of sessions).
//! The table of contents:
//! - start-up: parse flags, find the program, bind (`axs_host::start_up`), watch
//!   the listener and signals, tell the ready pipe ([`main`]);
//! - accept connections and serve each as a task ([`conn`]);
//! - sessions' pty readers and writers ([`pty`]), WebSocket clients ([`ws`]),
//!   `execute-command` ([`exec`]);
//! - SIGCHLD reaps children, the timer task runs the core's deadlines, SIGINT/SIGTERM
//!   shut down ([`driver`]).
//!
//! Every decision is the core's (`axs-core`); this crate moves bytes and makes syscalls.

mod conn;
mod driver;
mod exec;
mod pty;
mod wake;
mod ws;

use std::net::TcpListener;
use std::rc::Rc;

use async_io::Async;
use async_signal::{Signal, Signals};
use axs_core::limits::{ACCEPT_RETRY, SHUTDOWN_LIMIT};
use axs_core::server::Server;
use axs_pty::{SigchldPipe, SpawnOptions};
use futures_lite::StreamExt;
use smol::LocalExecutor;

use crate::driver::Driver;

fn main() {
    let up = axs_host::start_up(std::env::args_os());
    let reactor = Reactor::new(up.listener).unwrap_or_else(|e| axs_host::fail_startup(&e));
    axs_host::ready();
    log::info!("listening on http://{}", up.bound);
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
    fn new(listener: TcpListener) -> Result<Reactor, String> {
        let listener =
            Async::new(listener).map_err(|e| format!("cannot watch the listener: {e}"))?;
        let sigchld_pipe =
            SigchldPipe::get().map_err(|e| format!("cannot install the SIGCHLD handler: {e}"))?;
        let sigchld = Async::new(sigchld_pipe.fd())
            .map_err(|e| format!("cannot watch the SIGCHLD pipe: {e}"))?;
        let signals = Signals::new([Signal::Term, Signal::Int])
            .map_err(|e| format!("cannot handle SIGTERM/SIGINT: {e}"))?;
        Ok(Reactor {
            listener,
            sigchld,
            sigchld_pipe,
            signals,
        })
    }
}

/// Serves until SIGINT or SIGTERM, then shuts down.
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
        let _reaper = executor.spawn(async move {
            while sigchld.readable().await.is_ok() {
                sigchld_pipe.drain();
                reaper.reap();
            }
            log::error!("the SIGCHLD pipe failed; exits are no longer noticed");
        });
        let accept = driver.clone();
        let acceptor = executor.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => accept.spawn_detached(conn::serve(accept.clone(), stream)),
                    Err(e) => {
                        // Out of descriptors, usually: wait a little instead of spinning.
                        log::warn!("accept: {e}");
                        async_io::Timer::after(ACCEPT_RETRY).await;
                    }
                }
            }
        });
        // A task of its own: the main future is polled on every wake-up of the thread,
        // and polling the signal stream costs a syscall.
        let stop = executor.spawn(async move {
            if let Some(Ok(signal)) = signals.next().await {
                log::info!("{signal:?}: shutting down");
            }
        });
        stop.await;
        drop(acceptor);
        driver.shutdown(SHUTDOWN_LIMIT).await;
    };
    async_io::block_on(executor.run(main));
}
