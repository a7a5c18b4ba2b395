//! The start-up both runtimes share, and how it ends: `READY` or `ERROR <reason>` on
//! the ready pipe (`AXS_READY_PIPE`), so a waiting client never hangs.
//!
//! Invariant: every way out of start-up tells the ready pipe exactly once: [`ready`] on
//! success, [`fail_startup`] or [`cli_exit`] (through [`announce_failure`]) otherwise.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};

use axs_core::server::Server;
use axs_pty::ready_pipe::{self, DEFAULT_READY_TIMEOUT};
use axs_pty::SpawnOptions;

use crate::cli::{self, CliExit};
use crate::net::{bind_address, bind_listener};
use crate::program::{home_dir, session_program};

/// What [`start_up`] prepared for a runtime.
#[derive(Debug)]
pub struct StartUp {
    /// The core, configured from the command line.
    pub server: Server,
    /// What every session runs; [`crate::spawn_session`] sets the size per session.
    pub program: SpawnOptions,
    /// The listening socket (blocking, close-on-exec).
    pub listener: TcpListener,
    /// The address it listens on (with the port the OS chose for `-p 0`).
    pub bound: SocketAddr,
}

/// The start-up both runtimes share: logging, the command line, the session program,
/// the listener and the core. Every failure ends the process with the ready pipe told
/// (`ERROR <reason>`, see [`fail_startup`] and [`cli_exit`]). `READY` is the caller's
/// to send, with [`ready`], once its own set-up (signals, threads) is done too.
pub fn start_up(args: impl IntoIterator<Item = OsString>) -> StartUp {
    axs_pty::logging::init();
    let config = cli::parse_args(args).unwrap_or_else(|exit| cli_exit(&exit));
    for warning in cli::startup_warnings(&config) {
        // Straight to stderr, not through the log: one line whatever RUST_LOG says.
        eprintln!("axs: {warning}");
    }
    let program = session_program(&config).unwrap_or_else(|e| fail_startup(&e));
    let ip = bind_address(config.bind).unwrap_or_else(|e| fail_startup(&e));
    let listener = bind_listener(ip, config.port).unwrap_or_else(|e| fail_startup(&e.to_string()));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| fail_startup(&format!("cannot read the bound address: {e}")));
    let server = cli::server(&config, bound, home_dir());
    StartUp {
        server,
        program,
        listener,
        bound,
    }
}

/// Prints clap's text (help, version or a usage error) and exits with its code; the
/// ready pipe hears about it too, so a waiting client never hangs.
pub fn cli_exit(exit: &CliExit) -> ! {
    let first = exit
        .message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("bad command line");
    let reason = first.trim().trim_start_matches("error: ");
    if exit.code == 0 {
        announce_failure("no server started (help or version was asked for)");
        print!("{}", exit.message);
    } else {
        announce_failure(reason);
        eprint!("{}", exit.message);
    }
    std::process::exit(exit.code);
}

/// Start-up succeeded: writes `READY` to the ready pipe when `AXS_READY_PIPE` is set.
/// A pipe that cannot take it (not a FIFO, no reader in time) ends the process with
/// status 1 after saying why on stderr.
pub fn ready() {
    let Some(path) = ready_pipe::path_from_env() else {
        return;
    };
    if let Err(e) = ready_pipe::signal_ready(&path, DEFAULT_READY_TIMEOUT) {
        log::error!("{e}");
        eprintln!("axs: {e}");
        std::process::exit(1);
    }
}

/// Start-up failed: tells the ready pipe (`ERROR <reason>`, when `AXS_READY_PIPE` is
/// set), prints `axs: <reason>` on stderr and exits with status 1.
pub fn fail_startup(reason: &str) -> ! {
    announce_failure(reason);
    eprintln!("axs: {reason}");
    std::process::exit(1);
}

/// Writes `ERROR <reason>` to the ready pipe when `AXS_READY_PIPE` is set, so a waiting
/// reader never hangs; a pipe failure is reported on stderr. For exits that print
/// their own message (usage errors).
pub fn announce_failure(reason: &str) {
    log::error!("start-up failed: {reason}");
    if let Some(path) = ready_pipe::path_from_env() {
        if let Err(e) = ready_pipe::signal_error(&path, reason, DEFAULT_READY_TIMEOUT) {
            eprintln!("axs: {e}");
        }
    }
}
