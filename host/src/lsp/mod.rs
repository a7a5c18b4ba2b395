//! `axs lsp`: what a runtime needs around the core's [`Bridge`] and [`Link`]s.
//!
//! A runtime's `main` checks [`is_lsp_command`] first; then:
//!
//! ```text
//! let s = lsp::start_up(args);        // flags, program lookup, bind, port file; exits on failure
//! (install SIGTERM/SIGINT/SIGHUP handling; each ends with lsp::remove_port_file())
//! lsp::announce(s.bound);             // "listening on 127.0.0.1:<port>" on stdout, then READY
//! accept loop: conn::Connection + s.bridge.route(...) as in axs_core::lsp::bridge's docs;
//!     Connect -> lsp::spawn_server(&s.program) -> s.bridge.connected(pid, now) -> Link
//!     a link's WebSocket uses lsp_ws_config(); its Signals go to crate::signal::deliver;
//!     its exit status comes from crate::status::exit_status
//! /status memory: lsp::memory_of(pid)
//! every exit path: lsp::remove_port_file() (the PortFile guard covers returns and panics)
//! ```
//!
//! Failures before the bridge listens (usage, program not found, busy port, port file)
//! print one line on stderr, send `ERROR <reason>` on the ready pipe and exit non-zero,
//! with no port file left.

mod cli;
mod port_file;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use axs_core::api::{ApiError, Policy};
use axs_core::lsp::{Bridge, MAX_LSP_MESSAGE};
use axs_pty::ready_pipe::{self, DEFAULT_READY_TIMEOUT};
use axs_pty::{PipedChild, PipedOptions};
use tungstenite::protocol::WebSocketConfig;

pub use axs_core::lsp::Link;
pub use cli::{is_lsp_command, parse_lsp_args, LspConfig, SUBCOMMAND};
pub use port_file::{port_file_path, remove_port_file, PortFile};

use crate::net::{bind_address, bind_listener};
use crate::program::home_dir;
use crate::startup::{cli_exit, fail_startup};

/// What [`start_up`] prepared: the bridge is bound and its port file written.
#[derive(Debug)]
pub struct LspStartUp {
    /// The core's bridge: routes, `/status`, the links' table.
    pub bridge: Bridge,
    /// The listening socket (blocking, close-on-exec).
    pub listener: TcpListener,
    /// The address it listens on, with the port the OS chose.
    pub bound: SocketAddr,
    /// What each socket's language server runs ([`spawn_server`]).
    pub program: PipedOptions,
    /// The port file; removed when dropped (and by [`remove_port_file`]).
    pub port_file: PortFile,
}

/// The bridge's start-up: logging, flags, the program looked up, the listener, the port
/// file. Every failure ends the process (stderr line, `ERROR` on the ready pipe, status
/// 1 or clap's 2) with no port file left. Print the line with [`announce`] once the
/// runtime's own set-up is done.
pub fn start_up(args: impl IntoIterator<Item = std::ffi::OsString>) -> LspStartUp {
    axs_pty::logging::init();
    let config = parse_lsp_args(args).unwrap_or_else(|exit| cli_exit(&exit));
    let resolved = axs_pty::find_program(Path::new(&config.program))
        .unwrap_or_else(|e| fail_startup(&format!("language server: {e}")));
    let ip = bind_address(config.bind).unwrap_or_else(|e| fail_startup(&e));
    let listener = bind_listener(ip, config.port).unwrap_or_else(|e| fail_startup(&e.to_string()));
    let bound = listener
        .local_addr()
        .unwrap_or_else(|e| fail_startup(&format!("cannot read the bound address: {e}")));
    let suffix = config
        .session
        .clone()
        .unwrap_or_else(|| std::process::id().to_string());
    let path = port_file_path(Path::new(&home_dir()), &config.program, &suffix);
    let port_file =
        PortFile::write(path, bound.port()).unwrap_or_else(|e| fail_startup(&e.to_string()));
    let mut program = PipedOptions::new(resolved);
    program.args = config.args.iter().map(Into::into).collect();
    LspStartUp {
        bridge: Bridge::new(
            config.program.clone(),
            config.args.clone(),
            policy(&config, bound),
        ),
        listener,
        bound,
        program,
        port_file,
    }
}

/// The access policy the flags ask for, for a listener bound to `bound`.
pub fn policy(config: &LspConfig, bound: SocketAddr) -> Policy {
    Policy {
        allow_any_origin: config.allow_any_origin,
        token: config.token.clone(),
        ..Policy::new(bound)
    }
}

/// The line the editor waits for, exactly: `listening on <ip>:<port>`.
pub fn listening_line(bound: SocketAddr) -> String {
    format!("listening on {bound}")
}

/// Prints [`listening_line`] on stdout (the only line the bridge writes there), then
/// writes `READY` to the ready pipe when `AXS_READY_PIPE` is set. A ready pipe that
/// cannot take it ends the process with status 1, port file removed.
pub fn announce(bound: SocketAddr) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{}", listening_line(bound)).and_then(|()| out.flush()) {
        log::warn!("cannot write the listening line on stdout: {e}");
    }
    let Some(path) = ready_pipe::path_from_env() else {
        return;
    };
    if let Err(e) = ready_pipe::signal_ready(&path, DEFAULT_READY_TIMEOUT) {
        remove_port_file();
        log::error!("{e}");
        eprintln!("axs: {e}");
        std::process::exit(1);
    }
}

/// Spawns one socket's language server on pipes; a failure is the server's (500).
pub fn spawn_server(program: &PipedOptions) -> Result<PipedChild, ApiError> {
    axs_pty::spawn_piped(program).map_err(|e| ApiError::SpawnFailed(e.to_string()))
}

/// A process's resident memory for `/status`.
pub fn memory_of(pid: u32) -> Option<u64> {
    axs_pty::resident_bytes(pid)
}

/// WebSocket settings of a bridge socket: messages up to the LSP limit (a larger one is
/// refused by tungstenite with a capacity error: report it with
/// [`Link::client_too_large`]).
pub fn lsp_ws_config() -> WebSocketConfig {
    crate::ws::config()
        .max_message_size(Some(MAX_LSP_MESSAGE))
        .max_frame_size(Some(MAX_LSP_MESSAGE))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn the_line_and_the_limits() {
        let bound: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        assert_eq!(listening_line(bound), "listening on 127.0.0.1:4567");
        assert_eq!(lsp_ws_config().max_message_size, Some(MAX_LSP_MESSAGE));
    }

    #[test]
    fn policy_follows_the_flags() {
        let config = parse_lsp_args(
            ["axs", "lsp", "--token", "t", "--allow-any-origin", "x"].map(Into::into),
        )
        .unwrap();
        let p = policy(&config, "127.0.0.1:1".parse().unwrap());
        assert!(p.allow_any_origin);
        assert_eq!(p.token.as_deref(), Some("t"));
    }

    #[test]
    fn spawn_failure_is_a_500() {
        let err = spawn_server(&PipedOptions::new("/no/such/lsp")).unwrap_err();
        assert_eq!(err.status(), 500);
    }
}
