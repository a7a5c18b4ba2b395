//! axs-host: what both axs binaries share around the core.
//!
//! ```text
//!   runtime-smol (axs)   runtime-threads (axs-threads)
//!            \                 /
//!             v               v
//!               axs-host            command line, start-up, session program, binding,
//!              /        \           spawning, WebSocket settings, exit statuses
//!             v          v
//!        axs-core      axs-pty      decisions (pure)  |  OS calls (no policy)
//! ```
//!
//! Arrows point down only: the core knows nothing of the host or the OS, and `axs-pty`
//! knows nothing of axs. The few choices made here are about the machine, not the
//! protocol: which login shell, which interface `-i` means, which spawn failure is the
//! client's mistake. Nothing here sends network traffic.
//!
//! - [`cli`]: the flags ([`cli::parse_args`]) and the core they describe ([`cli::server`]);
//! - [`startup`]: [`start_up`], [`ready`], [`fail_startup`], [`announce_failure`], [`cli_exit`];
//! - [`clock`]: the core's [`Clock`];
//! - [`program`]: the session program, the login shell, the home directory;
//! - [`net`]: the address `-i` means and the listener;
//! - [`spawn`]: sessions and `execute-command` jobs;
//! - [`signal`]: the core's hang-ups and kills, carried out;
//! - [`ws`]: WebSocket settings and close frames;
//! - [`lsp`]: `axs lsp`, the language-server bridge: its flags, start-up and port file;
//! - [`status`]: exit statuses as the core has them.

pub mod cli;
pub mod clock;
pub mod lsp;
pub mod net;
pub mod program;
pub mod signal;
pub mod spawn;
pub mod startup;
pub mod status;
pub mod ws;

/// `TCP_NOTSENT_LOWAT`, re-exported so a runtime's socket tuning needs only this crate.
pub use axs_pty::set_send_low_water;
pub use clock::Clock;
pub use net::{accept_failure, bind_address, bind_listener, lan_address};
pub use program::{home_dir, login_shell, session_program, FALLBACK_SHELL};
pub use spawn::{command_failure, spawn_command, spawn_session, spawn_shell_command};
pub use startup::{announce_failure, cli_exit, fail_startup, ready, start_up, StartUp};
pub use status::exit_status;
