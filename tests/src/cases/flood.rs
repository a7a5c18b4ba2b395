//! Many connections at once: clients that connect and never speak must not starve others.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use super::{OrFail, EVENT};
use crate::http::{self, Response};
use crate::server::Server;

/// Idle connections opened: above the servers' connection cap (512).
const IDLE_CONNECTIONS: usize = 600;
/// How long each step after the flood may take: far below the servers' `REQUEST_TIMEOUT`
/// (15 s), after which idle connections are dropped and the flood is over by itself.
const FLOOD_BOUND: Duration = Duration::from_secs(5);
/// Descriptors the case (and the server, which inherits the limit) needs beyond the flood.
const FD_SPARE: u64 = 512;

/// Raises the soft descriptor limit (up to the hard one) so that `wanted` fit; the server
/// started afterwards inherits it.
fn ensure_fd_room(wanted: u64) {
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return;
    }
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        maximum >= wanted,
        "self-check: this case needs {wanted} descriptors; the hard limit is {maximum}"
    );
    let raised = Rlimit {
        current: Some(wanted),
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        panic!("self-check: cannot raise the descriptor limit from {current} to {wanted}: {e}");
    }
}

/// Opens `n` connections that never send a byte.
fn open_idle(port: u16, n: usize) -> Vec<TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    (0..n)
        .map(|i| match TcpStream::connect_timeout(&addr, FLOOD_BOUND) {
            Ok(s) => s,
            Err(e) => panic!("self-check: idle connection {i} of {n}: connect: {e}"),
        })
        .collect()
}

/// One request that must be answered within [`FLOOD_BOUND`] despite the flood.
fn bounded(server: &Server, method: &str, path: &str, body: Option<&str>) -> Response {
    http::request_within(server.port, method, path, body, FLOOD_BOUND).unwrap_or_else(|e| {
        panic!(
            "{method} {path} with {IDLE_CONNECTIONS} idle connections open: {e}\n{}",
            server.proc.context()
        )
    })
}

/// More idle connections than the connection cap: `GET /status` still answers at once,
/// and a new session can be created, attached and used.
pub fn connection_flood(bin: &Path) {
    ensure_fd_room(IDLE_CONNECTIONS as u64 + FD_SPARE);
    let server = Server::start(bin, &["-c", "sh"], &[]);
    let idle = open_idle(server.port, IDLE_CONNECTIONS);
    let r = bounded(&server, "GET", "/status", None);
    assert!(
        r.status == 200 && r.text().trim() == "OK",
        "GET /status behind {IDLE_CONNECTIONS} idle connections: expected 200 OK, got {}",
        r.describe()
    );
    let r = bounded(
        &server,
        "POST",
        "/terminals",
        Some(r#"{"cols":80,"rows":24}"#),
    );
    let pid = server.expect_pid(&r);
    let started = Instant::now();
    let mut ws = server.attach(pid);
    let took = started.elapsed();
    assert!(
        took < FLOOD_BOUND,
        "attaching behind {IDLE_CONNECTIONS} idle connections took {took:?}"
    );
    ws.send_text("echo flood-$((40 + 2))\r").or_fail();
    ws.wait_for("flood-42\r\n", EVENT).or_fail();
    drop(ws);
    drop(idle);
}
