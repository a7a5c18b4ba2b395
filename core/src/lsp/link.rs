//! One WebSocket ↔ language-server pair: what goes where, when to stop reading, when to
//! close, and the kill schedule. See [`super::bridge`] for the driving loop.
//!
//! Invariants (property tests in `core/tests/lsp_link.rs`):
//! - every client message (up to the limit) reaches the program's stdin once, in order,
//!   encoded with `Content-Length`, unless the program ended first;
//! - every message the program writes reaches the client once, in order, as long as the
//!   client is there; after the program exited, all of them come before the close;
//! - frames waiting for the client stay under `client_backlog` + one stdout read + one
//!   message while the runtime follows [`Link::wants_stdout`]; bytes waiting for stdin
//!   stay under `stdin_backlog` + one message while it follows [`Link::wants_client`];
//! - the socket gone at `t` (program running): stdin closed once its backlog is written,
//!   SIGTERM to the group at exactly `t + STDIN_CLOSE_GRACE` unless the leader was reaped,
//!   SIGKILL at `t + STDIN_CLOSE_GRACE + SIGTERM_GRACE` likewise; once the leader is
//!   reaped and the socket is gone, one SIGKILL for whatever is left of its group;
//! - after [`Link::shutdown`] at `t`, the socket is gone by `t + CLOSE_WAIT` at the
//!   latest, even if it never takes a frame;
//! - [`Link::is_finished`] only when the socket is gone, the leader reaped and nothing is
//!   left to hand out.

use std::collections::VecDeque;
use std::time::Duration;

use super::{
    encode, exit_close, too_large_close, Decoded, Decoder, MAX_HEADER_BLOCK, MAX_LSP_MESSAGE,
    SIGTERM_GRACE, STDIN_CLOSE_GRACE,
};
use crate::frame::ExitStatus;
use crate::limits::CLOSE_WAIT;
use crate::process::{Signal, SignalKind};
use crate::time::Time;

/// Bytes of frames waiting for a client beyond which the program's stdout is not read.
pub const CLIENT_BACKLOG: usize = 1024 * 1024;

/// Bytes waiting for the program's stdin beyond which the socket is not read.
pub const STDIN_BACKLOG: usize = 1024 * 1024;

/// The longest stderr line kept whole; a longer one is logged in pieces of this size.
pub const MAX_STDERR_LINE: usize = 8 * 1024;

/// How long the program's stdout may stay open after the program exited (a child it left
/// behind may hold it): the close does not wait longer for the last messages.
pub const EXIT_DRAIN: Duration = Duration::from_secs(1);

/// The WebSocket close code for a binary message that is not UTF-8 (RFC 6455 "invalid
/// frame payload data"): a JSON-RPC body is text, and dropping it would hang its caller.
pub const CLOSE_NOT_UTF8: u16 = 1007;

/// The WebSocket close code when the bridge shuts down (RFC 6455 "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The sizes a [`Link`] works with (tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Largest message either way ([`MAX_LSP_MESSAGE`]).
    pub max_message: usize,
    /// Largest header block from the program ([`MAX_HEADER_BLOCK`]).
    pub max_header: usize,
    /// See [`CLIENT_BACKLOG`].
    pub client_backlog: usize,
    /// See [`STDIN_BACKLOG`].
    pub stdin_backlog: usize,
    /// See [`MAX_STDERR_LINE`].
    pub stderr_line: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            max_message: MAX_LSP_MESSAGE,
            max_header: MAX_HEADER_BLOCK,
            client_backlog: CLIENT_BACKLOG,
            stdin_backlog: STDIN_BACKLOG,
            stderr_line: MAX_STDERR_LINE,
        }
    }
}

/// A WebSocket message from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// A text frame: one JSON-RPC body.
    Text(String),
    /// A binary frame: one body if it is valid UTF-8.
    Binary(Vec<u8>),
}

/// Which writes the runtime can start now: nothing is being written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sinks {
    /// The socket can take a frame (no frame of ours is being written).
    pub client: bool,
    /// The program's stdin can take bytes (no chunk of ours is being written).
    pub stdin: bool,
}

impl Sinks {
    /// Both sinks free.
    pub const BOTH: Sinks = Sinks {
        client: true,
        stdin: true,
    };
}

/// What the runtime must do, drained with [`Link::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutput {
    /// Send one text frame (only handed out when [`Sinks::client`]).
    Text(String),
    /// Send a close frame with this code and reason, then read until the client's close
    /// and report [`Link::client_closed`] (only when [`Sinks::client`], after every text).
    Close {
        /// The close code.
        code: u16,
        /// The reason, at most 123 bytes.
        reason: String,
    },
    /// The client did not answer the close in time: drop the socket (the link already
    /// counts it gone; do not report `client_closed`).
    DropClient,
    /// Write all of these bytes to the program's stdin (only when [`Sinks::stdin`]).
    Stdin(Vec<u8>),
    /// Close the program's stdin (only when [`Sinks::stdin`], after every chunk).
    CloseStdin,
    /// Write this line to the bridge's stderr (the program's stderr, prefixed with its
    /// name, or a notice about its output).
    StderrLine(String),
    /// Signal the program's process group (carry it out like the terminal server's).
    Signal(Signal),
}

/// Where the client's side is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientSide {
    /// Frames flow.
    Open,
    /// A close is decided; it goes out after the frames queued before it.
    Closing { code: u16, reason: String },
    /// The close went out at some time; the client's echo is due by `deadline`.
    CloseSent { deadline: Time },
    /// The socket is gone.
    Gone,
}

/// Where the program's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinSide {
    Open,
    /// Close it once the backlog is written.
    Closing,
    Closed,
}

/// One WebSocket and the language server spawned for it (see the module docs).
#[derive(Debug, Clone)]
pub struct Link {
    pid: u32,
    name: String,
    limits: LinkLimits,
    started: Time,
    decoder: Decoder,
    to_client: VecDeque<String>,
    client_bytes: usize,
    to_stdin: VecDeque<Vec<u8>>,
    stdin_bytes: usize,
    stderr_line: Vec<u8>,
    /// The last stderr piece was logged because it reached the limit, not a line end.
    stderr_cut: bool,
    events: VecDeque<LinkOutput>,
    client: ClientSide,
    stdin: StdinSide,
    exit: Option<ExitStatus>,
    /// After the exit: when the close stops waiting for stdout's end.
    drain_deadline: Option<Time>,
    stdout_eof: bool,
    stderr_eof: bool,
    /// The next step of the kill schedule.
    escalation: Option<(Time, SignalKind)>,
    /// After the bridge's shutdown: the socket is dropped then if still there (a client
    /// that reads nothing would otherwise hold its close, and the bridge, forever).
    shutdown_deadline: Option<Time>,
}

impl Link {
    /// The link of a program `pid` named `name` (the prefix of its stderr lines),
    /// spawned at `now`, with the production limits.
    pub fn new(pid: u32, name: &str, now: Time) -> Link {
        Link::with_limits(pid, name, now, LinkLimits::default())
    }

    /// As [`Link::new`] with other limits.
    pub fn with_limits(pid: u32, name: &str, now: Time, limits: LinkLimits) -> Link {
        Link {
            pid,
            name: name.to_string(),
            limits,
            started: now,
            decoder: Decoder::with_limits(limits.max_message, limits.max_header),
            to_client: VecDeque::new(),
            client_bytes: 0,
            to_stdin: VecDeque::new(),
            stdin_bytes: 0,
            stderr_line: Vec::new(),
            stderr_cut: false,
            events: VecDeque::new(),
            client: ClientSide::Open,
            stdin: StdinSide::Open,
            exit: None,
            drain_deadline: None,
            stdout_eof: false,
            stderr_eof: false,
            escalation: None,
            shutdown_deadline: None,
        }
    }

    /// The program's pid (its process group's id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When the program was spawned.
    pub fn started(&self) -> Time {
        self.started
    }

    // ----- inputs from the client -----

    /// A message from the client: queued for stdin, or the socket closes (1009 over the
    /// limit, 1007 for a binary message that is not UTF-8).
    pub fn client_message(&mut self, message: ClientMessage) {
        if self.client != ClientSide::Open {
            return;
        }
        let body = match message {
            ClientMessage::Text(text) => text.into_bytes(),
            ClientMessage::Binary(bytes) => bytes,
        };
        if body.len() > self.limits.max_message {
            return self.client_too_large(body.len() as u64);
        }
        if std::str::from_utf8(&body).is_err() {
            let reason = String::from("a binary message that is not UTF-8");
            self.notice(&format!("closing the socket: {reason}"));
            return self.close_client(CLOSE_NOT_UTF8, reason);
        }
        if self.stdin == StdinSide::Open {
            let framed = encode(&body);
            self.stdin_bytes += framed.len();
            self.to_stdin.push_back(framed);
        }
    }

    /// The WebSocket layer refused a client message of `length` bytes as over the limit
    /// (it never buffered it): the socket closes with 1009.
    pub fn client_too_large(&mut self, length: u64) {
        let (code, reason) = too_large_close(length);
        self.notice(&format!("closing the socket: client {reason}"));
        self.close_client(code, reason);
    }

    /// The socket is gone (the client's close arrived, or reading or writing failed).
    pub fn client_closed(&mut self, now: Time) {
        if self.client != ClientSide::Gone {
            self.client_gone(now);
        }
    }

    // ----- inputs from the program -----

    /// Bytes read from the program's stdout.
    pub fn stdout(&mut self, bytes: &[u8]) {
        self.decoder.push(bytes);
        while let Some(item) = self.decoder.poll() {
            match item {
                Decoded::Message(text) => self.queue_for_client(text),
                Decoded::Notice(notice) => {
                    self.notice(&notice.to_string());
                    if let Some((code, reason)) = notice.close() {
                        self.close_client(code, reason);
                    }
                }
            }
        }
    }

    /// The program's stdout reached its end (or reading it failed).
    pub fn stdout_eof(&mut self) {
        if !self.stdout_eof {
            self.stdout_eof = true;
            if self.decoder.buffered() > 0 {
                self.notice("the program's output ended inside a message");
            }
            self.close_after_exit();
        }
    }

    /// Bytes read from the program's stderr: logged line by line (a line longer than
    /// `stderr_line` in pieces of that size).
    pub fn stderr(&mut self, bytes: &[u8]) {
        let max = self.limits.stderr_line.max(1);
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let (mut rest, ends) = match piece.strip_suffix(b"\n") {
                Some(line) => (line, true),
                None => (piece, false),
            };
            while !rest.is_empty() {
                let n = (max - self.stderr_line.len()).min(rest.len());
                self.stderr_line.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if self.stderr_line.len() >= max {
                    self.flush_stderr_line();
                    self.stderr_cut = true;
                }
            }
            if ends {
                // A line cut exactly at the limit was logged already.
                if !(self.stderr_cut && self.stderr_line.is_empty()) {
                    self.flush_stderr_line();
                }
                self.stderr_cut = false;
            }
        }
    }

    /// The program's stderr reached its end: a last partial line is logged.
    pub fn stderr_eof(&mut self) {
        self.stderr_eof = true;
        if !self.stderr_line.is_empty() {
            self.flush_stderr_line();
        }
    }

    /// Writing to the program's stdin failed (it closed it, or it ended): nothing more
    /// is written; the runtime closes its end.
    pub fn stdin_broken(&mut self) {
        self.drop_stdin_backlog();
    }

    /// The program (the group's leader) was reaped with `status` at `now`.
    pub fn exited(&mut self, status: ExitStatus, now: Time) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(status);
        self.drop_stdin_backlog();
        self.drain_deadline = Some(now.after(EXIT_DRAIN));
        self.close_after_exit();
        if self.client == ClientSide::Gone {
            self.clean_up_group();
        }
    }

    // ----- the bridge -----

    /// The bridge is shutting down at `now`: the client gets a 1001 close after what is
    /// queued for it (and is dropped if still there [`CLOSE_WAIT`] later), and the
    /// program SIGTERM now, SIGKILL [`SIGTERM_GRACE`] later.
    pub fn shutdown(&mut self, now: Time) {
        if self.client != ClientSide::Gone && self.shutdown_deadline.is_none() {
            self.shutdown_deadline = Some(now.after(CLOSE_WAIT));
        }
        self.close_client(
            CLOSE_GOING_AWAY,
            String::from("the LSP bridge is shutting down"),
        );
        if self.stdin == StdinSide::Open {
            self.stdin = StdinSide::Closing;
        }
        let kill_pending = matches!(self.escalation, Some((_, SignalKind::Kill)));
        if self.exit.is_none() && !kill_pending {
            self.signal(SignalKind::Terminate);
            self.escalation = Some((now.after(SIGTERM_GRACE), SignalKind::Kill));
        }
    }

    // ----- time -----

    /// When [`Link::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Time> {
        let close_wait = match self.client {
            ClientSide::CloseSent { deadline } => Some(deadline),
            _ => None,
        };
        let drain = self.drain_deadline.filter(|_| self.waits_for_drain());
        let shutdown = self
            .shutdown_deadline
            .filter(|_| self.client != ClientSide::Gone);
        [
            self.escalation.map(|(at, _)| at),
            close_wait,
            drain,
            shutdown,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on every deadline that passed by `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some((at, kind)) = self.escalation.filter(|(at, _)| *at <= now) {
            self.signal(kind);
            self.escalation = (kind == SignalKind::Terminate)
                .then(|| (at.after(SIGTERM_GRACE), SignalKind::Kill));
        }
        let close_due =
            matches!(self.client, ClientSide::CloseSent { deadline } if deadline <= now);
        let shutdown_due =
            self.client != ClientSide::Gone && self.shutdown_deadline.is_some_and(|d| d <= now);
        if close_due || shutdown_due {
            self.events.push_back(LinkOutput::DropClient);
            self.client_gone(now);
        }
        if self.waits_for_drain() && self.drain_deadline.is_some_and(|d| d <= now) {
            self.drain_deadline = None;
            self.queue_exit_close();
        }
    }

    // ----- outputs -----

    /// The next thing to do, given which writes can start now; `None` until an input.
    /// Logs and signals first, then the client's frames, then stdin's bytes.
    pub fn poll(&mut self, sinks: Sinks, now: Time) -> Option<LinkOutput> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if sinks.client {
            if let Some(output) = self.poll_client(now) {
                return Some(output);
            }
        }
        if sinks.stdin {
            return self.poll_stdin();
        }
        None
    }

    /// Whether to read the socket now: it is open, and stdin's backlog is under its bound
    /// (or stdin is closed and messages are dropped).
    pub fn wants_client(&self) -> bool {
        self.client != ClientSide::Gone
            && (self.stdin != StdinSide::Open || self.stdin_bytes < self.limits.stdin_backlog)
    }

    /// Whether to read the program's stdout now: frames waiting for the client are under
    /// their bound (always once nobody will read them: they are dropped).
    pub fn wants_stdout(&self) -> bool {
        !self.stdout_eof
            && (self.client != ClientSide::Open || self.client_bytes < self.limits.client_backlog)
    }

    /// Whether to read the program's stderr now (always, until its end: lines are bounded).
    pub fn wants_stderr(&self) -> bool {
        !self.stderr_eof
    }

    /// Bytes of frames waiting for the client.
    pub fn client_backlog(&self) -> usize {
        self.client_bytes
    }

    /// Bytes waiting for the program's stdin.
    pub fn stdin_backlog(&self) -> usize {
        self.stdin_bytes
    }

    /// The link is over: the socket is gone, the leader reaped, no signal pending and
    /// nothing left to hand out. The runtime drops it (and the program's pipes).
    pub fn is_finished(&self) -> bool {
        self.client == ClientSide::Gone
            && self.exit.is_some()
            && self.escalation.is_none()
            && self.events.is_empty()
            && self.stdin == StdinSide::Closed
    }

    // ----- internals -----

    fn poll_client(&mut self, now: Time) -> Option<LinkOutput> {
        if let Some(text) = self.to_client.pop_front() {
            self.client_bytes -= text.len();
            return Some(LinkOutput::Text(text));
        }
        if let ClientSide::Closing { code, reason } = &self.client {
            let output = LinkOutput::Close {
                code: *code,
                reason: reason.clone(),
            };
            self.client = ClientSide::CloseSent {
                deadline: now.after(CLOSE_WAIT),
            };
            return Some(output);
        }
        None
    }

    fn poll_stdin(&mut self) -> Option<LinkOutput> {
        if let Some(chunk) = self.to_stdin.pop_front() {
            self.stdin_bytes -= chunk.len();
            return Some(LinkOutput::Stdin(chunk));
        }
        if self.stdin == StdinSide::Closing {
            self.stdin = StdinSide::Closed;
            return Some(LinkOutput::CloseStdin);
        }
        None
    }

    fn queue_for_client(&mut self, text: String) {
        if self.client == ClientSide::Open {
            self.client_bytes += text.len();
            self.to_client.push_back(text);
        }
    }

    /// Decides the client's close (the first decision wins); the frames queued before it
    /// go out first, nothing after it is queued.
    fn close_client(&mut self, code: u16, reason: String) {
        if self.client == ClientSide::Open {
            self.client = ClientSide::Closing { code, reason };
        }
    }

    fn client_gone(&mut self, now: Time) {
        self.client = ClientSide::Gone;
        self.to_client.clear();
        self.client_bytes = 0;
        if self.stdin == StdinSide::Open {
            self.stdin = StdinSide::Closing;
        }
        if self.exit.is_some() {
            self.clean_up_group();
        } else if self.escalation.is_none() {
            self.escalation = Some((now.after(STDIN_CLOSE_GRACE), SignalKind::Terminate));
        }
    }

    /// The leader is reaped and the socket gone: one SIGKILL for what is left of the group
    /// (the runtime sends it only if a member is alive), and no more escalation.
    fn clean_up_group(&mut self) {
        self.escalation = None;
        self.signal(SignalKind::Kill);
    }

    fn signal(&mut self, kind: SignalKind) {
        self.events.push_back(LinkOutput::Signal(Signal {
            pid: self.pid,
            kind,
            leader_reaped: self.exit.is_some(),
        }));
    }

    fn drop_stdin_backlog(&mut self) {
        self.to_stdin.clear();
        self.stdin_bytes = 0;
        if self.stdin == StdinSide::Open {
            self.stdin = StdinSide::Closing;
        }
    }

    /// The program exited and its output is read (or the drain is over): close.
    fn close_after_exit(&mut self) {
        if self.exit.is_some() && self.stdout_eof {
            self.drain_deadline = None;
            self.queue_exit_close();
        }
    }

    fn waits_for_drain(&self) -> bool {
        self.exit.is_some() && !self.stdout_eof && self.client == ClientSide::Open
    }

    fn queue_exit_close(&mut self) {
        if let Some(status) = &self.exit {
            let (code, reason) = exit_close(status);
            self.close_client(code, reason);
        }
    }

    fn flush_stderr_line(&mut self) {
        let raw = std::mem::take(&mut self.stderr_line);
        let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(&raw));
        self.events
            .push_back(LinkOutput::StderrLine(format!("{}: {line}", self.name)));
    }

    fn notice(&mut self, text: &str) {
        self.events.push_back(LinkOutput::StderrLine(format!(
            "axs lsp: {}: {text}",
            self.name
        )));
    }
}
