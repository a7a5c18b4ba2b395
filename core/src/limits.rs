//! The time and size limits of the server.
//!
//! They are decisions (how long a slow client is waited for, how much memory one may
//! hold), so they live here once. The core enforces the process, job, shutdown and
//! admission limits itself; the others each runtime carries out as told. Runtime-specific
//! tuning (thread stacks, read chunks, how often a task yields) stays in the runtime.

use std::time::Duration;

use crate::api::EXECUTE_COMMAND_TIMEOUT;

/// How long a client may take to send its whole request (head and body): long enough
/// for a slow link, short enough that idle connections do not pile up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// How long an HTTP answer may wait for its client to read it: an answer nobody reads
/// is dropped after this, so it cannot hold memory and a connection forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before accepting again after `accept` failed (out of descriptors or
/// memory, usually): long enough not to spin, short enough to go unnoticed.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// After an answer, how long the drain waits for the client's next byte before closing:
/// closing with unread bytes makes the kernel reset the connection, which can destroy the
/// answer, but a client that went quiet has nothing left in flight (nginx's
/// `lingering_timeout` idea; its 5 s is for the open internet, 2 s covers a slow link).
pub const LINGER_IDLE: Duration = Duration::from_secs(2);

/// After an answer, the longest the drain of a still-sending client lasts: long enough
/// for the rest of a refused 5–50 MB body to arrive and be dropped (so the 413 survives),
/// bounded so a client cannot hold a connection forever (nginx's `lingering_time`).
/// Bounded in time only, not bytes: stopping at a byte count would reset exactly the
/// connections whose answer the drain is there to protect.
pub const LINGER_LIMIT: Duration = Duration::from_secs(30);

// A limit at or below the idle wait would make the idle wait meaningless.
const _: () = assert!(LINGER_LIMIT.as_millis() > LINGER_IDLE.as_millis());

/// Bytes a runtime reads from an HTTP connection at once: a whole ordinary request head
/// in one read, and little memory per connection while a body streams in.
pub const CONN_READ_CHUNK: usize = 16 * 1024;

/// How long a terminated session's processes get after SIGHUP before SIGKILL: enough to
/// save state and exit, not enough for a job ignoring SIGHUP to linger.
pub const TERMINATE_GRACE: Duration = Duration::from_secs(2);

/// How long shutdown waits for sessions to end and clients to get their exit and close,
/// before killing what is left: above [`TERMINATE_GRACE`], below a service manager's patience.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(4);

// A shutdown shorter than the grace would kill every session without one.
const _: () = assert!(SHUTDOWN_LIMIT.as_millis() > TERMINATE_GRACE.as_millis());

/// Most output kept from one `execute-command`; the rest is read and dropped so the
/// command never blocks on a full pty, and the answer stays a sane size.
pub const COMMAND_MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// How long a command's output may still arrive after its shell exited: a background
/// job holding the pty open must not hold the answer.
pub const COMMAND_DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Most `execute-command` jobs in flight at once (spawning or running, not yet answered);
/// beyond, a job is refused with 503. Each holds a pty and a process group, so a burst of
/// commands cannot exhaust the ptys the sessions need.
pub const MAX_JOBS: usize = 16;

/// Most HTTP connections served at once (a WebSocket stops counting once upgraded); at the
/// cap the oldest connection still reading its request makes room (see
/// [`crate::admission`]). High, so that busy clients are never refused in practice.
pub const MAX_CONNECTIONS: usize = 512;

/// Input queued for a program beyond which its clients' sockets are not read until the
/// program takes some: TCP then holds the senders back and memory stays bounded.
pub const INPUT_BACKLOG: usize = 1024 * 1024;

/// Unsent bytes queued in the kernel below which a WebSocket counts as writable
/// (`TCP_NOTSENT_LOWAT`): a slow reader's progress is seen early, little output waits
/// in the kernel, and a fast reader still gets large writes.
pub const SEND_LOW_WATER: u32 = 128 * 1024;

/// Bytes a WebSocket reads from its socket at once: a keystroke or a paste's piece.
pub const WS_READ_BUFFER: usize = 16 * 1024;

/// Bytes of frames a WebSocket batches before it writes them out: bulk output leaves in
/// few large writes without holding much memory per client.
pub const WS_WRITE_BUFFER: usize = 64 * 1024;

/// How long a client gets to answer our close frame before its socket is dropped.
pub const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// Pongs kept waiting for one client: a ping flood gets answers to its latest pings only,
/// so it cannot grow a client's memory.
pub const MAX_PONGS: usize = 8;

/// Largest first frame (the start of a replay, a prompt) a runtime may send right after
/// the `101`, before the client's writer runs: it fits a fresh socket's send buffer, so
/// sending it never blocks, and on a busy machine the first byte does not wait for a new
/// thread or task to be scheduled.
pub const FIRST_FRAME_MAX: usize = 8 * 1024;

/// Bytes a runtime reads from one pty (or hands one job's output, or sends one client) in
/// a row before it lets other sessions and clients run, while no other session is in use (else
/// [`CONTENDED_OUTPUT_BUDGET`]; see [`crate::contention`]): large, so a lone bulk stream is
/// read and sent in large slices.
pub const YIELD_AFTER: usize = 256 * 1024;

/// The output budget of a session's pty reader and clients' writers while another session
/// is in use (see [`crate::contention`]): a flood yields after a read or two (the kernel
/// hands a pty's output out in reads of at most 4095 bytes), so each hop of the other
/// session's keystroke waits behind that, not [`YIELD_AFTER`]'s worth.
pub const CONTENDED_OUTPUT_BUDGET: usize = 4 * 1024;

/// How recently another session must have had input or output for the output budget to
/// be [`CONTENDED_OUTPUT_BUDGET`]: longer than a typist's pause between keys, short enough
/// that a lone stream soon gets full slices again.
pub const CONTENDED_WINDOW: Duration = Duration::from_secs(1);

// A contended budget at or above the full one would make contention meaningless.
const _: () = assert!(CONTENDED_OUTPUT_BUDGET < YIELD_AFTER);

/// The failure reason of an `execute-command` that ran into
/// [`EXECUTE_COMMAND_TIMEOUT`] and was killed.
pub fn command_timed_out() -> String {
    format!(
        "the command did not finish within {} s",
        EXECUTE_COMMAND_TIMEOUT.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_message_names_the_limit() {
        assert_eq!(
            command_timed_out(),
            "the command did not finish within 30 s"
        );
    }
}
