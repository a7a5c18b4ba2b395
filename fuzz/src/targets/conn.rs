//! One HTTP connection ([`axs_core::conn::Connection`]) fed arbitrary bytes, time, writes,
//! EOFs and answers in an order the input chooses.
//!
//! Asserts: memory — the request buffer never holds more than [`MAX_HEAD`] plus the
//! body the policy allows plus the last read; at most one request is handed out, its
//! body exactly the declared length and within the policy's limit, `early` no longer than
//! the read it came in; at most one `ShutdownWrite` or `Upgraded`, never both; what is
//! written is a `100 Continue` only for a head that asked for one, then one answer that
//! starts with a status line; a closed connection holds nothing and wants nothing; and
//! after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axs_core::api::{self, Policy};
use axs_core::conn::{ConnEvent, Connection, Request};
use axs_core::http::{Response, CONTINUE, MAX_HEAD};
use axs_core::time::Time;

use crate::input::Input;

/// A small body limit, so short inputs reach the 413 path.
const FUZZ_MAX_BODY: usize = 512;

/// What the driver saw so far, to check the whole life against the invariants.
#[derive(Default)]
struct Seen {
    requests: usize,
    shutdowns: usize,
    upgrades: usize,
    continue_asked: bool,
    written: Vec<u8>,
}

/// Fuzz target `conn`: a connection's whole life driven by the input.
pub fn connection(data: &[u8]) {
    let policy = fuzz_policy();
    let mut input = Input::new(data);
    let mut now = Time::ZERO;
    let mut conn = Connection::new(now);
    let mut seen = Seen::default();
    let mut last_read = 0;
    while !input.is_empty() {
        match input.byte() % 8 {
            0..=2 => {
                let len = usize::from(input.u16() % 2048) + 1;
                let bytes = input.bytes(len);
                last_read = bytes.len();
                conn.received(bytes, &policy, now);
            }
            3 => conn.eof(),
            4 => {
                let n = usize::from(input.byte()) * 3;
                seen.written
                    .extend_from_slice(&conn.outgoing()[..n.min(conn.outgoing().len())]);
                conn.wrote(n, now);
            }
            5 => {
                now = now.after(Duration::from_millis(u64::from(input.u16()) * 10));
                conn.handle_timeout(&policy, now);
                assert!(
                    conn.poll_timeout().is_none_or(|due| due > now),
                    "timer due again"
                );
            }
            6 if input.byte() == 0xff => conn.write_failed(),
            _ => conn.respond(Response::new(503, "text/plain", "early refusal"), now),
        }
        drain_events(&mut conn, &mut seen, &policy, now, last_read);
        check_state(&conn, last_read);
    }
    // Write everything left, as a patient client would read it.
    seen.written.extend_from_slice(conn.outgoing());
    let pending = conn.outgoing().len();
    conn.wrote(pending, now);
    drain_events(&mut conn, &mut seen, &policy, now, last_read);
    check_written(&seen);
}

/// Handles every event as a runtime would, checking each.
fn drain_events(
    conn: &mut Connection,
    seen: &mut Seen,
    policy: &Policy,
    now: Time,
    last_read: usize,
) {
    while let Some(event) = conn.poll_event() {
        match event {
            ConnEvent::Request(request) => {
                seen.requests += 1;
                assert_eq!(seen.requests, 1, "a second request on one connection");
                check_request(&request, policy, last_read);
                seen.continue_asked = request.head.expects_continue();
                conn.respond(answer_for(&request), now);
            }
            ConnEvent::ShutdownWrite => seen.shutdowns += 1,
            ConnEvent::Upgraded => seen.upgrades += 1,
        }
        assert!(
            seen.shutdowns + seen.upgrades <= 1,
            "two ends of one answer"
        );
    }
}

/// The request handed out is exactly what its head declared.
fn check_request(request: &Request, policy: &Policy, last_read: usize) {
    let declared = api::check_body_len(&request.head, policy);
    assert_eq!(
        declared,
        Ok(request.body.len()),
        "body of {}",
        request.body.len()
    );
    assert!(request.body.len() <= policy.max_body);
    assert!(
        request.early.len() <= last_read,
        "early bytes from more than one read"
    );
}

/// A runtime's answer: the upgrade when asked for one, else a small 200.
fn answer_for(request: &Request) -> Response {
    if request.head.is_websocket_upgrade() {
        if let Ok(upgrade) = api::websocket_accept(&request.head) {
            return upgrade;
        }
    }
    Response::new(200, "text/plain", "ok")
}

/// Memory and closed-state invariants, after every step.
fn check_state(conn: &Connection, last_read: usize) {
    let bound = MAX_HEAD + FUZZ_MAX_BODY + last_read;
    assert!(
        conn.buffered() <= bound,
        "holds {} > {bound}",
        conn.buffered()
    );
    if conn.is_closed() {
        assert_eq!(conn.buffered(), 0);
        assert!(conn.outgoing().is_empty() && !conn.wants_read());
        assert!(conn.close_reason().is_some() && conn.poll_timeout().is_none());
    }
}

/// What went out: an optional `100 Continue` (only when asked), then one status line.
fn check_written(seen: &Seen) {
    let mut out = &seen.written[..];
    if let Some(rest) = out.strip_prefix(CONTINUE) {
        assert!(
            seen.continue_asked || seen.requests == 0,
            "unasked 100 Continue"
        );
        out = rest;
    }
    let head = &out[..out.len().min(9)];
    assert!(
        b"HTTP/1.1 ".starts_with(head),
        "{:?}",
        String::from_utf8_lossy(out)
    );
    assert!(
        !out.windows(CONTINUE.len()).any(|w| w == CONTINUE),
        "a late 100 Continue"
    );
}

/// The policy of a loopback listener, with a small body limit.
fn fuzz_policy() -> Policy {
    let mut policy = Policy::new(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), 8080));
    policy.max_body = FUZZ_MAX_BODY;
    policy
}
