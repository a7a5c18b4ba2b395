//! axs-core: the sans-IO heart of the axs terminal server.
//!
//! Everything axs *decides* lives here; the runtimes (`axs` on smol, `axs-threads` on OS
//! threads) only move bytes between sockets, ptys and this crate. The core never touches a
//! socket, a file, a clock, a thread or a process, and has no `unsafe`: inputs carry the
//! time ([`time::Time`]) when it matters, effects come out as values, and timers are a
//! "next deadline" query. Same inputs, same outputs, every time — so every race is a test
//! case that replays identically.
//!
//! # Layers
//!
//! ```text
//!   axs (runtime-smol)    axs-threads (runtime-threads)     move bytes, carry out outputs
//!            \                  /
//!             v                v
//!                  axs-host                                 flags, start-up, spawning, ws settings
//!                /          \
//!               v            v
//!          axs-core        axs-pty                          decides (this crate) | asks the OS
//! ```
//!
//! Arrows point down only: this crate imports neither the host nor the OS layer, and a
//! runtime defines no timeout or limit of its own ([`limits`] holds them all).
//!
//! # The driving loop
//!
//! ```text
//!   runtime                                   core (server::Server)
//!   ───────                                   ─────────────────────
//!   accepted a socket ─────────────────────▶ connection_opened() ─▶ Admitted(cid) / Refused(503 answer)
//!   request whole / upgraded / closed ─────▶ connection_request_complete / connection_upgraded / connection_closed(cid)
//!   socket bytes ─▶ conn::Connection (received / eof / wrote / handle_timeout, per connection)
//!       its Request event ────────────────▶ request(head, body, now) ─▶ Reply: Respond / Spawn / Upgrade / Execute
//!   session spawned / failed ──────────────▶ spawned(reservation, pid, now) / spawn_failed(reservation, why) ─▶ answer
//!   job spawned / failed ──────────────────▶ job_spawned(job, pid, now) / job_spawn_failed(job, failure)
//!   pty bytes, pty EOF ────────────────────▶ pty_output / pty_eof(id, ..now), job_output / job_eof(job, ..now)
//!   before a pty read / socket write ──────▶ output_slice(id, now) / job_output_slice(now) ─▶ bytes before a yield, may a read wait
//!   SIGCHLD: try_wait each of unreaped() ──▶ child_exited(pid, status, now)
//!   WebSocket message / closed ────────────▶ input(id, generation, bytes, now) / detach(id, generation, now)
//!   socket can take more ──────────────────▶ poll_transmit(id, generation, now) ─▶ Frame
//!   SIGTERM / SIGINT ──────────────────────▶ shutdown(now)
//!   deadline passed ───────────────────────▶ handle_timeout(now)
//!   after every call: poll_output() until None ─▶
//!       Session(id, WritePty | ResizePty | PausePty | ResumePty | Wake | ClosePty | Remove)
//!       Signal { pid, Hangup | Kill, leader_reaped }   (leader reaped: signal only a live group)
//!       Job(job, ClosePty | Answer(response))
//!       Evict(cid)                                     (shut that socket down)
//!       Exit                                           (exit 0; every pending kill came before it)
//!   poll_timeout() ─▶ when to call handle_timeout next
//! ```
//!
//! # A session's life ([`session`])
//!
//! ```text
//! (Spawning: a registry reservation) --spawned--> Running --child exited--> Draining
//!     --pty EOF or grace timer--> Exited --retention over, no client left--> gone
//!     \--spawn failed--> reported to the creator; nothing registered
//! ```
//!
//! # Invariants (checked after every step by the property tests in `core/tests/`)
//!
//! 1. Every client receives exactly `stream[start..end]`, in order, no duplicates, no gaps
//!    — except the skip of a lagging client and, in a replay only, the queries and side
//!    effects left out and the state prefix put in front.
//! 2. A replay starts no earlier than the ring holds and at a safe cut: never inside a
//!    UTF-8 character or an escape sequence, at a line start when one is near.
//! 3. Takeover: the owner is always the highest attached generation that is not a viewer;
//!    an older client's events never affect a newer one, and stale generations are ignored.
//! 4. Each client gets the exit message exactly once, after all of its output, with the
//!    real exit code or signal, and then a close.
//! 5. Memory per session is bounded by the ring (scrollback + one pty read) plus one frame
//!    per client. The pty is paused only while a *reading* client is a full scrollback
//!    behind and resumed once it caught up; a client that took nothing for the stall
//!    timeout stops holding the program back and, with viewers, is the only kind ever
//!    skipped forward.
//! 6. No input sequence panics; the same inputs give the same outputs.
//! 7. Viewers: nothing a viewer does reaches the program's input, size or lifetime, pauses
//!    it, or changes what any other client receives (`core/tests/viewers.rs`).
//!
//! # Modules
//!
//! - [`ring`]: the offset-addressed scrollback; [`client`]: cursors and generations;
//!   [`session`]: one session's state machine; [`server`]: the registry, limits, the
//!   request decisions, shutdown, and the one output queue; [`frame`]: what a client is
//!   sent (output, exit, control messages).
//! - [`job`]: one `execute-command`'s state machine; [`process`]: every process group we
//!   spawned, hangup then kill; [`admission`]: the connection cap and who makes room.
//! - [`term`]: the escape-sequence scanner behind safe cuts and replay hygiene.
//! - [`http`], [`api`]: request heads, routing, JSON bodies, Origin/token/CORS policy and
//!   every error answer; [`limits`]: the timeouts and sizes the server enforces or tells
//!   the runtimes to follow; [`contention`]: how much a pty reader reads in a row while
//!   another session is in use.
//! - [`conn`]: one HTTP connection's life (request deadline, `100 Continue`, the answer,
//!   write stall, half-close and drain) as a state machine a runtime feeds bytes.
//! - [`lsp`]: the `axs lsp` bridge's LSP base-protocol codec, limits, close reasons and
//!   kill schedule.
//!
//! The command line, the login shell, binding and the WebSocket settings are `axs-host`'s
//! (it builds a [`server::Server`] from the flags); the OS calls are `axs-pty`'s. Neither
//! is a dependency of this crate.

pub mod admission;
pub mod api;
pub mod client;
pub mod conn;
pub mod contention;
mod deadline;
pub mod frame;
pub mod http;
pub mod job;
pub mod limits;
pub mod lsp;
pub mod process;
pub mod ring;
pub mod server;
pub mod session;
pub mod term;
pub mod time;
