//! The editor client (B) driven exactly as it drives axs.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{OrFail, EVENT};
use crate::server::{Server, TempDir};

/// Client B's whole contract: ready FIFO, RUST_LOG=error, bash --rcfile, /status polling,
/// text pid, keystrokes as text, HTTP resize with strings, exit JSON as the only text frame,
/// and a silent server.
pub fn editor_client_contract(bin: &Path) {
    let dir = TempDir::new("editor");
    let rc = dir.write(
        "initrc",
        "PS1='$ '\nPROMPT_COMMAND=\nunset HISTFILE\nbind 'set enable-bracketed-paste off' 2>/dev/null\n",
    );
    let cmd = format!("bash --rcfile {} -i", rc.display());
    let server = Server::start(bin, &["-c", &cmd], &[("RUST_LOG", "error")]);
    poll_status_like_client_a(&server);

    let origin = [("Origin", "https://localhost")];
    let r = server.request(
        "POST",
        "/terminals",
        &[("Content-Type", "application/json"), origin[0]],
        Some(br#"{"cols":80,"rows":24}"#),
    );
    let pid = server.expect_pid(&r);
    assert_cors_allows_localhost(&r, "POST /terminals");

    let mut ws = server.attach(pid);
    ws.send_text("echo hi-$((6*7))\r").or_fail();
    ws.wait_for("hi-42\r\n", EVENT).or_fail();
    assert!(
        ws.got.binary_frames > 0 && ws.got.texts.is_empty(),
        "output must arrive as binary frames only\n{}",
        ws.got.summary()
    );

    let r = server.request(
        "POST",
        &format!("/terminals/{pid}/resize"),
        &[("Content-Type", "application/json"), origin[0]],
        Some(br#"{"cols":"100","rows":"30"}"#),
    );
    assert!(
        r.is_success(),
        "resize with strings answered {}",
        r.describe()
    );
    ws.send_text("stty size\r").or_fail();
    ws.wait_for("30 100\r\n", EVENT)
        .map_err(|e| {
            format!("after an HTTP resize to 100x30, `stty size` must print `30 100`: {e}")
        })
        .or_fail();

    ws.send_text("exit 7\r").or_fail();
    let exit = ws.expect_exit(EVENT).or_fail();
    assert_eq!(
        (exit.exit_code, exit.signal.as_deref()),
        (Some(7), None),
        "exit 7 must arrive as exit_code 7, signal null: {exit:?}"
    );
    ws.assert_plain().or_fail();
    let texts: Vec<_> = ws.got.texts.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        texts.len(),
        1,
        "exactly one text frame (the exit JSON) expected: {texts:?}"
    );

    // A terminates the dead id afterwards; that must be a quiet 2xx.
    server.terminate(pid);
    let stderr = server.proc.stderr();
    let stdout = server.proc.stdout();
    assert!(
        stderr.is_empty() && stdout.is_empty(),
        "with RUST_LOG=error the server must print nothing (client B shows it in the terminal);\n\
         stderr: {stderr:?}\nstdout: {stdout:?}"
    );
}

/// Polls GET /status like the clients do (20 tries, 500 ms apart) until the body is `OK`.
fn poll_status_like_client_a(server: &Server) {
    let start = Instant::now();
    for _ in 0..20 {
        let r = server.request("GET", "/status", &[("Origin", "https://localhost")], None);
        if r.is_success() && r.text().trim() == "OK" {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "GET /status never answered 2xx OK within {:?}\n{}",
        start.elapsed(),
        server.proc.context()
    );
}

/// Asserts that a WebView at https://localhost may read this answer.
pub(crate) fn assert_cors_allows_localhost(r: &crate::http::Response, what: &str) {
    let acao = r.header("Access-Control-Allow-Origin");
    assert!(
        matches!(acao, Some("https://localhost") | Some("*")),
        "{what}: Access-Control-Allow-Origin is {acao:?}; a fetch from https://localhost \
         cannot read the answer without it (headers: {:?})",
        r.headers
    );
}
