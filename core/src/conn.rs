//! One HTTP connection's life, as a sans-IO state machine.
//!
//! A runtime owns the socket and moves bytes; [`Connection`] decides everything else:
//! when the request is whole, when to write `100 Continue`, which error answer a bad
//! head, a refused body or a late request gets, when a stalled write is given up, and
//! how long to drain what the client still sends after the answer.
//!
//! ```text
//! Reading ──request whole──▶ Deciding ──respond()──▶ Answering ──all written──▶ Lingering ──▶ Closed
//!  │  (head, then body;        (Request event;        (outgoing())   (ShutdownWrite   (EOF, idle for
//!  │   100 Continue)            nothing read)                         event; drain)    LINGER_IDLE or
//!  │                                                     │                            LINGER_LIMIT in all)
//!  ├──bad head / body refused / REQUEST_TIMEOUT──▶ Answering (the JSON error answer, 408 for late)
//!  ├──EOF or read error──▶ Closed (silently: nobody is there to read an answer)
//!  │                                                     └──a 101 all written──▶ Upgraded (Upgraded event:
//!  │                                                                              the socket is the WebSocket's)
//!  any phase with bytes to write ──no progress for WRITE_TIMEOUT, or write_failed()──▶ Closed
//! ```
//!
//! # Invariants
//!
//! - One request per connection: at most one [`ConnEvent::Request`] and one answer; a
//!   second [`Connection::respond`] is ignored.
//! - Every phase but Deciding and Upgraded has a deadline, so a client that does nothing
//!   cannot hold a connection: it ends closed, or with its request handed out.
//! - After [`Connection::handle_timeout`]`(now)`, [`Connection::poll_timeout`] is `None`
//!   or later than `now`: a runtime never spins on a due timer.
//! - Memory: the request buffer holds at most the head ([`crate::http::MAX_HEAD`]), the
//!   body the policy allows and one read beyond; the drain keeps nothing.
//! - The drain after an answer is bounded in time only ([`LINGER_IDLE`], [`LINGER_LIMIT`]):
//!   closing with unread bytes resets the connection, which can destroy the answer (a 413
//!   for a large body, typically) before the client read it.
//!
//! # The runtime's loop
//!
//! ```text
//! conn = Connection::new(now)
//! loop {
//!     while let Some(event) = conn.poll_event() {
//!         Request(r)    => conn.respond(answer for r (Server::request, spawn, job...), now)
//!         ShutdownWrite => socket.shutdown(Write)
//!         Upgraded      => hand the socket (and r.early) to the WebSocket; return
//!     }
//!     if conn.is_closed() { drop the socket; return }
//!     wait until: readable (if wants_read()), writable (if outgoing() is not empty),
//!                 or poll_timeout()
//!     readable: read up to CONN_READ_CHUNK: n > 0 → received(bytes, policy, now), 0 or error → eof()
//!     writable: write outgoing(): n → wrote(n), error → write_failed()
//!     timer:    handle_timeout(policy, now)
//! }
//! ```

use std::collections::VecDeque;

use crate::api::{self, ApiError, Policy};
use crate::http::{self, HeadParse, RequestHead, Response};
use crate::limits::{LINGER_IDLE, LINGER_LIMIT, REQUEST_TIMEOUT, WRITE_TIMEOUT};
use crate::time::Time;

/// A whole request, handed to the runtime to decide on (usually with `Server::request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The parsed head.
    pub head: RequestHead,
    /// The body, exactly as long as `api::check_body_len` allowed.
    pub body: Vec<u8>,
    /// Bytes the client sent after the body (WebSocket frames sent right after an
    /// upgrade request): the WebSocket must read them before the socket.
    pub early: Vec<u8>,
}

/// What the runtime must act on; drained with [`Connection::poll_event`] after every input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// The request is whole: decide, then call [`Connection::respond`].
    Request(Request),
    /// The answer is out: half-close the socket (shut down its write side); the
    /// connection now drains what the client still sends.
    ShutdownWrite,
    /// The `101 Switching Protocols` answer is out: the socket now belongs to the
    /// WebSocket, with the request's `early` bytes; this connection is done with it.
    Upgraded,
}

/// Why a connection ended: for logs and tests, the runtime does the same for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed (or the read failed) before its request was whole.
    ClientLeft,
    /// The client took nothing of what was to be written for [`WRITE_TIMEOUT`].
    WriteStalled,
    /// Writing failed (the runtime called [`Connection::write_failed`]).
    WriteFailed,
    /// The answer was out and the client closed its side: the normal end.
    Drained,
    /// The answer was out and the client sent nothing more for [`LINGER_IDLE`].
    LingerIdle,
    /// The answer was out and the client was still sending after [`LINGER_LIMIT`].
    LingerLimit,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Reading the head, then the body, before the request deadline.
    Reading,
    /// The request was handed out; waiting for the runtime's answer.
    Deciding,
    /// Writing the answer; `upgrade` when it is a 101.
    Answering { upgrade: bool },
    /// The answer is out: reading and dropping what the client still sends.
    Lingering { since: Time, last_read: Time },
    /// The 101 is out; the socket is the WebSocket's.
    Upgraded,
    /// Done; the runtime drops the socket.
    Closed(CloseReason),
}

/// A complete head and where the request it starts ends in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeadRead {
    /// The parsed head.
    head: RequestHead,
    /// Where the body starts.
    head_len: usize,
    /// Where the body ends (and early bytes start).
    end: usize,
}

/// One HTTP connection: bytes and time in, the request, bytes to write and the moment to
/// close out. See the module docs for its phases.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Where the connection is in its life.
    phase: Phase,
    /// Request bytes received so far (while reading).
    buf: Vec<u8>,
    /// The head, once complete (while reading the body).
    head: Option<HeadRead>,
    /// When the whole request must be in.
    request_deadline: Time,
    /// Bytes to write; `out[sent..]` is still pending.
    out: Vec<u8>,
    /// How much of `out` was written.
    sent: usize,
    /// When a pending write is given up: set iff bytes are pending, moved on progress.
    write_deadline: Option<Time>,
    /// Events not drained yet.
    events: VecDeque<ConnEvent>,
}

impl Connection {
    /// A connection accepted at `now`: its whole request is due by `now + REQUEST_TIMEOUT`.
    pub fn new(now: Time) -> Connection {
        Connection {
            phase: Phase::Reading,
            buf: Vec::with_capacity(2048),
            head: None,
            request_deadline: now.after(REQUEST_TIMEOUT),
            out: Vec::new(),
            sent: 0,
            write_deadline: None,
            events: VecDeque::new(),
        }
    }

    /// Bytes read from the socket. While reading the request they are parsed (errors and
    /// refusals queue their answer); while lingering they are dropped; otherwise (nothing
    /// asked for them: see [`Connection::wants_read`]) they are ignored. An empty slice
    /// means nothing: EOF is [`Connection::eof`].
    pub fn received(&mut self, bytes: &[u8], policy: &Policy, now: Time) {
        if bytes.is_empty() {
            return;
        }
        match &mut self.phase {
            Phase::Reading => {
                self.buf.extend_from_slice(bytes);
                self.read_request(policy, now);
            }
            Phase::Lingering { last_read, .. } => *last_read = (*last_read).max(now),
            _ => {}
        }
    }

    /// The client closed its side, or reading failed. Before the request is whole the
    /// connection closes without an answer; while draining it ends the drain. Otherwise
    /// it changes nothing: a client may half-close after its request and still read.
    pub fn eof(&mut self) {
        match self.phase {
            Phase::Reading => self.close(CloseReason::ClientLeft),
            Phase::Lingering { .. } => self.close(CloseReason::Drained),
            _ => {}
        }
    }

    /// Queues the answer to the request (a 101 included: the connection writes it and
    /// reports [`ConnEvent::Upgraded`] once it is out). Also valid while reading, to
    /// refuse a request before it is whole. Ignored once an answer was queued.
    pub fn respond(&mut self, answer: Response, now: Time) {
        if matches!(self.phase, Phase::Reading | Phase::Deciding) {
            self.answer(&answer, now);
        }
    }

    /// The bytes to write now (`100 Continue`, the answer); empty when there are none.
    pub fn outgoing(&self) -> &[u8] {
        self.out.get(self.sent..).unwrap_or_default()
    }

    /// `n` bytes of [`Connection::outgoing`] were written (more than pending counts as
    /// all). Progress moves the write deadline; the answer's last byte ends the answer.
    pub fn wrote(&mut self, n: usize, now: Time) {
        let n = n.min(self.outgoing().len());
        if n == 0 {
            return;
        }
        self.sent += n;
        if self.outgoing().is_empty() {
            self.out.clear();
            self.sent = 0;
            self.write_deadline = None;
            self.written(now);
        } else {
            self.write_deadline = Some(now.after(WRITE_TIMEOUT));
        }
    }

    /// Writing failed (reset, broken pipe): close. Ignored after an upgrade, when the
    /// socket is no longer this connection's.
    pub fn write_failed(&mut self) {
        if !matches!(self.phase, Phase::Upgraded | Phase::Closed(_)) {
            self.close(CloseReason::WriteFailed);
        }
    }

    /// The next event to act on, oldest first; `None` when all were drained.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    /// True when the runtime should read the socket: while reading the request, and
    /// while draining after the answer.
    pub fn wants_read(&self) -> bool {
        matches!(self.phase, Phase::Reading | Phase::Lingering { .. })
    }

    /// True once the connection is over: drop (close) the socket. Never true after an
    /// upgrade, whose socket the WebSocket owns.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed(_))
    }

    /// How many request bytes the connection holds (memory accounting; the fuzz target
    /// checks the bound of the module docs with it).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Why the connection closed; `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.phase {
            Phase::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Acts on the deadlines due at `now`: a stalled write closes, a request not whole
    /// gets the 408 answer (without CORS headers: no head is known), a drain ends.
    pub fn handle_timeout(&mut self, policy: &Policy, now: Time) {
        if self.write_deadline.is_some_and(|due| now >= due) {
            return self.close(CloseReason::WriteStalled);
        }
        match self.phase {
            Phase::Reading if now >= self.request_deadline => {
                let late = api::answer(None, policy, Err(ApiError::RequestTimeout));
                self.answer(&late, now);
            }
            Phase::Lingering { since, .. } if now >= since.after(LINGER_LIMIT) => {
                self.close(CloseReason::LingerLimit);
            }
            Phase::Lingering { last_read, .. } if now >= last_read.after(LINGER_IDLE) => {
                self.close(CloseReason::LingerIdle);
            }
            _ => {}
        }
    }

    /// When to call [`Connection::handle_timeout`] next; `None` while no deadline runs
    /// (deciding on the request, upgraded, closed).
    pub fn poll_timeout(&self) -> Option<Time> {
        let phase_deadline = match self.phase {
            Phase::Reading => Some(self.request_deadline),
            Phase::Lingering { since, last_read } => {
                Some(since.after(LINGER_LIMIT).min(last_read.after(LINGER_IDLE)))
            }
            _ => None,
        };
        [phase_deadline, self.write_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Parses what was received: the head first, then waits for the body.
    fn read_request(&mut self, policy: &Policy, now: Time) {
        if self.head.is_none() {
            match self.parse_head(policy) {
                Ok(None) => return,
                Ok(Some(read)) => {
                    // A client waiting for permission to send its body gets it; one
                    // that sent the body along does not need it.
                    if read.head.expects_continue() && self.buf.len() < read.end {
                        self.queue(http::CONTINUE, now);
                    }
                    self.head = Some(read);
                }
                Err(refusal) => return self.answer(&refusal, now),
            }
        }
        self.hand_out_when_whole();
    }

    /// The complete head and its body's extent, `None` while partial, or the answer
    /// that refuses the request (CORS headers included once the head is known).
    fn parse_head(&self, policy: &Policy) -> Result<Option<HeadRead>, Response> {
        let (head, head_len) = match http::parse_head(&self.buf) {
            Ok(HeadParse::Partial) => return Ok(None),
            Ok(HeadParse::Complete { head, len }) => (head, len),
            Err(e) => return Err(api::answer(None, policy, Err(e))),
        };
        let body_len = api::check_body_len(&head, policy)
            .map_err(|e| api::answer(Some(&head), policy, Err(e)))?;
        let end = head_len.saturating_add(body_len);
        Ok(Some(HeadRead {
            head,
            head_len,
            end,
        }))
    }

    /// Hands the request out once its body is in; what came after it is `early`.
    fn hand_out_when_whole(&mut self) {
        let whole = self.head.as_ref().is_some_and(|r| self.buf.len() >= r.end);
        let Some(read) = self.head.take_if(|_| whole) else {
            return;
        };
        let mut body = std::mem::take(&mut self.buf);
        let early = body.split_off(read.end);
        let body = body.split_off(read.head_len);
        self.drop_unstarted_continue();
        self.phase = Phase::Deciding;
        let request = Request {
            head: read.head,
            body,
            early,
        };
        self.events.push_back(ConnEvent::Request(request));
    }

    /// A `100 Continue` not begun is pointless once the body is in, and wrong before a
    /// refusal (it invites the body): drop it.
    fn drop_unstarted_continue(&mut self) {
        if self.sent == 0 && self.out == http::CONTINUE {
            self.out.clear();
            self.write_deadline = None;
        }
    }

    /// Stops reading the request and queues `answer` (after a `100 Continue` begun).
    fn answer(&mut self, answer: &Response, now: Time) {
        self.drop_unstarted_continue();
        self.buf = Vec::new();
        self.head = None;
        self.phase = Phase::Answering {
            upgrade: answer.is_upgrade(),
        };
        self.queue(&answer.to_bytes(), now);
    }

    /// Appends bytes to write; the write deadline starts when there were none pending.
    fn queue(&mut self, bytes: &[u8], now: Time) {
        if self.outgoing().is_empty() {
            self.write_deadline = Some(now.after(WRITE_TIMEOUT));
        }
        self.out.extend_from_slice(bytes);
    }

    /// Everything queued is written: the end of the answer starts the drain (or hands
    /// the socket to the WebSocket); a `100 Continue` needs nothing more.
    fn written(&mut self, now: Time) {
        match self.phase {
            Phase::Answering { upgrade: true } => {
                self.phase = Phase::Upgraded;
                self.events.push_back(ConnEvent::Upgraded);
            }
            Phase::Answering { upgrade: false } => {
                self.phase = Phase::Lingering {
                    since: now,
                    last_read: now,
                };
                self.events.push_back(ConnEvent::ShutdownWrite);
            }
            _ => {}
        }
    }

    /// Ends the connection, dropping whatever it still held.
    fn close(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed(reason);
        self.buf = Vec::new();
        self.head = None;
        self.out = Vec::new();
        self.sent = 0;
        self.write_deadline = None;
    }
}

#[cfg(test)]
mod tests;
