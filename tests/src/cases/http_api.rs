//! Every HTTP route and every error answer; the server stays alive after each.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::editor::assert_cors_allows_localhost;
use super::{OrFail, EVENT, UNKNOWN_PID};
use crate::http::Response;
use crate::server::Server;
use crate::ws::{Refused, Ws};

fn start(bin: &Path) -> Server {
    Server::start(bin, &["-c", "sh"], &[])
}

/// Asserts `r` is an error with status in `statuses` and a JSON `{"error":"..."}` body.
fn assert_error(server: &Server, what: &str, r: &Response, statuses: &[u16]) {
    assert!(
        statuses.contains(&r.status),
        "{what}: expected status {statuses:?}, got {}\n{}",
        r.describe(),
        server.proc.context()
    );
    let json = r
        .json()
        .map_err(|e| format!("{what}: error body must be JSON {{\"error\":\"...\"}}: {e}"))
        .or_fail();
    assert!(
        json.get("error").is_some_and(|e| e.is_string()),
        "{what}: error body must be {{\"error\":\"...\"}}, got {json}"
    );
    server.assert_alive(what);
}

/// Asserts `r` is 2xx with body `{"success":true}`.
fn assert_success_true(what: &str, r: &Response) {
    assert!(r.is_success(), "{what}: expected 2xx, got {}", r.describe());
    let json = r.json().map_err(|e| format!("{what}: {e}")).or_fail();
    assert_eq!(
        json.get("success"),
        Some(&serde_json::Value::Bool(true)),
        "{what}: expected {{\"success\":true}}, got {json}"
    );
}

/// GET /status is 2xx `OK`; GET / is 2xx.
pub fn http_status_and_root(bin: &Path) {
    let server = start(bin);
    let r = server.get("/status");
    assert!(
        r.is_success() && r.text().trim() == "OK",
        "GET /status: expected 2xx with body OK, got {}",
        r.describe()
    );
    let r = server.get("/");
    assert!(r.is_success(), "GET /: expected 2xx, got {}", r.describe());
}

/// POST /terminals: numbers and numeric strings work; bad bodies get 400 JSON errors.
pub fn http_create_errors(bin: &Path) {
    let server = start(bin);
    let bad: &[(&str, &str)] = &[
        ("non-JSON body", "this is not json"),
        ("cols \"abc\"", r#"{"cols":"abc","rows":24}"#),
        ("cols -1", r#"{"cols":-1,"rows":24}"#),
        ("cols 70000", r#"{"cols":70000,"rows":24}"#),
        ("rows 70000", r#"{"cols":80,"rows":70000}"#),
        ("cols 1.5", r#"{"cols":1.5,"rows":24}"#),
        ("missing cols", r#"{"rows":24}"#),
        ("missing rows", r#"{"cols":80}"#),
        ("empty object", "{}"),
        ("JSON array", "[80,24]"),
        ("empty body", ""),
    ];
    for (what, body) in bad {
        let r = server.post_json("/terminals", body);
        assert_error(
            &server,
            &format!("POST /terminals with {what} ({body:?})"),
            &r,
            &[400],
        );
    }
    let r = server.post_json("/terminals", r#"{"cols":"80","rows":"24"}"#);
    server.expect_pid(&r);
    let r = server.post_json("/terminals", r#"{"cols":80,"rows":24}"#);
    server.expect_pid(&r);
}

/// Unknown paths are 404, known paths with the wrong method 405, all with JSON errors.
pub fn http_methods_and_paths(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let not_found = [
        ("GET", "/nope".to_string()),
        ("POST", "/nope".to_string()),
        ("GET", format!("/terminals/{pid}/nope")),
        ("POST", format!("/terminals/{UNKNOWN_PID}/resize")),
    ];
    for (m, p) in &not_found {
        let body = (*m == "POST").then_some(br#"{"cols":80,"rows":24}"#.as_slice());
        let r = server.request(m, p, &[("Content-Type", "application/json")], body);
        assert_error(&server, &format!("{m} {p}"), &r, &[404]);
    }
    let wrong_method = [
        ("DELETE", "/status".to_string()),
        ("POST", "/status".to_string()),
        ("PUT", "/terminals".to_string()),
        ("GET", "/execute-command".to_string()),
        ("GET", format!("/terminals/{pid}/resize")),
        ("DELETE", format!("/terminals/{pid}")),
    ];
    for (m, p) in &wrong_method {
        let r = server.request(m, p, &[], None);
        assert_error(&server, &format!("{m} {p}"), &r, &[405]);
    }
    // Garbage that is not HTTP at all still gets an answer or a clean close, never a crash.
    let mut s = crate::server::connect_once(server.port)
        .map_err(|e| e.to_string())
        .or_fail();
    let _ = s.write_all(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n");
    drop(s);
    server.assert_alive("a request that is not HTTP");
}

/// A body over 64 KiB is refused with 413 (and an answer, not a reset).
pub fn http_oversized_body(bin: &Path) {
    let server = start(bin);
    let pad = "x".repeat(70 * 1024);
    let body = format!(r#"{{"cols":80,"rows":24,"pad":"{pad}"}}"#);
    for path in ["/terminals", "/execute-command"] {
        let r = server.post_json(path, &body);
        assert_error(
            &server,
            &format!("POST {path} with a {} byte body", body.len()),
            &r,
            &[413],
        );
    }
}

/// An oversized body always gets its 413 JSON answer, never a reset: 5 MB bodies ten times
/// and 50 MB bodies three times to `POST /terminals`, each sent whole before the answer is
/// read (as a client that does not wait for `100 Continue` does). Closing while the rest
/// of such a body is still arriving resets the connection (the client's send fails, and an
/// answer not yet read can be destroyed), so the server must drain after answering,
/// bounded in time, not in bytes: every send completes and every 413 is read.
pub fn http_oversized_body_many(bin: &Path) {
    let server = start(bin);
    for (megabytes, tries) in [(5, 10), (50, 3)] {
        let body = oversized_body(megabytes * 1000 * 1000);
        for attempt in 1..=tries {
            let what =
                format!("POST /terminals with a {megabytes} MB body, try {attempt} of {tries}");
            let r = crate::http::request_whole_body(
                server.port,
                "POST",
                "/terminals",
                &[
                    ("Content-Type", "application/json"),
                    ("Origin", "https://localhost"),
                ],
                &body,
            )
            .map_err(|e| {
                format!(
                    "{what}: reset instead of drained and answered: {e}\n{}",
                    server.proc.context()
                )
            })
            .or_fail();
            assert_error(&server, &what, &r, &[413]);
        }
    }
}

/// A JSON object of `len` bytes: a valid create request padded past any body limit.
fn oversized_body(len: usize) -> Vec<u8> {
    let mut body = br#"{"cols":80,"rows":24,"pad":""#.to_vec();
    body.resize(len.saturating_sub(2), b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// Resize answers {"success":true} for numbers and strings; a bad body is 400.
pub fn http_resize(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}/resize");
    for body in [r#"{"cols":100,"rows":30}"#, r#"{"cols":"90","rows":"20"}"#] {
        let r = server.post_json(&path, body);
        assert_success_true(&format!("POST {path} {body}"), &r);
    }
    for body in [
        "nope",
        r#"{"cols":"abc","rows":1}"#,
        r#"{"cols":0,"rows":70000}"#,
    ] {
        let r = server.post_json(&path, body);
        assert_error(&server, &format!("POST {path} {body:?}"), &r, &[400]);
    }
}

/// Terminate answers 2xx {"success":true} for any body, any id, and twice.
pub fn http_terminate_any_body(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}/terminate");
    let r = server.request("POST", &path, &[], None);
    assert_success_true(&format!("POST {path} with no body and no content type"), &r);
    let r = server.request("POST", &path, &[], Some(b""));
    assert_success_true(
        &format!("POST {path} a second time (Content-Length: 0, as fetch sends it)"),
        &r,
    );
    let pid2 = server.create_terminal(80, 24);
    let path2 = format!("/terminals/{pid2}/terminate");
    let r = server.request(
        "POST",
        &path2,
        &[("Content-Type", "text/plain")],
        Some(b"not json"),
    );
    assert_success_true(&format!("POST {path2} with a non-JSON body"), &r);
    // A chunked body (no length) cannot refuse it either, and the session does end.
    let pid3 = server.create_terminal(80, 24);
    let path3 = format!("/terminals/{pid3}/terminate");
    let r = server.request("POST", &path3, &[("Transfer-Encoding", "chunked")], None);
    assert_success_true(&format!("POST {path3} with a chunked body"), &r);
    let left = crate::procfs::wait_gone(&[pid3], EVENT);
    assert!(left.is_empty(), "a chunked terminate left {left:?} running");
    let unknown = format!("/terminals/{UNKNOWN_PID}/terminate");
    let r = server.request("POST", &unknown, &[], None);
    assert_success_true(&format!("POST {unknown} (unknown id)"), &r);
    let r = server.post_json(&unknown, "{}");
    assert_success_true(&format!("POST {unknown} with a JSON body"), &r);
    server.assert_alive("terminate requests");
}

/// execute-command runs `sh -c`, strips ANSI, honours cwd, refuses a missing cwd with 400.
pub fn http_execute_command(bin: &Path) {
    let server = start(bin);
    let run = |body: &str| -> String {
        let r = server.post_json("/execute-command", body);
        assert!(
            r.is_success(),
            "POST /execute-command {body}: got {}",
            r.describe()
        );
        let json = r.json().or_fail();
        assert_eq!(
            json.get("error"),
            Some(&serde_json::Value::Null),
            "POST /execute-command {body}: expected \"error\":null in {json}"
        );
        json.get("output")
            .and_then(|o| o.as_str())
            .unwrap_or_else(|| panic!("POST /execute-command {body}: no string output in {json}"))
            .to_string()
    };
    let cases = [
        (r#"{"command":"echo FOUND"}"#, "FOUND"),
        (
            r#"{"command":"command -v sh >/dev/null 2>&1 && echo FOUND"}"#,
            "FOUND",
        ),
        (r#"{"command":"printf '\\033[31mred\\033[0m'"}"#, "red"),
        (r#"{"command":"pwd","cwd":"/tmp"}"#, "/tmp"),
    ];
    for (body, want) in cases {
        let out = run(body);
        assert_eq!(
            out.trim(),
            want,
            "POST /execute-command {body}: output {out:?}"
        );
    }
    for body in [
        r#"{"command":"pwd","cwd":"/nonexistent/axs-conformance"}"#,
        r#"{"cwd":"/tmp"}"#,
        "not json",
    ] {
        let r = server.post_json("/execute-command", body);
        assert_error(
            &server,
            &format!("POST /execute-command {body}"),
            &r,
            &[400],
        );
        if body.contains("cwd\":\"/nonexistent") {
            // AcodeX calls output.trim(): an error answer still carries a string.
            let json = r.json().or_fail();
            assert_eq!(
                json.get("output").and_then(|o| o.as_str()),
                Some(""),
                "POST /execute-command {body}: output must be \"\" in {json}"
            );
        }
    }
}

/// CORS: preflights from https://localhost are allowed (methods and content-type header),
/// answers carry Access-Control-Allow-Origin, a preflight from elsewhere is not allowed.
pub fn http_cors_preflight(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    for path in [
        "/terminals".to_string(),
        format!("/terminals/{pid}/resize"),
        format!("/terminals/{pid}/terminate"),
        "/execute-command".to_string(),
    ] {
        let r = server.request(
            "OPTIONS",
            &path,
            &[
                ("Origin", "https://localhost"),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            None,
        );
        let what = format!("preflight OPTIONS {path}");
        assert!(r.is_success(), "{what}: expected 2xx, got {}", r.describe());
        assert_cors_allows_localhost(&r, &what);
        let methods = r
            .header("Access-Control-Allow-Methods")
            .unwrap_or("")
            .to_ascii_uppercase();
        assert!(
            methods.contains("POST") || methods.contains('*'),
            "{what}: Access-Control-Allow-Methods {methods:?} must allow POST ({:?})",
            r.headers
        );
        let headers = r
            .header("Access-Control-Allow-Headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            headers.contains("content-type") || headers.contains('*'),
            "{what}: Access-Control-Allow-Headers {headers:?} must allow content-type"
        );
    }
    let r = server.request("GET", "/status", &[("Origin", "https://localhost")], None);
    assert_cors_allows_localhost(&r, "GET /status from https://localhost");
    let r = server.request(
        "OPTIONS",
        "/terminals",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    );
    let acao = r.header("Access-Control-Allow-Origin");
    assert!(
        !r.is_success() || !matches!(acao, Some("https://evil.example") | Some("*")),
        "preflight from https://evil.example must not be allowed: {} ACAO {acao:?}",
        r.status
    );
    server.assert_alive("preflights");
}

/// A WebSocket to an unknown id is refused with 404 before the upgrade.
pub fn ws_unknown_id_404(bin: &Path) {
    let server = start(bin);
    for (path, allowed) in [
        (format!("/terminals/{UNKNOWN_PID}"), &[404u16][..]),
        ("/terminals/abc".to_string(), &[400, 404][..]),
    ] {
        match Ws::connect(server.port, &path) {
            Ok(_) => panic!("WebSocket {path} was upgraded; expected 404 before the upgrade"),
            Err(Refused::Status(s, body)) => {
                assert!(
                    allowed.contains(&s),
                    "WebSocket {path}: status {s}, expected {allowed:?}"
                );
                let json: Result<serde_json::Value, _> = serde_json::from_str(&body);
                assert!(
                    json.as_ref()
                        .is_ok_and(|j| j.get("error").is_some_and(|e| e.is_string())),
                    "WebSocket {path}: refusal body must be {{\"error\":\"...\"}}, got {body:?}"
                );
            }
            Err(e) => panic!(
                "WebSocket {path}: expected a 404 answer, got {e:?}\n{}",
                server.proc.context()
            ),
        }
        server.assert_alive(&format!("WebSocket {path}"));
    }
}

/// Bad WebSocket frames kill neither the server nor the session.
pub fn ws_bad_frames(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let garbage: &[(&str, &[u8])] = &[
        (
            "random garbage",
            b"\xff\xfe\xfd garbage that is not a frame\r\n\x00\x01",
        ),
        ("an unmasked text frame", b"\x81\x05hello"),
        (
            "a frame claiming 2^62 bytes",
            b"\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00abcdxyz",
        ),
        ("reserved bits and opcode", b"\xf3\x80\x00\x00\x00\x00"),
        (
            "a masked text frame with invalid UTF-8",
            b"\x81\x82\x00\x00\x00\x00\xc3\x28",
        ),
    ];
    for (what, bytes) in garbage {
        let mut ws = Ws::attach(server.port, &path, &server.proc.context());
        let _ = ws.tcp().write_all(bytes);
        let _ = ws.tcp().flush();
        ws.read_for(Duration::from_millis(300));
        drop(ws);
        server.assert_alive(&format!("a WebSocket client sent {what}"));
    }
    let mut ws = Ws::attach(server.port, &path, &server.proc.context());
    // Ctrl-U first: bytes of the bad frames may have reached the line being typed.
    ws.send_text("\x15echo ok-$((2+3))\r").or_fail();
    ws.wait_for("ok-5\r\n", EVENT)
        .map_err(|e| format!("the session must survive bad frames from other clients: {e}"))
        .or_fail();
}

/// A paste is one WebSocket message, and a client whose socket closes ends the user's
/// session: a 2 MiB paste reaches the program and the socket stays open.
pub fn ws_large_paste(bin: &Path) {
    let dir = crate::server::TempDir::new("paste");
    let script = "stty raw -echo\necho READY\nhead -c 2097152 >/dev/null\necho GOT-ALL\ncat\n";
    let cmd = super::sh_script(&dir, "paste.sh", script);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    // Input waits in the pty (and the server) until `head` reads it.
    ws.wait_for("READY", EVENT).or_fail();
    ws.send_text(&"p".repeat(2 * 1024 * 1024)).or_fail();
    ws.wait_for("GOT-ALL", EVENT).or_fail();
    ws.send_text("still-open\r").or_fail();
    ws.wait_for("still-open", EVENT).or_fail();
    assert!(
        ws.got.close.is_none() && ws.got.ended.is_none(),
        "the socket closed after a paste"
    );
}

/// execute-command answers once its shell exits (not at the 30 s limit), even when a
/// background job it started ignores SIGHUP and holds the pty; that job is ended after.
pub fn http_execute_command_background_job(bin: &Path) {
    let server = start(bin);
    let started = std::time::Instant::now();
    let r = server.post_json(
        "/execute-command",
        r#"{"command":"trap '' HUP; sleep 600 & echo started $!"}"#,
    );
    let took = started.elapsed();
    assert!(
        r.is_success(),
        "execute-command with a background job: {}",
        r.describe()
    );
    let json = r.json().or_fail();
    let output = json
        .get("output")
        .and_then(|o| o.as_str())
        .unwrap_or_default();
    let job: u32 = output
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no `started <pid>` in {json}"));
    assert!(
        took < Duration::from_secs(10),
        "the answer took {took:?}: it must come when the shell exits, not at the time limit"
    );
    let left = crate::procfs::wait_gone(&[job], EVENT);
    assert!(
        left.is_empty(),
        "the background job outlived its command: {}",
        crate::procfs::describe(&left)
    );
}

/// Connections that never finish their request do not starve others: with 70 of them
/// open, `GET /status` (client A polls it at start-up) still answers at once.
pub fn http_idle_connections_do_not_block_status(bin: &Path) {
    let server = start(bin);
    let idle: Vec<std::net::TcpStream> = (0..70)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).ok()?;
            s.write_all(b"G").ok()?;
            Some(s)
        })
        .collect();
    assert_eq!(idle.len(), 70, "self-check: could not open 70 connections");
    let started = std::time::Instant::now();
    let r = server.get("/status");
    let took = started.elapsed();
    assert_eq!(
        r.status,
        200,
        "GET /status with 70 idle connections: {}",
        r.describe()
    );
    assert!(
        took < Duration::from_secs(3),
        "GET /status took {took:?} behind 70 idle connections"
    );
    drop(idle);
}

/// A request that never completes is answered 408 with JSON (never a silent close).
pub fn http_incomplete_request_gets_408(bin: &Path) {
    use std::io::Read;
    let server = start(bin);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).or_fail_io();
    s.write_all(
        b"POST /terminals HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nContent-Length: 10\r\n\r\n{\"cols\"",
    )
    .or_fail_io();
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .or_fail_io();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408") && text.contains("{\"error\":"),
        "an unfinished request must be answered 408 with JSON, got {text:?}"
    );
    server.assert_alive("an unfinished request");
}

trait OrFailIo<T> {
    fn or_fail_io(self) -> T;
}

impl<T> OrFailIo<T> for std::io::Result<T> {
    #[track_caller]
    fn or_fail_io(self) -> T {
        self.unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A client's close is answered with the same code and reason, and ends only that client:
/// the session goes on and a new client can attach.
pub fn ws_close_is_echoed(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let mut ws = Ws::attach(server.port, &path, &server.proc.context());
    ws.close_with(1000, "bye");
    ws.wait_end(EVENT).or_fail();
    let close = ws
        .got
        .close
        .clone()
        .expect("the server answers a close with a close");
    assert_eq!((close.code, close.reason.as_str()), (Some(1000), "bye"));
    let mut again = Ws::attach(server.port, &path, &server.proc.context());
    again.send_text("echo again-$((3+4))\r").or_fail();
    again.wait_for("again-7", EVENT).or_fail();
}

/// A message over the 16 MiB limit closes that socket with 1009 (not a reset); the session
/// survives for the next client.
pub fn ws_oversized_message(bin: &Path) {
    let server = start(bin);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let mut ws = Ws::attach(server.port, &path, &server.proc.context());
    let _ = ws.send_text(&"x".repeat(16 * 1024 * 1024 + 1));
    let _ = ws.wait_end(EVENT);
    let code = ws.got.close.as_ref().and_then(|c| c.code);
    assert_eq!(
        code,
        Some(1009),
        "an oversized message: {}",
        ws.got.summary()
    );
    let mut again = Ws::attach(server.port, &path, &server.proc.context());
    again.send_text("\x15echo alive-$((2+2))\r").or_fail();
    again.wait_for("alive-4", EVENT).or_fail();
}
