//! Read-only viewers (`--view-token`, `?attach=view`) and the doors closed around them:
//! tokens kept out of spawned programs, the Host check, the start-up rules on tokens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::http::Response;
use crate::server::{Server, StartError, TempDir};
use crate::ws::{Open, Refused, Ws};

const TOKEN: &str = "full-token-0123456789";
const VIEW: &str = "view-token-0123456789";
const SIZE: &str = r#"{"cols":80,"rows":24}"#;

/// A script that reads one line, prints it back as `GOT:<line>`, waits for another line
/// and exits 5.
const ECHO_ONCE: &str = "stty -echo\nread line\necho \"GOT:$line\"\nread x\nexit 5\n";

fn open_ws(server: &Server, path: &str, recv_buffer: Option<usize>) -> Result<Ws, Refused> {
    Ws::open(
        server.port,
        path,
        Open {
            headers: vec![("Origin", "https://localhost".into())],
            recv_buffer,
        },
    )
}

fn must_open(server: &Server, path: &str, label: &str) -> Ws {
    let mut ws = open_ws(server, path, None)
        .unwrap_or_else(|e| panic!("{label}: {path} refused: {e:?}\n{}", server.proc.context()));
    ws.label = label.into();
    ws
}

fn post(server: &Server, path: &str, auth: Option<&str>, body: &str) -> Response {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    server.request("POST", path, &headers, Some(body.as_bytes()))
}

/// Waits for the `attached` control message and returns its `viewer` flag.
fn attached_viewer_flag(ws: &mut Ws) -> Option<bool> {
    ws.read_until(EVENT, "the attached control message", |r| {
        r.texts.iter().any(|(_, t)| t.contains(r#""attached""#))
    })
    .or_fail();
    ws.got
        .texts
        .iter()
        .find(|(_, t)| t.contains(r#""attached""#))
        .and_then(|(_, t)| serde_json::from_str::<serde_json::Value>(t).ok())
        .and_then(|v| v["data"]["viewer"].as_bool())
}

/// Asserts every acting request with `auth` answers 403 with a JSON error.
fn assert_cannot_act(server: &Server, pid: u32, auth: &str, who: &str) {
    for (path, body) in [
        ("/terminals".to_string(), SIZE),
        (format!("/terminals/{pid}/resize"), SIZE),
        (format!("/terminals/{pid}/terminate"), ""),
        ("/execute-command".to_string(), r#"{"command":"echo RAN"}"#),
    ] {
        let r = post(server, &path, Some(auth), body);
        let json = r.json();
        assert!(
            r.status == 403 && json.as_ref().is_ok_and(|j| j["error"].is_string()),
            "{who}: POST {path} must answer 403 with a JSON error, got {}",
            r.describe()
        );
    }
}

/// A viewer (view token) gets the output and the exit, and cannot type, resize,
/// terminate, create or run commands (403 each); the full token keeps full rights.
pub fn viewer_watches_and_cannot_act(bin: &Path) {
    let dir = TempDir::new("viewer");
    let cmd = sh_script(&dir, "echo.sh", ECHO_ONCE);
    let server = Server::start(
        bin,
        &["-c", &cmd, "--token", TOKEN, "--view-token", VIEW],
        &[],
    );
    let r = post(&server, "/terminals", Some(TOKEN), SIZE);
    let pid = server.expect_pid(&r);
    let path = format!("/terminals/{pid}");
    let mut full = must_open(&server, &format!("{path}?token={TOKEN}"), "full client");
    let mut viewer = must_open(
        &server,
        &format!("{path}?token={VIEW}&control=1&attach=takeover"),
        "viewer",
    );
    assert_eq!(
        attached_viewer_flag(&mut viewer),
        Some(true),
        "the view token's attached message must say viewer:true\n{}",
        viewer.got.summary()
    );
    assert!(
        server.get("/status").is_success(),
        "GET /status with a viewer attached"
    );
    assert_cannot_act(&server, pid, VIEW, "the view token");
    // A viewer's keystrokes never reach the program.
    when_reading(&mut viewer, pid, "from-viewer\r");
    thread::sleep(Duration::from_millis(300));
    when_reading(&mut full, pid, "from-full\r");
    viewer.wait_for("GOT:", EVENT).or_fail();
    viewer.wait_for("\r\n", EVENT).or_fail();
    let seen = String::from_utf8_lossy(&viewer.got.binary).into_owned();
    assert!(
        seen.contains("GOT:from-full\r\n"),
        "the viewer's input reached the program (or the full client's did not): {seen:?}"
    );
    full.wait_for("GOT:from-full\r\n", EVENT)
        .map_err(|e| {
            format!("the viewer asked for takeover: it must not take the session over: {e}")
        })
        .or_fail();
    assert!(
        full.got.close.is_none(),
        "the viewer asked for takeover: it must not have taken the session over\n{}",
        full.got.summary()
    );
    when_reading(&mut full, pid, "\r");
    let exit = viewer.expect_exit(EVENT).or_fail();
    assert_eq!(
        exit.exit_code,
        Some(5),
        "the viewer must get the exit: {exit:?}"
    );
}

/// With only the view token on loopback, requests carrying it can only watch; requests
/// without any token keep full rights (there is no full token to ask for).
pub fn view_token_alone_only_watches(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh", "--view-token", VIEW], &[]);
    let pid = server.create_terminal(80, 24);
    assert_cannot_act(&server, pid, VIEW, "the view token alone");
    let path = format!("/terminals/{pid}?token={VIEW}&control=1");
    let mut viewer = must_open(&server, &path, "viewer");
    assert_eq!(attached_viewer_flag(&mut viewer), Some(true));
    server.assert_alive("view-token requests");
}

/// `?attach=view`: a client with full rights may attach as a viewer by choice.
pub fn attach_view_by_choice(bin: &Path) {
    let dir = TempDir::new("attach-view");
    let cmd = sh_script(&dir, "echo.sh", ECHO_ONCE);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let mut viewer = must_open(&server, &format!("{path}?attach=view&control=1"), "viewer");
    assert_eq!(attached_viewer_flag(&mut viewer), Some(true));
    let mut full = must_open(&server, &format!("{path}?control=1"), "full client");
    assert_eq!(attached_viewer_flag(&mut full), Some(false));
    when_reading(&mut viewer, pid, "from-viewer\r");
    thread::sleep(Duration::from_millis(300));
    when_reading(&mut full, pid, "from-full\r");
    full.wait_for("GOT:from-full\r\n", EVENT)
        .map_err(|e| format!("?attach=view input must be dropped: {e}"))
        .or_fail();
    when_reading(&mut full, pid, "\r");
    let exit = viewer.expect_exit(EVENT).or_fail();
    assert_eq!(exit.exit_code, Some(5), "{exit:?}");
}

/// A viewer that stops reading never holds a flooding program back (even with a stall
/// timeout far beyond the test), and when it reads again it is skipped forward with a
/// `skipped` notice.
pub fn viewer_never_holds_a_flood_back(bin: &Path) {
    const FILLER: &str = "viewer-flood-filler-line";
    let lines = 16 * (1 << 20) / (FILLER.len() + 1);
    let dir = TempDir::new("viewer-flood");
    let script =
        format!("stty -echo\nread go\nyes '{FILLER}' | head -n {lines}\necho DONE\nread x\n");
    let cmd = sh_script(&dir, "flood.sh", &script);
    let server = Server::start(bin, &["-c", &cmd, "--stall-timeout", "3600"], &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let mut viewer = open_ws(
        &server,
        &format!("{path}?attach=view&control=1"),
        Some(4096),
    )
    .unwrap_or_else(|e| panic!("viewer refused: {e:?}\n{}", server.proc.context()));
    viewer.label = "stalled viewer".into();
    let mut reader = must_open(&server, &path, "reading client");
    when_reading(&mut reader, pid, "\r");
    reader
        .wait_for("DONE\r\n", Duration::from_secs(120))
        .map_err(|e| format!("a viewer that does not read held the program back: {e}"))
        .or_fail();
    viewer
        .wait_for("DONE\r\n", Duration::from_secs(60))
        .map_err(|e| format!("the viewer, reading again, must reach the newest output: {e}"))
        .or_fail();
    assert!(
        viewer
            .got
            .texts
            .iter()
            .any(|(_, t)| t.contains(r#""skipped""#)),
        "the viewer opted in to control messages and was skipped: it must be told\n{}",
        viewer.got.summary()
    );
    assert!(
        viewer.got.binary.len() < reader.got.binary.len(),
        "the viewer got every byte: the server buffered the flood for it"
    );
}

/// Neither token, nor the ready pipe, reaches a session's or a command's environment.
pub fn no_axs_variables_in_sessions(bin: &Path) {
    let dir = TempDir::new("env");
    let script = "env | grep '^AXS_' | sed 's/^/SEEN /'\necho ENV-END\nread x\n";
    let cmd = sh_script(&dir, "env.sh", script);
    let server = Server::start(
        bin,
        &["-c", &cmd],
        &[("AXS_TOKEN", TOKEN), ("AXS_VIEW_TOKEN", VIEW)],
    );
    let r = post(&server, "/terminals", Some(TOKEN), SIZE);
    let pid = server.expect_pid(&r);
    let mut ws = must_open(
        &server,
        &format!("/terminals/{pid}?token={TOKEN}"),
        "client",
    );
    ws.wait_for("ENV-END", EVENT).or_fail();
    let seen = String::from_utf8_lossy(&ws.got.binary).into_owned();
    for leaked in ["AXS_TOKEN", "AXS_VIEW_TOKEN", "AXS_READY_PIPE", TOKEN, VIEW] {
        assert!(
            !seen.contains(leaked),
            "a session's environment holds {leaked}: {seen:?}"
        );
    }
    let r = post(
        &server,
        "/execute-command",
        Some(TOKEN),
        r#"{"command":"env; echo CMD-END"}"#,
    );
    let out = r.json().or_fail()["output"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        out.contains("CMD-END"),
        "execute-command env: {}",
        r.describe()
    );
    for leaked in ["AXS_TOKEN", "AXS_VIEW_TOKEN", "AXS_READY_PIPE", TOKEN, VIEW] {
        assert!(
            !out.contains(leaked),
            "execute-command's environment holds {leaked}: {out:?}"
        );
    }
}

/// Sends a raw request with this `Host` line and returns the status line and body.
fn raw_with_host(server: &Server, request_line: &str, host: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", server.port))
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.proc.context()));
    let _ = s.set_read_timeout(Some(EVENT));
    let request = format!(
        "{request_line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{SIZE}",
        SIZE.len()
    );
    s.write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// DNS rebinding: on loopback, a request naming another host is 403 JSON; loopback names
/// (with any port) work.
pub fn host_header_checked_on_loopback(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh"], &[]);
    for line in ["GET /status", "POST /terminals"] {
        for host in ["evil.example", "evil.example:8767"] {
            let answer = raw_with_host(&server, line, host);
            assert!(
                answer.starts_with("HTTP/1.1 403") && answer.contains("{\"error\":"),
                "{line} with Host: {host} must answer 403 with JSON, got {answer:?}"
            );
        }
    }
    let port = server.port;
    for host in [
        format!("localhost:{port}"),
        "localhost:8767".to_string(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let answer = raw_with_host(&server, "GET /status", &host);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "GET /status with Host: {host} must answer 200, got {answer:?}"
        );
    }
    let answer = raw_with_host(&server, "POST /terminals", &format!("localhost:{port}"));
    let pid = answer
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| b.trim().parse::<u32>().ok())
        .unwrap_or_else(|| panic!("POST /terminals with Host: localhost: {answer:?}"));
    server.proc.track_session(pid);
}

/// `--allow-any-origin` without a token prints one warning line on stderr; with a token, none.
pub fn allow_any_origin_warning(bin: &Path) {
    let warned = |args: &[&str]| -> Vec<String> {
        let server = Server::start(bin, args, &[]);
        server.assert_alive("start-up");
        server
            .proc
            .stderr()
            .lines()
            .filter(|l| l.contains("--allow-any-origin"))
            .map(String::from)
            .collect()
    };
    let lines = warned(&["-c", "sh", "--allow-any-origin"]);
    assert!(
        lines.len() == 1 && lines[0].contains("warning"),
        "--allow-any-origin without a token: expected one warning line on stderr, got {lines:?}"
    );
    let lines = warned(&["-c", "sh", "--allow-any-origin", "--token", TOKEN]);
    assert!(lines.is_empty(), "with a token, no warning: {lines:?}");
}

/// Beyond loopback a token shorter than 16 characters, or a view token without a token,
/// refuses to start with a clear message; on loopback any token is fine.
pub fn short_token_refused_off_loopback(bin: &Path) {
    let refused = |args: &[&str], needle: &str| {
        match Server::try_start(bin, args, &[]) {
            Err((StartError::Error(line), _)) => assert!(
                line.contains(needle),
                "{args:?}: the refusal must mention {needle:?}: {line:?}"
            ),
            Ok(_) => panic!("{args:?}: the server started; it must refuse"),
            Err((other, proc)) => panic!("{args:?}: {other:?}\n{}", proc.context()),
        };
    };
    refused(
        &["-c", "sh", "-i", "0.0.0.0", "--token", "short-token"],
        "16",
    );
    refused(
        &["-c", "sh", "-i", "0.0.0.0", "--view-token", VIEW],
        "--token",
    );
    let server = Server::start(bin, &["-c", "sh", "--token", "short"], &[]);
    server.assert_alive("a short token on loopback");
}
