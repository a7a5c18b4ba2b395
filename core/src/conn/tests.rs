//! The connection's paths, each as a named case with time injected, and properties over
//! arbitrary splits, bytes and operation sequences.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const MS: u64 = 1;
const SEC: u64 = 1000 * MS;

fn policy() -> Policy {
    Policy::new(std::net::SocketAddr::from(([127, 0, 0, 1], 8767)))
}

fn at(ms: u64) -> Time {
    Time::from_millis(ms)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// A POST with a JSON body and any extra header lines.
fn post(body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn head_of(raw: &[u8]) -> RequestHead {
    match http::parse_head(raw).unwrap() {
        HeadParse::Complete { head, .. } => head,
        HeadParse::Partial => panic!("not a whole head"),
    }
}

/// All events queued now.
fn events(conn: &mut Connection) -> Vec<ConnEvent> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

/// The one request handed out now.
fn request(conn: &mut Connection) -> Request {
    match events(conn).as_slice() {
        [ConnEvent::Request(r)] => r.clone(),
        other => panic!("expected one request, got {other:?}"),
    }
}

/// Writes everything pending at `now`.
fn write_all(conn: &mut Connection, now: Time) -> Vec<u8> {
    let bytes = conn.outgoing().to_vec();
    conn.wrote(bytes.len(), now);
    bytes
}

/// A connection that answered `200` at `now` and is draining.
fn lingering(now: Time) -> Connection {
    let mut conn = Connection::new(now);
    conn.received(&post("{}", ""), &policy(), now);
    request(&mut conn);
    conn.respond(Response::empty(200), now);
    write_all(&mut conn, now);
    assert_eq!(events(&mut conn), [ConnEvent::ShutdownWrite]);
    conn
}

#[test]
fn a_whole_request_in_one_read_is_handed_out() {
    let mut conn = Connection::new(at(0));
    assert!(conn.wants_read());
    conn.received(&post("{\"cols\":80}", ""), &policy(), at(5));
    let r = request(&mut conn);
    assert_eq!(r.head.path, "/terminals");
    assert_eq!(r.body, b"{\"cols\":80}");
    assert!(r.early.is_empty());
    assert!(
        !conn.wants_read(),
        "nothing is read while the runtime decides"
    );
    assert_eq!(conn.poll_timeout(), None, "deciding has no deadline");
    assert!(conn.outgoing().is_empty());
}

#[test]
fn head_in_many_small_pieces() {
    let raw = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nUser-Agent: t\r\n\r\n";
    let mut conn = Connection::new(at(0));
    for (i, byte) in raw.iter().enumerate() {
        assert!(events(&mut conn).is_empty(), "no request before byte {i}");
        conn.received(&[*byte], &policy(), at(i as u64));
    }
    let r = request(&mut conn);
    assert_eq!(r.head, head_of(raw));
    assert!(r.body.is_empty());
}

#[test]
fn body_split_across_reads() {
    let raw = post("{\"cols\":80,\"rows\":24}", "");
    let (first, rest) = raw.split_at(raw.len() - 10);
    let (middle, last) = rest.split_at(4);
    let mut conn = Connection::new(at(0));
    conn.received(first, &policy(), at(1));
    conn.received(middle, &policy(), at(2));
    assert!(events(&mut conn).is_empty());
    assert!(conn.wants_read());
    conn.received(last, &policy(), at(3));
    assert_eq!(request(&mut conn).body, b"{\"cols\":80,\"rows\":24}");
}

#[test]
fn continue_is_written_before_the_body() {
    let raw = post("{}", "Expect: 100-continue\r\n");
    let (head, body) = raw.split_at(raw.len() - 2);
    let mut conn = Connection::new(at(0));
    conn.received(head, &policy(), at(1));
    assert_eq!(conn.outgoing(), http::CONTINUE);
    assert!(
        conn.wants_read(),
        "the body is still read while 100 Continue goes out"
    );
    assert_eq!(write_all(&mut conn, at(2)), http::CONTINUE);
    assert!(
        events(&mut conn).is_empty(),
        "100 Continue is not the answer"
    );
    conn.received(body, &policy(), at(3));
    assert_eq!(request(&mut conn).body, b"{}");
}

#[test]
fn continue_is_not_sent_when_the_body_came_along() {
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", "Expect: 100-continue\r\n"), &policy(), at(1));
    request(&mut conn);
    assert!(conn.outgoing().is_empty());
}

#[test]
fn an_unstarted_continue_is_dropped_once_the_body_is_in() {
    let raw = post("{}", "Expect: 100-continue\r\n");
    let (head, body) = raw.split_at(raw.len() - 2);
    let mut conn = Connection::new(at(0));
    conn.received(head, &policy(), at(1));
    conn.received(body, &policy(), at(2));
    request(&mut conn);
    assert!(conn.outgoing().is_empty());
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn a_late_request_gets_408_at_the_deadline_and_not_before() {
    let deadline = millis(REQUEST_TIMEOUT);
    let mut conn = Connection::new(at(0));
    conn.received(b"GET /sta", &policy(), at(10));
    assert_eq!(conn.poll_timeout(), Some(at(deadline)));
    conn.handle_timeout(&policy(), at(deadline - 1));
    assert!(conn.outgoing().is_empty());
    assert!(conn.wants_read());
    conn.handle_timeout(&policy(), at(deadline));
    let late = api::answer(None, &policy(), Err(ApiError::RequestTimeout));
    assert_eq!(conn.outgoing(), late.to_bytes());
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 408 "));
    assert!(
        !conn.wants_read(),
        "the rest of the request is not waited for"
    );
    write_all(&mut conn, at(deadline + 1));
    assert_eq!(events(&mut conn), [ConnEvent::ShutdownWrite]);
}

#[test]
fn the_deadline_covers_the_body_too() {
    let raw = post("{}", "");
    let mut conn = Connection::new(at(0));
    conn.received(&raw[..raw.len() - 1], &policy(), at(1));
    conn.handle_timeout(&policy(), at(millis(REQUEST_TIMEOUT)));
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 408 "));
}

#[test]
fn eof_before_the_request_is_whole_closes_without_an_answer() {
    for cut in [0, 5, 30] {
        let raw = post("{}", "");
        let mut conn = Connection::new(at(0));
        conn.received(&raw[..cut], &policy(), at(1));
        conn.eof();
        assert!(conn.is_closed(), "cut at {cut}");
        assert_eq!(conn.close_reason(), Some(CloseReason::ClientLeft));
        assert!(conn.outgoing().is_empty());
        assert!(events(&mut conn).is_empty());
        assert_eq!(conn.poll_timeout(), None);
    }
}

#[test]
fn eof_after_the_request_does_not_stop_the_answer() {
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(1));
    request(&mut conn);
    conn.eof();
    conn.respond(Response::empty(204), at(3));
    assert!(
        !conn.is_closed(),
        "a half-closed client still reads its answer"
    );
    assert!(!conn.outgoing().is_empty());
}

#[test]
fn a_malformed_head_is_answered_400() {
    let mut conn = Connection::new(at(0));
    conn.received(b"\x00\x01 / HTTP/1.1\r\n\r\n", &policy(), at(1));
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 400 "));
    assert!(events(&mut conn).is_empty());
}

#[test]
fn an_oversized_head_is_answered_431() {
    let mut conn = Connection::new(at(0));
    conn.received(b"GET / HTTP/1.1\r\nX-Long: ", &policy(), at(1));
    let filler = vec![b'a'; 1024];
    for i in 0..(http::MAX_HEAD / filler.len()) {
        conn.received(&filler, &policy(), at(2 + i as u64));
    }
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn an_oversized_body_gets_413_with_cors_then_the_drain() {
    let origin = "Origin: http://127.0.0.1:8767\r\n";
    let raw = format!(
        "POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n{origin}Content-Length: 10000000\r\n\r\n"
    );
    let mut conn = Connection::new(at(0));
    conn.received(raw.as_bytes(), &policy(), at(1));
    conn.received(&[b'x'; 4096], &policy(), at(1));
    let head = head_of(raw.as_bytes());
    let refusal = api::check_body_len(&head, &policy()).unwrap_err();
    let expected = api::answer(Some(&head), &policy(), Err(refusal));
    assert_eq!(conn.outgoing(), expected.to_bytes());
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 413 "));
    assert!(expected.header("access-control-allow-origin").is_some());
    assert!(!conn.wants_read());
    write_all(&mut conn, at(2));
    assert_eq!(events(&mut conn), [ConnEvent::ShutdownWrite]);
    // The rest of the body is read and dropped, for as long as it keeps coming.
    for t in (3..20 * SEC).step_by(500) {
        assert!(conn.wants_read());
        conn.received(&[b'x'; 16 * 1024], &policy(), at(t));
        conn.handle_timeout(&policy(), at(t));
    }
    conn.eof();
    assert_eq!(conn.close_reason(), Some(CloseReason::Drained));
}

#[test]
fn the_linger_ends_at_eof() {
    let mut conn = lingering(at(0));
    assert!(conn.wants_read());
    conn.received(b"trailing", &policy(), at(1));
    conn.eof();
    assert_eq!(conn.close_reason(), Some(CloseReason::Drained));
}

#[test]
fn the_linger_ends_when_the_client_goes_quiet() {
    let idle = millis(LINGER_IDLE);
    let mut conn = lingering(at(0));
    conn.received(b"more", &policy(), at(500));
    assert_eq!(conn.poll_timeout(), Some(at(500 + idle)));
    conn.handle_timeout(&policy(), at(500 + idle - 1));
    assert!(!conn.is_closed());
    conn.handle_timeout(&policy(), at(500 + idle));
    assert_eq!(conn.close_reason(), Some(CloseReason::LingerIdle));
}

#[test]
fn the_linger_ends_at_its_limit_however_busy_the_client() {
    let limit = millis(LINGER_LIMIT);
    let mut conn = lingering(at(0));
    let mut t = 0;
    while t < limit {
        assert!(!conn.is_closed(), "closed early at {t}");
        conn.received(b"x", &policy(), at(t));
        conn.handle_timeout(&policy(), at(t));
        t += SEC;
    }
    assert_eq!(conn.poll_timeout(), Some(at(limit)));
    conn.handle_timeout(&policy(), at(limit));
    assert_eq!(conn.close_reason(), Some(CloseReason::LingerLimit));
}

#[test]
fn an_answer_nobody_reads_is_given_up_after_the_write_timeout() {
    let stall = millis(WRITE_TIMEOUT);
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(1));
    request(&mut conn);
    conn.respond(Response::new(200, "text/plain", "ok"), at(100));
    assert_eq!(conn.poll_timeout(), Some(at(100 + stall)));
    conn.handle_timeout(&policy(), at(100 + stall - 1));
    assert!(!conn.is_closed());
    conn.handle_timeout(&policy(), at(100 + stall));
    assert_eq!(conn.close_reason(), Some(CloseReason::WriteStalled));
    assert!(conn.outgoing().is_empty());
}

#[test]
fn write_progress_moves_the_write_deadline() {
    let stall = millis(WRITE_TIMEOUT);
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(0));
    request(&mut conn);
    conn.respond(Response::new(200, "text/plain", vec![b'a'; 1000]), at(0));
    conn.wrote(10, at(stall - 1));
    conn.handle_timeout(&policy(), at(stall));
    assert!(!conn.is_closed(), "progress at {} counts", stall - 1);
    conn.wrote(0, at(stall + 5));
    conn.handle_timeout(&policy(), at(2 * stall - 2));
    assert!(!conn.is_closed());
    conn.handle_timeout(&policy(), at(2 * stall - 1));
    assert_eq!(conn.close_reason(), Some(CloseReason::WriteStalled));
}

#[test]
fn a_failed_write_closes() {
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(0));
    request(&mut conn);
    conn.respond(Response::empty(204), at(0));
    conn.write_failed();
    assert_eq!(conn.close_reason(), Some(CloseReason::WriteFailed));
}

#[test]
fn early_bytes_after_an_upgrade_request_are_kept() {
    let raw = b"GET /terminals/42 HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let frame = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(&frame);
    let mut conn = Connection::new(at(0));
    conn.received(&bytes, &policy(), at(1));
    let r = request(&mut conn);
    assert!(r.head.is_websocket_upgrade());
    assert_eq!(r.early, frame);
    let accept = api::websocket_accept(&r.head).unwrap();
    conn.respond(accept, at(2));
    assert!(
        !conn.wants_read(),
        "the WebSocket reads the socket, not the connection"
    );
    write_all(&mut conn, at(3));
    assert_eq!(events(&mut conn), [ConnEvent::Upgraded]);
    assert!(
        !conn.is_closed(),
        "the socket is the WebSocket's, not to be dropped"
    );
    assert!(!conn.wants_read());
    assert_eq!(conn.poll_timeout(), None);
    conn.write_failed();
    conn.eof();
    assert!(
        !conn.is_closed(),
        "nothing the WebSocket does concerns the connection"
    );
}

#[test]
fn a_stalled_upgrade_answer_closes() {
    let raw = b"GET /terminals/42 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut conn = Connection::new(at(0));
    conn.received(raw, &policy(), at(0));
    let r = request(&mut conn);
    conn.respond(api::websocket_accept(&r.head).unwrap(), at(0));
    conn.handle_timeout(&policy(), at(millis(WRITE_TIMEOUT)));
    assert_eq!(conn.close_reason(), Some(CloseReason::WriteStalled));
    assert!(
        events(&mut conn).is_empty(),
        "no Upgraded: the runtime detaches the client"
    );
}

#[test]
fn terminate_bodies_are_never_read() {
    let raw = b"POST /terminals/42/terminate HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let mut conn = Connection::new(at(0));
    conn.received(raw, &policy(), at(0));
    let r = request(&mut conn);
    assert!(r.body.is_empty());
    assert_eq!(r.early, b"5\r\nhello\r\n0\r\n\r\n");
}

#[test]
fn only_one_answer_per_connection() {
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(0));
    request(&mut conn);
    conn.respond(Response::empty(204), at(0));
    let first = conn.outgoing().to_vec();
    conn.respond(Response::empty(500), at(0));
    assert_eq!(conn.outgoing(), first);
    write_all(&mut conn, at(1));
    conn.respond(Response::empty(500), at(2));
    assert!(conn.outgoing().is_empty());
}

#[test]
fn a_late_request_is_not_invited_to_send_its_body() {
    let raw = post("{}", "Expect: 100-continue\r\n");
    let mut conn = Connection::new(at(0));
    // The head comes late, so its 100 Continue is not stalled yet at the deadline.
    conn.received(&raw[..raw.len() - 2], &policy(), at(14 * SEC));
    assert_eq!(conn.outgoing(), http::CONTINUE);
    conn.handle_timeout(&policy(), at(millis(REQUEST_TIMEOUT)));
    assert!(
        conn.outgoing().starts_with(b"HTTP/1.1 408 "),
        "no 100 Continue first"
    );
}

#[test]
fn a_begun_continue_is_finished_before_the_answer() {
    let raw = post("{}", "Expect: 100-continue\r\n");
    let mut conn = Connection::new(at(0));
    conn.received(&raw[..raw.len() - 2], &policy(), at(1));
    conn.wrote(3, at(6 * SEC));
    conn.handle_timeout(&policy(), at(millis(REQUEST_TIMEOUT)));
    assert!(conn.outgoing().starts_with(&http::CONTINUE[3..]));
    let rest = &conn.outgoing()[http::CONTINUE.len() - 3..];
    assert!(rest.starts_with(b"HTTP/1.1 408 "));
}

#[test]
fn a_refusal_before_the_request_is_whole_is_answered() {
    let mut conn = Connection::new(at(0));
    conn.respond(Response::empty(503), at(0));
    assert!(conn.outgoing().starts_with(b"HTTP/1.1 503 "));
    assert!(!conn.wants_read());
}

#[test]
fn bytes_nobody_asked_for_are_ignored() {
    let mut conn = Connection::new(at(0));
    conn.received(&post("{}", ""), &policy(), at(0));
    request(&mut conn);
    conn.received(b"GET / HTTP/1.1\r\n\r\n", &policy(), at(1));
    assert!(events(&mut conn).is_empty(), "one request per connection");
}

/// Feeds `chunks` at increasing times, then returns the request handed out, if any.
fn feed(chunks: &[&[u8]]) -> (Connection, Option<Request>) {
    let mut conn = Connection::new(at(0));
    for (i, chunk) in chunks.iter().enumerate() {
        conn.received(chunk, &policy(), at(i as u64));
    }
    let request = events(&mut conn).into_iter().find_map(|e| match e {
        ConnEvent::Request(r) => Some(r),
        _ => None,
    });
    (conn, request)
}

/// A valid request: a plausible head, a body of its Content-Length, early bytes after.
fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        "/[a-z0-9/]{0,24}",
        proptest::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,24}"), 0..6),
        proptest::collection::vec(any::<u8>(), 0..1024),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    )
        .prop_map(|(path, headers, body, early, expect)| {
            let mut raw = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8767\r\n");
            for (name, value) in headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            if expect {
                raw.push_str("Expect: 100-continue\r\n");
            }
            raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut raw = raw.into_bytes();
            raw.extend_from_slice(&body);
            raw.extend_from_slice(&early);
            raw
        })
}

/// One thing a runtime can do to a connection.
#[derive(Debug, Clone)]
enum Op {
    Receive(usize),
    Eof,
    Wrote(usize),
    WriteFailed,
    Respond(u16),
    Wait(u64),
    /// The runtime's timer fires exactly at `poll_timeout()`, as it does.
    WakeAtDeadline,
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..64).prop_map(Op::Receive),
        1 => Just(Op::Eof),
        3 => (0usize..200).prop_map(Op::Wrote),
        1 => Just(Op::WriteFailed),
        2 => prop_oneof![Just(101u16), Just(200), Just(413)].prop_map(Op::Respond),
        3 => (0u64..40 * SEC).prop_map(Op::Wait),
        3 => Just(Op::WakeAtDeadline),
        3 => Just(Op::Timeout),
    ]
}

/// Something the runtime can see changed.
fn observable(conn: &Connection) -> (Option<CloseReason>, Vec<u8>, bool, Option<Time>) {
    (
        conn.close_reason(),
        conn.outgoing().to_vec(),
        conn.wants_read(),
        conn.poll_timeout(),
    )
}

proptest! {
    #[test]
    fn any_split_gives_the_same_request(
        raw in valid_request(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let (_, whole) = feed(&[&raw]);
        let whole = whole.unwrap();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(raw.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for end in at.into_iter().chain([raw.len()]) {
            pieces.push(&raw[start..end]);
            start = end;
        }
        let (_, split) = feed(&pieces);
        // Early bytes are whatever came in the read that completed the body: a split
        // may leave some in the socket, which the WebSocket then reads itself.
        let split = split.unwrap();
        prop_assert_eq!(&split.head, &whole.head);
        prop_assert_eq!(&split.body, &whole.body);
        prop_assert!(whole.early.starts_with(&split.early));
    }

    #[test]
    fn arbitrary_bytes_end_closed_or_in_a_request(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 0..8),
        eof in any::<bool>(),
        writes in any::<bool>(),
    ) {
        let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let (mut conn, request) = feed(&pieces);
        if eof {
            conn.eof();
        }
        // Each deadline passes in turn; a bounded number of them ends every connection.
        for _ in 0..4 {
            let Some(due) = conn.poll_timeout() else { break };
            if writes {
                write_all(&mut conn, due);
            }
            conn.handle_timeout(&policy(), due);
        }
        prop_assert!(
            conn.is_closed() || request.is_some(),
            "neither closed nor a request: {:?}", conn
        );
        prop_assert_eq!(conn.poll_timeout(), None);
    }

    #[test]
    fn deadlines_are_never_in_the_past_unless_due(
        valid in valid_request(),
        noise in proptest::collection::vec(any::<u8>(), 0..256),
        use_noise in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..48),
    ) {
        let stream = if use_noise { noise } else { valid };
        let mut read = 0;
        let mut now = at(0);
        let mut conn = Connection::new(now);
        for op in ops {
            match op {
                Op::Receive(n) => {
                    let end = (read + n).min(stream.len());
                    conn.received(&stream[read..end], &policy(), now);
                    read = end;
                }
                Op::Eof => conn.eof(),
                Op::Wrote(n) => conn.wrote(n, now),
                Op::WriteFailed => conn.write_failed(),
                Op::Respond(status) => conn.respond(Response::empty(status), now),
                Op::Wait(ms) => now = now.after(Duration::from_millis(ms)),
                Op::WakeAtDeadline => now = conn.poll_timeout().unwrap_or(now).max(now),
                Op::Timeout => {
                    conn.handle_timeout(&policy(), now);
                    prop_assert!(conn.poll_timeout().is_none_or(|t| t > now));
                }
            }
            let _ = events(&mut conn);
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                // A deadline not later than now is only allowed when it is due.
                let mut due = conn.clone();
                due.handle_timeout(&policy(), now);
                prop_assert_ne!(observable(&due), observable(&conn));
            }
        }
    }
}
