//! axs-pty: the OS layer both axs runtimes share.
//!
//! - [`spawn`] a program on a new pty as a session leader ([`SpawnOptions`], [`Spawned`]),
//!   or [`spawn_piped`] on three pipes ([`PipedOptions`], [`PipedChild`]);
//! - size and blocking mode of the master: [`resize`], [`size`], [`set_nonblocking`];
//! - reaping: [`wait_blocking`], [`try_wait`], [`ExitStatus`], and [`SigchldPipe`] for reactors;
//! - ending a session: [`terminate`], or [`hangup_group`] / [`sigterm_group`] /
//!   [`group_alive`] / [`kill_group`];
//! - the start-up handshake: [`ready_pipe`];
//! - small OS facts: the user database entry ([`current_user`]), the IPv4 interfaces
//!   that are up ([`up_ipv4_interfaces`]), `TCP_NOTSENT_LOWAT` ([`set_send_low_water`]),
//!   program lookup in `PATH` ([`find_program`]), a process's resident memory
//!   ([`resident_bytes`]), giving the allocator's free memory back ([`release_free_memory`])
//!   and capping its arenas ([`limit_allocator_arenas`]);
//! - a small stderr logger honouring `RUST_LOG`: [`logging`].
//!
//! This crate depends on nothing else of axs and decides nothing: it is how to ask the
//! OS, never what to ask for (that is `axs-host`'s and the core's).
//!
//! Switches read from the environment (by the runtimes, through the helpers):
//! `AXS_PTY_PEER=1` forces the `TIOCGPTPEER` slave path ([`SlaveOpen::from_env`]);
//! `AXS_PTY_NO_CLOSE_RANGE=1` makes the child skip `close_range` and walk
//! `/proc/self/fd` instead ([`FdSweep::from_env`], meant for tests);
//! `AXS_PTY_FORK=1` spawns with `fork` instead of a vfork-style `clone`
//! ([`SpawnMethod::from_env`]: for comparisons, and an escape hatch).

mod child;
mod launch;
pub mod logging;
mod memory;
mod net;
mod pipes;
mod program;
mod pty;
pub mod ready_pipe;
mod sigchld;
mod spawn;
mod status;
mod terminate;
mod user;

pub use child::{FdSweep, NO_CLOSE_RANGE_ENV};
pub use launch::{SpawnMethod, FORK_ENV};
pub use memory::{limit_allocator_arenas, release_free_memory, resident_bytes};
pub use net::{set_send_low_water, up_ipv4_interfaces, Ipv4Interface};
pub use pipes::{spawn_piped, PipedChild, PipedOptions, PRIVATE_ENV_PREFIX};
pub use program::{find_program, is_executable};
pub use pty::{
    open_pair, resize, set_nonblocking, size, unread_bytes, PtyPair, SlaveOpen, WinSize, PEER_ENV,
};
pub use ready_pipe::{
    signal_error, signal_ready, ReadyPipeError, DEFAULT_READY_TIMEOUT, READY_PIPE_ENV,
};
pub use sigchld::SigchldPipe;
pub use spawn::{
    error_text, spawn, SpawnError, SpawnOptions, Spawned, DEFAULT_TERM, SERVER_ONLY_ENV,
};
pub use status::{signal_name, try_wait, wait_blocking, ExitStatus};
pub use terminate::{group_alive, hangup_group, kill_group, sigterm_group, terminate};
pub use user::{current_user, UserEntry};
