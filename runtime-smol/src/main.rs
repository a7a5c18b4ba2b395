//! axs: the terminal server on smol.
//!
//! One thread runs everything: one executor, one reactor (async-io keeps a helper thread
//! that polls the reactor while this one is busy, whatever the number of sessions).
//! The table of contents:
//! - start-up: parse flags, find the program, bind, tell the ready pipe ([`main`]);
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

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use async_io::Async;
use async_signal::{Signal, Signals};
use axs_core::cli::{self, Bind, CliExit, Config};
use axs_core::server::Server;
use axs_pty::{host, SigchldPipe};
use futures_lite::StreamExt;
use smol::LocalExecutor;

use crate::driver::{Driver, Program};

/// How long shutdown waits for sessions to end and clients to get their exit and close.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(4);

fn main() {
    axs_pty::logging::init();
    let config = match cli::parse_args(std::env::args_os()) {
        Ok(config) => config,
        Err(exit) => cli_exit(&exit),
    };
    let program = session_program(&config).unwrap_or_else(|e| host::fail_startup(&e));
    let ip = bind_address(config.bind).unwrap_or_else(|e| host::fail_startup(&e));
    let listener =
        host::bind_listener(ip, config.port).unwrap_or_else(|e| host::fail_startup(&e.to_string()));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| host::fail_startup(&format!("cannot read the bound address: {e}")));
    let reactor = Reactor::new(listener).unwrap_or_else(|e| host::fail_startup(&e));
    let server = Server::from_config(&config, bound, host::home_dir());
    host::ready();
    log::info!("listening on http://{bound}");
    run(server, program, reactor);
    std::process::exit(0);
}

/// Prints clap's text (help, version or a usage error) and exits with its code; the
/// ready pipe hears about it too, so a waiting client never hangs.
fn cli_exit(exit: &CliExit) -> ! {
    let first = exit
        .message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad command line");
    let reason = first.trim().trim_start_matches("error: ");
    if exit.code == 0 {
        host::announce_failure("no server started (help or version was asked for)");
        print!("{}", exit.message);
    } else {
        host::announce_failure(reason);
        eprint!("{}", exit.message);
    }
    std::process::exit(exit.code);
}

/// The program every session runs: `-c`, or the login shell; checked now so a bad one is
/// a start-up error rather than a failure of every session.
fn session_program(config: &Config) -> Result<Program, String> {
    let (program, args) = match &config.command {
        Some(words) => {
            let mut words = words.iter().map(OsString::from);
            let program = words.next().unwrap_or_else(|| OsString::from("sh"));
            (program, words.collect())
        }
        None => {
            let (shell, args) = host::login_shell();
            (shell.into_os_string(), args)
        }
    };
    host::find_program(Path::new(&program)).map_err(|e| format!("unusable program: {e}"))?;
    Ok(Program { program, args })
}

/// The address to listen on.
fn bind_address(bind: Bind) -> Result<IpAddr, String> {
    match bind {
        Bind::Loopback => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Bind::Addr(ip) => Ok(ip),
        Bind::Lan => host::lan_address().map_err(|e| format!("-i: {e}")),
    }
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
fn run(server: Server, program: Program, reactor: Reactor) {
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
                        async_io::Timer::after(Duration::from_millis(50)).await;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn command_is_split_into_program_and_args() {
        let config = cli::parse_args(["axs", "-c", "sh -c 'echo hi'"].map(OsString::from)).unwrap();
        let program = session_program(&config).unwrap();
        assert_eq!(program.program, OsString::from("sh"));
        assert_eq!(program.args, ["-c", "echo hi"].map(OsString::from).to_vec());
    }

    #[test]
    fn a_missing_program_is_a_startup_error() {
        let config =
            cli::parse_args(["axs", "-c", "no-such-axs-program"].map(OsString::from)).unwrap();
        let err = session_program(&config).unwrap_err();
        assert_eq!(
            err,
            "unusable program: program no-such-axs-program not found in PATH"
        );
    }

    #[test]
    fn default_program_is_a_login_shell() {
        let program = session_program(&Config::default()).unwrap();
        assert_eq!(program.args, vec![OsString::from("-l")]);
    }

    #[test]
    fn loopback_by_default() {
        assert_eq!(
            bind_address(Bind::Loopback).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(bind_address(Bind::Addr(ip)).unwrap(), ip);
    }
}
