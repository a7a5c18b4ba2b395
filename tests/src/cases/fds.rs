//! The OS saying no: a full descriptor table, a program that cannot be started. The server
//! keeps running, answers as soon as it can, and leaves nothing half-created behind.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use rustix::process::{prlimit, Pid, Resource, Rlimit};

use super::{OrFail, EVENT};
use crate::http::{self, Response};
use crate::procfs;
use crate::server::{Server, TempDir};

/// The server's descriptor limit in [`fd_exhaustion_recovers`] (as `ulimit -n 64` would).
const FD_LIMIT: u64 = 64;
/// Most idle connections the case opens: more than the limit leaves room for.
const MAX_IDLE: usize = 80;
/// Idle connections opened once the server's table is full, so that accepting fails.
const BEYOND_FULL: usize = 8;
/// How long a step may take once descriptors are short: far below `REQUEST_TIMEOUT`
/// (15 s), after which idle connections are dropped and the shortage is over by itself.
const SHORT_BOUND: Duration = Duration::from_secs(5);
/// How long the server gets to accept one connection while it has descriptors left.
const ACCEPT_BOUND: Duration = Duration::from_secs(5);

/// Lowers the running server's descriptor limit (soft and hard) to `limit`.
fn lower_fd_limit(server: &Server, limit: u64) {
    let Some(pid) = Pid::from_raw(server.pid() as i32) else {
        panic!("self-check: server pid {} is not a pid", server.pid());
    };
    let lowered = Rlimit {
        current: Some(limit),
        maximum: Some(limit),
    };
    if let Err(e) = prlimit(Some(pid), Resource::Nofile, lowered) {
        panic!("self-check: cannot lower the server's descriptor limit to {limit}: {e}");
    }
}

/// How many descriptors the server has open.
fn open_fds(server: &Server) -> usize {
    procfs::fds(server.pid()).or_fail().len()
}

/// Opens idle connections until the server's descriptor table is full, then
/// [`BEYOND_FULL`] more (at most [`MAX_IDLE`] in all).
fn fill_descriptor_table(server: &Server) -> Vec<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let full = || open_fds(server) as u64 >= FD_LIMIT - 2;
    let mut idle = Vec::new();
    while idle.len() < MAX_IDLE && !full() {
        let before = open_fds(server);
        idle.push(TcpStream::connect_timeout(&addr, ACCEPT_BOUND).or_else_fail("connect"));
        let accepted = procfs::poll(ACCEPT_BOUND, || full() || open_fds(server) > before);
        assert!(
            accepted,
            "idle connection {} was not accepted within {ACCEPT_BOUND:?} with descriptors \
             left ({before} open of {FD_LIMIT})\n{}",
            idle.len(),
            server.proc.context()
        );
    }
    assert!(
        full(),
        "self-check: {MAX_IDLE} idle connections did not fill the server's {FD_LIMIT} \
         descriptors ({} open)",
        open_fds(server)
    );
    for _ in 0..BEYOND_FULL {
        idle.push(TcpStream::connect_timeout(&addr, ACCEPT_BOUND).or_else_fail("connect"));
    }
    idle
}

/// A helper for `io::Result` in this file: the value, or a panic naming `what`.
trait OrElseFail<T> {
    fn or_else_fail(self, what: &str) -> T;
}

impl<T> OrElseFail<T> for std::io::Result<T> {
    #[track_caller]
    fn or_else_fail(self, what: &str) -> T {
        self.unwrap_or_else(|e| panic!("self-check: {what}: {e}"))
    }
}

/// One request that must be answered within [`SHORT_BOUND`] although descriptors are short.
fn bounded(server: &Server, method: &str, path: &str, body: Option<&str>) -> Response {
    http::request_within(server.port, method, path, body, SHORT_BOUND).unwrap_or_else(|e| {
        panic!(
            "{method} {path} with the server's {FD_LIMIT} descriptors taken by idle \
             connections: {e}\n{}",
            server.proc.context()
        )
    })
}

/// The answer to a create made while something may fail: the new session's pid, or `None`
/// after a clean 5xx JSON error.
fn created_or_clean_error(server: &Server, r: &Response, when: &str) -> Option<u32> {
    if r.is_success() {
        return Some(server.expect_pid(r));
    }
    let json = r.json();
    assert!(
        (500..600).contains(&r.status) && json.as_ref().is_ok_and(|j| j["error"].is_string()),
        "POST /terminals {when}: expected a pid or a 5xx JSON error, got {}\n{}",
        r.describe(),
        server.proc.context()
    );
    None
}

/// Asserts the server's children are exactly `sessions` (no program without a session),
/// waiting a little for exits to be reaped.
fn assert_children(server: &Server, sessions: &[u32], when: &str) {
    let mut want = sessions.to_vec();
    want.sort_unstable();
    let matched = procfs::poll(EVENT, || procfs::children(server.pid()) == want);
    let children = procfs::children(server.pid());
    assert!(
        matched,
        "{when}: the server's children are {} but its sessions are {want:?}\n{}",
        procfs::describe(&children),
        server.proc.context()
    );
}

/// Creates a session, attaches and checks that it echoes; then terminates it.
fn session_works(server: &Server, when: &str) {
    let r = bounded(
        server,
        "POST",
        "/terminals",
        Some(r#"{"cols":80,"rows":24}"#),
    );
    let Some(pid) = created_or_clean_error(server, &r, when) else {
        panic!(
            "POST /terminals {when}: {}\n{}",
            r.describe(),
            server.proc.context()
        );
    };
    assert_children(server, &[pid], when);
    let mut ws = server.attach(pid);
    ws.send_text("echo fds-$((40 + 2))\r").or_fail();
    ws.wait_for("fds-42\r\n", EVENT).or_fail();
    drop(ws);
    server.terminate(pid);
    assert_children(server, &[], &format!("{when}, once terminated"));
}

/// With its descriptor limit lowered to 64 and every descriptor taken by idle connections,
/// the server still answers `GET /status` (it evicts an idle connection to accept the new
/// one), a create either works or fails cleanly, and once the idle connections close a
/// session works again; no descriptor leaks and no program is left without its session.
pub fn fd_exhaustion_recovers(bin: &Path) {
    let server = Server::start(bin, &["-c", "sh"], &[]);
    let at_start = open_fds(&server);
    lower_fd_limit(&server, FD_LIMIT);
    let idle = fill_descriptor_table(&server);

    let r = bounded(&server, "GET", "/status", None);
    assert!(
        r.status == 200 && r.text().trim() == "OK",
        "GET /status with every descriptor taken: expected 200 OK, got {}\n{}",
        r.describe(),
        server.proc.context()
    );
    let r = bounded(
        &server,
        "POST",
        "/terminals",
        Some(r#"{"cols":80,"rows":24}"#),
    );
    let short = "with every descriptor taken";
    match created_or_clean_error(&server, &r, short) {
        Some(pid) => {
            assert_children(&server, &[pid], short);
            server.terminate(pid);
            assert_children(&server, &[], "after terminating it");
        }
        None => assert_children(&server, &[], "after a failed create"),
    }

    drop(idle);
    server.assert_alive("closing the idle connections");
    session_works(&server, "after the idle connections closed");
    let back = procfs::poll(EVENT, || open_fds(&server) <= at_start);
    assert!(
        back,
        "the server had {at_start} descriptors open at start and {} at the end:\n{}\n{}",
        open_fds(&server),
        procfs::fd_targets(server.pid()).join("\n"),
        server.proc.context()
    );
}

/// A session program that cannot be started (deleted after start-up) gets a 500 JSON
/// answer, registers nothing and leaves no process or descriptor; once it is back, a
/// create works even with `--max-sessions 1` (the failed spawn's slot was given back).
pub fn spawn_failure_recovers(bin: &Path) {
    let dir = TempDir::new("spawn-failure");
    let program = dir.path().join("shell");
    let script = "#!/bin/sh\nexec sh \"$@\"\n";
    let install = || {
        std::fs::write(&program, script).or_else_fail("write the program");
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&program, mode).or_else_fail("chmod the program");
    };
    install();
    let program_arg = program.to_string_lossy().into_owned();
    let server = Server::start(bin, &["--max-sessions", "1", "-c", &program_arg], &[]);
    let at_start = open_fds(&server);
    std::fs::remove_file(&program).or_else_fail("delete the program");

    let r = bounded(
        &server,
        "POST",
        "/terminals",
        Some(r#"{"cols":80,"rows":24}"#),
    );
    let json = r.json();
    assert!(
        r.status == 500 && json.as_ref().is_ok_and(|j| j["error"].is_string()),
        "POST /terminals with the program gone: expected 500 with a JSON error, got {}\n{}",
        r.describe(),
        server.proc.context()
    );
    assert_children(&server, &[], "after the failed spawn");
    // The answer can be read before the server's thread closed that connection's socket:
    // wait (bounded) for the count to settle rather than count once.
    procfs::poll(EVENT, || open_fds(&server) <= at_start);
    assert_eq!(
        open_fds(&server),
        at_start,
        "descriptors after the failed spawn:\n{}",
        procfs::fd_targets(server.pid()).join("\n")
    );

    install();
    session_works(&server, "once the program is back");
}
