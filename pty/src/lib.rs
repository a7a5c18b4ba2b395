//! axs-pty: the OS layer both axs runtimes share.
//!
//! - [`spawn`] a program on a new pty as a session leader ([`SpawnOptions`], [`Spawned`]);
//! - size and blocking mode of the master: [`resize`], [`size`], [`set_nonblocking`];
//! - reaping: [`wait_blocking`], [`try_wait`], [`ExitStatus`], and [`SigchldPipe`] for reactors;
//! - ending a session: [`terminate`], or [`hangup_group`] / [`group_alive`] / [`kill_group`];
//! - the start-up handshake: [`ready_pipe`];
//! - a small stderr logger honouring `RUST_LOG`: [`logging`].
//!
//! Switches read from the environment (by the runtimes, through the helpers):
//! `AXS_PTY_PEER=1` forces the `TIOCGPTPEER` slave path ([`SlaveOpen::from_env`]);
//! `AXS_PTY_NO_CLOSE_RANGE=1` makes the child skip `close_range` and walk
//! `/proc/self/fd` instead ([`FdSweep::from_env`], meant for tests).

mod child;
pub mod host;
pub mod logging;
mod pty;
pub mod ready_pipe;
mod sigchld;
mod spawn;
mod status;
mod terminate;

pub use child::{FdSweep, NO_CLOSE_RANGE_ENV};
pub use pty::{open_pair, resize, set_nonblocking, size, PtyPair, SlaveOpen, WinSize, PEER_ENV};
pub use ready_pipe::{
    signal_error, signal_ready, ReadyPipeError, DEFAULT_READY_TIMEOUT, READY_PIPE_ENV,
};
pub use sigchld::SigchldPipe;
pub use spawn::{spawn, SpawnError, SpawnOptions, Spawned, DEFAULT_TERM};
pub use status::{signal_name, try_wait, wait_blocking, ExitStatus};
pub use terminate::{group_alive, hangup_group, kill_group, terminate};
